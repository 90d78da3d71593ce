"""Learning curves from run directories (``a2c plot``).

* [`plot_runs`][a2c.analysis.plotting.plot_runs]: one PNG with the episode return against environment steps (mean
  and mean +/- std across the runs given, interpolated onto a common step grid; greedy
  evaluations from evaluations.csv as points) and panels for the policy and value
  losses, the entropy, the explained variance and the episode length. Runs of
  different environments are drawn as separate groups. The explained-variance panel
  stops at -1, with a note over it when values lie below.
* [`plot_learning_curves_by_env`][a2c.analysis.plotting.plot_learning_curves_by_env]: one return-only figure per
  environment.

The runs' data (reading, aggregating across seeds) comes from [`a2c.analysis.run_data`][a2c.analysis.run_data].

Figures are drawn with matplotlib's object-oriented API on an Agg canvas: no pyplot,
no global backend switch, nothing shown on screen; the functions also return the
Figure so that a notebook can display it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from a2c.analysis.run_data import (
    RETURN,
    RunData,
    aggregate_curves,
    aggregate_evaluations,
    curve,
    group_by_env,
    load_run,
)
from a2c.common.errors import RunDirError

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

EXPLAINED_VARIANCE = "train/explained_variance"
PANELS = (  # (column of metrics.csv, panel title)
    (RETURN, "episode return (training, last 100 episodes)"),
    ("train/policy_loss", "policy loss"),
    ("train/value_loss", "value loss"),
    ("train/entropy", "entropy"),
    (EXPLAINED_VARIANCE, "explained variance"),
    ("rollout/ep_length_mean", "episode length (training)"),
)
# Explained variance is at most 1; below -1 (error variance > return variance) it says
# little beyond "the returns hardly varied" (e.g. every episode at the return cap) and
# can reach -20, squashing the rest of the panel, so the axis stops there.
EV_YLIM = (-1.0, 1.05)
EV_CLIP_NOTE = "values below -1 clipped (min {:.3g}): returns with little variance"
MAX_STEP_TICKS = 5

# ------------------------------------------------------------------------ step axis

_STEP_UNITS = ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""))


def format_steps(x: float, pos: int | None = None) -> str:
    """Short step labels ("50k", "1.5M"): six-digit tick labels run into each other."""
    if x == 0:
        return "0"
    sign, v = ("-" if x < 0 else ""), abs(x)
    for i, (scale, suffix) in enumerate(_STEP_UNITS):
        if v >= scale or scale == 1.0:
            scaled = round(v / scale, 2)
            if scaled >= 1000 and i > 0:  # 999_999 rounds to 1000k: one unit up
                scale, suffix = _STEP_UNITS[i - 1]
                scaled = round(v / scale, 2)
            text = f"{scaled:.2f}".rstrip("0").rstrip(".")
            return f"{sign}{text}{suffix}"
    raise AssertionError("unreachable")  # pragma: no cover


def _format_step_axis(ax: Axes) -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(MAX_STEP_TICKS, steps=[1, 2, 2.5, 5, 10]))
    ax.xaxis.set_major_formatter(FuncFormatter(format_steps))
    ax.set_xlim(left=0)
    ax.set_xlabel("environment steps")


def _clip_explained_variance(ax: Axes, runs: Sequence[RunData]) -> bool:
    """Clip the panel to EV_YLIM, with a note saying so when any value lies below it."""
    lowest = min(
        (float(y.min()) for _, y in (curve(run, EXPLAINED_VARIANCE) for run in runs) if len(y)), default=np.nan
    )
    if not lowest < EV_YLIM[0]:
        return False
    ax.set_ylim(*EV_YLIM)
    # Between the title and the panel, where it never hides a curve.
    ax.annotate(
        EV_CLIP_NOTE.format(lowest),
        xy=(0.5, 1.0),
        xycoords="axes fraction",
        xytext=(0, 3),
        textcoords="offset points",
        ha="center",
        va="bottom",
        fontsize="small",
        color="dimgray",
    )
    ax.set_title(ax.get_title(), pad=18)
    return True


# --------------------------------------------------------------------------- figures


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _draw_band(
    ax: Axes, runs: Sequence[RunData], column: str, color: Any, label: str | None, individual: bool = True
) -> bool:
    curves = [curve(run, column) for run in runs]
    grid, mean, std, count = aggregate_curves(curves)
    if not len(grid):
        return False
    if individual and len(runs) > 1:
        for x, y in curves:
            ax.plot(x, y, color=color, alpha=0.25, linewidth=0.7)
    # The mean and band only where every run has data: a run ending early would
    # otherwise make the mean jump. The individual lines show the rest.
    everyone = count == len([c for c in curves if len(c[0])])
    if not everyone.any():
        everyone = count > 0
    shown = np.where(everyone, mean, np.nan)
    ax.plot(grid, shown, color=color, linewidth=1.6, label=label)
    if len(runs) > 1:
        ax.fill_between(
            grid, mean - std, mean + std, where=everyone & (count >= 2), color=color, alpha=0.2, linewidth=0
        )
    return True


def _draw_evaluations(ax: Axes, runs: Sequence[RunData], color: Any, label: str | None) -> None:
    steps, means, errs = aggregate_evaluations(runs)
    if len(steps):
        ax.errorbar(
            steps,
            means,
            yerr=errs,
            fmt="o",
            color=color,
            markersize=4,
            capsize=3,
            markeredgecolor="black",
            markeredgewidth=0.5,
            label=label,
        )


def _group_label(env_id: str, runs: Sequence[RunData], groups: int) -> str:
    n = f"{len(runs)} run{'s' if len(runs) != 1 else ''}"
    return f"{env_id} ({n})" if groups > 1 else n


def _train_label(label: str, runs: Sequence[RunData]) -> str:
    return f"{label}: training" + (" (mean +/- std)" if len(runs) > 1 else "")


def save_figure(fig: Figure, out: str | Path | None) -> None:
    if out is None:
        return
    from a2c.common.files import atomic_write

    out = Path(out)
    try:
        atomic_write(out, lambda p: fig.savefig(p, format="png", dpi=100), suffix=".png")
    except OSError as e:
        raise RunDirError(f"cannot write {out}: {e.strerror or e}") from None


def plot_runs(run_dirs: Sequence[str | Path], out: str | Path | None = None, title: str | None = None) -> Figure:
    """Learning curves and training diagnostics of ``run_dirs`` (a PNG at ``out`` if given).

    Per environment: the mean across runs with a mean +/- std band, over the steps
    every run covers (curves interpolated onto a common grid), thin lines for the
    individual runs, greedy evaluations as points with error bars.
    """
    if not run_dirs:
        raise RunDirError("no run directories given")
    runs = [load_run(d) for d in run_dirs]
    groups = group_by_env(runs)
    fig = _new_figure(15, 8)
    axes = fig.subplots(2, 3).ravel()
    colors = [f"C{i % 10}" for i in range(len(groups))]
    for ax, (column, name) in zip(axes, PANELS):
        drawn = False
        for color, (env_id, env_runs) in zip(colors, groups.items()):
            label = _group_label(env_id, env_runs, len(groups))
            drawn |= _draw_band(ax, env_runs, column, color, _train_label(label, env_runs))
            if column == RETURN:
                _draw_evaluations(ax, env_runs, color, f"{label}: {env_runs[0].eval_policy} evaluation")
        ax.set_title(name)
        _format_step_axis(ax)
        ax.grid(alpha=0.3)
        if not drawn:
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="gray")
        elif column == EXPLAINED_VARIANCE:
            ax.axhline(1.0, color="gray", linestyle=":", linewidth=0.8)  # its ceiling
            _clip_explained_variance(ax, runs)
    if axes[0].get_legend_handles_labels()[0]:  # nothing to label before the first episode ends
        axes[0].legend(fontsize="small", loc="best")
    fig.suptitle(title or _default_title(groups))
    save_figure(fig, out)
    return fig


def _default_title(groups: dict[str, list[RunData]]) -> str:
    if len(groups) == 1:
        ((env_id, runs),) = groups.items()
        return f"A2C on {env_id}: {len(runs)} run{'s' if len(runs) != 1 else ''}"
    return "A2C: " + ", ".join(f"{env} ({len(r)})" for env, r in groups.items())


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "env"


def plot_learning_curve(
    run_dirs: Sequence[str | Path],
    out: str | Path | None = None,
    title: str | None = None,
    group_by: Callable[[RunData], str] | None = None,
) -> Figure:
    """Episode return against env steps, one line and band per environment (or per ``group_by(run)``,
    e.g. the env and a setting being compared)."""
    if not run_dirs:
        raise RunDirError("no run directories given")
    if group_by is None:
        groups = group_by_env(load_run(d) for d in run_dirs)
    else:
        groups = {}
        for run in (load_run(d) for d in run_dirs):
            groups.setdefault(group_by(run), []).append(run)
    fig = _new_figure(7, 4.5)
    ax = fig.subplots()
    for i, (env_id, runs) in enumerate(groups.items()):
        label = _group_label(env_id, runs, len(groups))
        _draw_band(ax, runs, RETURN, f"C{i % 10}", _train_label(label, runs))
        _draw_evaluations(ax, runs, f"C{i % 10}", f"{label}: {runs[0].eval_policy} evaluation")
    _format_step_axis(ax)
    ax.set_ylabel("episode return")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # a run with no finished episode yet draws nothing
        ax.legend(fontsize="small", loc="best")
    ax.set_title(title or _default_title(groups))
    save_figure(fig, out)
    return fig


def plot_learning_curves_by_env(
    run_dirs: Sequence[str | Path], out_dir: str | Path, prefix: str = "learning_curve_"
) -> dict[str, Path]:
    """One learning-curve PNG per environment in ``out_dir``; returns {env_id: path}."""
    groups = group_by_env(load_run(d) for d in run_dirs)
    out_dir = Path(out_dir)
    paths = {}
    for env_id, runs in groups.items():
        path = out_dir / f"{prefix}{safe_name(env_id)}.png"
        plot_learning_curve([r.run_dir for r in runs], path)
        paths[env_id] = path
    return paths
