"""The data of finished runs: their logs as arrays, curves aggregated across seeds, and
the results table built from their summary.json files ([`a2c.analysis.plotting`][a2c.analysis.plotting] draws them,
``scripts/results.py`` tabulates them)."""

from __future__ import annotations

import csv
import json
import math
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from a2c.common.errors import RunDirError

RETURN = "rollout/ep_return_mean"
EVAL_MEAN = "eval/mean_return"
EVAL_STD = "eval/std_return"
GRID_POINTS = 200


@dataclass
class RunData:
    """What a run directory holds, as float arrays (empty CSV cells are NaN)."""

    run_dir: Path
    env_id: str
    seed: int | None
    metrics: dict[str, np.ndarray]
    evaluations: dict[str, np.ndarray] = field(default_factory=dict)
    summary: dict[str, Any] | None = None
    eval_policy: str = "greedy"  # how its evaluations played (config.toml; greedy before the field)
    config: dict[str, Any] = field(default_factory=dict)  # its config.toml as saved (empty if unreadable)


def read_csv_columns(path: str | Path) -> dict[str, np.ndarray]:
    """The columns of a CSV file as float arrays; cells that are not numbers become NaN."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        columns = list(reader.fieldnames or [])

    def number(cell: Any) -> float:
        try:
            return float(cell)
        except (TypeError, ValueError):
            return math.nan

    return {c: np.array([number(r.get(c)) for r in rows], dtype=np.float64) for c in columns if c}


def check_run_dir(run_dir: str | Path) -> Path:
    """``run_dir`` as a Path; RunDirError unless it is a directory with a metrics.csv."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"run directory not found: {run_dir}")
    if not (run_dir / "metrics.csv").is_file():
        raise RunDirError(f"{run_dir} is not a run directory: it has no metrics.csv")
    return run_dir


def load_run(run_dir: str | Path) -> RunData:
    """Read a run directory's config.toml, metrics.csv, evaluations.csv and summary.json."""
    run_dir = check_run_dir(run_dir)
    summary = None
    if (run_dir / "summary.json").is_file():
        try:
            summary = json.loads((run_dir / "summary.json").read_text())
        except ValueError as e:
            raise RunDirError(f"{run_dir}/summary.json is not valid JSON: {e}") from None
    config: dict[str, Any] = {}
    try:
        config = tomllib.loads((run_dir / "config.toml").read_text())
    except (OSError, ValueError):
        pass
    env_id = config.get("env_id") or (summary or {}).get("env_id") or "unknown env"
    seed = config.get("seed", (summary or {}).get("seed"))
    metrics = read_csv_columns(run_dir / "metrics.csv")
    if "global_step" not in metrics:
        raise RunDirError(f"{run_dir}/metrics.csv has no global_step column")
    evaluations = {}
    if (run_dir / "evaluations.csv").is_file():
        evaluations = read_csv_columns(run_dir / "evaluations.csv")
    eval_policy = str(config.get("eval_policy", "greedy"))
    return RunData(run_dir, str(env_id), seed, metrics, evaluations, summary, eval_policy, config)


def group_by_env(runs: Iterable[RunData]) -> dict[str, list[RunData]]:
    groups: dict[str, list[RunData]] = {}
    for run in runs:
        groups.setdefault(run.env_id, []).append(run)
    return groups


# ------------------------------------------------------------------------ aggregation


def curve(run: RunData, column: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of one metrics column, rows without a value dropped."""
    x, y = run.metrics["global_step"], run.metrics.get(column)
    if y is None:
        return np.empty(0), np.empty(0)
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def aggregate_curves(
    curves: Sequence[tuple[np.ndarray, np.ndarray]],
    n_points: int = GRID_POINTS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Interpolate each curve onto a common step grid; return (grid, mean, std, count).

    The grid spans from the earliest to the latest step of any curve; a curve counts
    only inside its own range (no extrapolation), so ``count`` says how many runs each
    point averages. Points no run covers are NaN.
    """
    curves = [(np.asarray(x, float), np.asarray(y, float)) for x, y in curves if len(x)]
    if not curves:
        empty = np.empty(0)
        return empty, empty, empty, empty
    lo = min(float(x.min()) for x, _ in curves)
    hi = max(float(x.max()) for x, _ in curves)
    grid = np.linspace(lo, hi, n_points) if hi > lo else np.array([lo])
    values = np.full((len(curves), len(grid)), np.nan)
    for i, (x, y) in enumerate(curves):
        order = np.argsort(x, kind="stable")
        x, y = x[order], y[order]
        inside = (grid >= x[0]) & (grid <= x[-1])
        values[i, inside] = np.interp(grid[inside], x, y)
    count = np.isfinite(values).sum(axis=0)
    total = np.where(np.isfinite(values), values, 0.0).sum(axis=0)
    mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    sq = np.where(np.isfinite(values), (values - mean) ** 2, 0.0).sum(axis=0)
    std = np.where(count > 0, np.sqrt(sq / np.maximum(count, 1)), np.nan)
    return grid, mean, std, count


def aggregate_evaluations(runs: Sequence[RunData]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy evaluations by step: (steps, mean return, error bar).

    Where one run has an evaluation at a step the error bar is the std over its
    evaluation episodes; where several do, the std across runs of their mean returns.
    """
    by_step: dict[float, list[tuple[float, float]]] = {}
    for run in runs:
        ev = run.evaluations
        if "global_step" not in ev or EVAL_MEAN not in ev:
            continue
        stds = ev.get(EVAL_STD, np.full(len(ev[EVAL_MEAN]), np.nan))
        # A later row at the same step (the final evaluation after a periodic one) wins.
        latest = {
            float(step): (float(m), float(s))
            for step, m, s in zip(ev["global_step"], ev[EVAL_MEAN], stds)
            if np.isfinite(step) and np.isfinite(m)
        }
        for step, point in latest.items():
            by_step.setdefault(step, []).append(point)
    steps = np.array(sorted(by_step))
    means, errs = [], []
    for step in steps:
        points = np.array(by_step[step])
        means.append(points[:, 0].mean())
        errs.append(points[0, 1] if len(points) == 1 else points[:, 0].std())
    return steps, np.array(means), np.nan_to_num(np.array(errs))


# ----------------------------------------------------------------------------- tables


def _mean_std(values: Sequence[float | None], digits: int = 1) -> str:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    if not finite:
        return "n/a"
    if len(finite) == 1:
        return f"{finite[0]:.{digits}f}"
    return f"{np.mean(finite):.{digits}f} ± {np.std(finite):.{digits}f}"


def results_table(run_dirs: Sequence[str | Path], per_run: bool = False) -> str:
    """A markdown table of the runs' summary.json files, one row per environment.

    The greedy return is the mean over runs of each run's final evaluation (with the
    std across runs after ±, and the worst and best run); ``per_run=True`` appends a
    second table with one row per run.

    Runs with ``keep_best`` ([`a2c.run.best`][a2c.run.best]) report the weights of their best periodic
    evaluation; the "Last weights" column then gives what the last weights score on the
    same final episodes (a dash when every run kept its last weights).
    """
    if not run_dirs:
        raise RunDirError("no run directories given")
    runs = [load_run(d) for d in run_dirs]
    for run in runs:
        if run.summary is None:
            raise RunDirError(f"{run.run_dir} has no summary.json (did the run finish?)")
    lines = [
        "| Environment | Runs | Seeds | Env steps | Greedy eval return | Worst / best run | Last weights "
        "| Eval episodes | Training return (last 100) | Steps/s | Train time (s) |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for env_id, env_runs in group_by_env(runs).items():
        s = [r.summary for r in env_runs if r.summary is not None]  # all of them (checked above)
        evals = [x["eval_mean_return"] for x in s if x.get("eval_mean_return") is not None]
        steps = sorted({int(x.get("total_steps", 0)) for x in s})
        seeds = sorted(str(x.get("seed", r.seed)) for x, r in zip(s, env_runs))
        episodes = sorted({int(x.get("eval_episodes") or 0) for x in s})
        kept = any(x.get("model_step") is not None for x in s)
        last = _mean_std([x.get("last_model_eval_mean_return", x.get("eval_mean_return")) for x in s]) if kept else "-"
        lines.append(
            f"| {env_id} | {len(env_runs)} | {', '.join(seeds)} "
            f"| {' / '.join(f'{n:,}' for n in steps)} | {_mean_std(evals)} "
            f"| {f'{min(evals):.1f} / {max(evals):.1f}' if evals else 'n/a'} | {last} "
            f"| {' / '.join(map(str, episodes))} "
            f"| {_mean_std([x.get('train_return_mean_last100') for x in s])} "
            f"| {_mean_std([x.get('steps_per_second') for x in s], 0)} "
            f"| {_mean_std([x.get('train_seconds') for x in s], 0)} |"
        )
    table = "\n".join(lines) + "\n"
    if per_run:
        rows = [
            "| Run | Environment | Seed | Env steps | Greedy eval return (mean ± std over episodes) "
            "| Min / max | Model | Training return (last 100) | Steps/s |",
            "|---|---|---:|---:|---:|---:|---|---:|---:|",
        ]
        for r in runs:
            x = r.summary
            assert x is not None  # checked above
            ev = (
                f"{x['eval_mean_return']:.1f} ± {x['eval_std_return']:.1f}"
                if x.get("eval_mean_return") is not None
                else "n/a"
            )
            mm = (
                f"{x['eval_min_return']:.1f} / {x['eval_max_return']:.1f}"
                if x.get("eval_min_return") is not None
                else "n/a"
            )
            tr = x.get("train_return_mean_last100")
            model = "last weights"
            if x.get("model_step") is not None:
                last_score = x.get("last_model_eval_mean_return")
                model = f"best periodic eval, step {int(x['model_step']):,}" + (
                    f" (last weights {last_score:.1f})" if last_score is not None else ""
                )
            rows.append(
                f"| {r.run_dir.name} | {r.env_id} | {x.get('seed', r.seed)} "
                f"| {int(x.get('total_steps', 0)):,} | {ev} | {mm} | {model} "
                f"| {'n/a' if tr is None else f'{tr:.1f}'} | {x.get('steps_per_second', 0):.0f} |"
            )
        table += "\n" + "\n".join(rows) + "\n"
    return table
