"""A population run's summary: per swept setting the final greedy returns' mean, std,
min, max and fraction of members solved (summary.json, population.md), and a plot of
every member's curves (population_curves.png). No TensorFlow: it reads numbers and CSVs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from a2c.analysis.run_data import read_csv_columns
from a2c.population.members import member_dir

#: Greedy return that counts as solving an environment (the population summary's "solved").
SOLVED_AT: dict[str, float] = {"CartPole-v1": 475.0, "Acrobot-v1": -100.0, "MountainCar-v0": -110.0}
POPULATION_TABLE = "population.md"
POPULATION_CURVES = "population_curves.png"


def population_groups(
    rows: list[dict[str, Any]], swept: Sequence[str], solved_at: float | None
) -> list[dict[str, Any]]:
    """Per swept setting (all members when nothing is swept): the final greedy returns'
    mean, std, min and max over members and the fraction of members solved."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row[name] for name in swept), []).append(row)
    out = []
    for values, members in groups.items():
        finals = np.array([m["eval_mean_return"] for m in members if m["eval_mean_return"] is not None])
        stats: dict[str, Any] = {"members": len(members), "seeds": [m["seed"] for m in members]}
        if finals.size:
            stats.update(
                mean=float(finals.mean()),
                std=float(finals.std()),
                min=float(finals.min()),
                max=float(finals.max()),
                solved_fraction=None if solved_at is None else float(np.mean(finals >= solved_at)),
            )
        out.append({**dict(zip(swept, values)), **stats})
    return out


def population_table(summary: dict[str, Any], swept: Sequence[str]) -> str:
    """population.md: the per-setting table, then one row per member."""

    def f(x: Any, spec: str = ".1f") -> str:
        return "n/a" if x is None else format(x, spec)

    solved = summary["solved_at"]
    lines = [
        f"# Population: {summary['members']} members on {summary['env_id']}",
        "",
        f"{summary['total_steps_per_member']:,} env steps per member, {summary['train_seconds']:.1f} s of "
        f"training ({summary['warmup_seconds']:.1f} s of it compilation), {summary['steps_per_second']:,.0f} "
        f"env steps/s over all members ({summary['executor']} executor). Final greedy evaluation per member"
        + (f"; solved = mean >= {solved:g}." if solved is not None else "."),
        "",
        "| " + " | ".join([*swept, "members", "mean", "std", "min", "max", "solved"]) + " |",
        "|" + "---|" * (len(swept) + 6),
    ]
    for g in summary["groups"]:
        lines.append(
            "| "
            + " | ".join(
                [
                    *(f"{g[n]:g}" for n in swept),
                    str(g["members"]),
                    f(g.get("mean")),
                    f(g.get("std")),
                    f(g.get("min")),
                    f(g.get("max")),
                    f(g.get("solved_fraction"), ".0%"),
                ]
            )
            + " |"
        )
    lines += [
        "",
        "| member | seed | " + " | ".join(swept) + (" | " if swept else "") + "greedy return | min |",
        "|---|---|" + "---|" * len(swept) + "---|---|",
    ]
    for r in summary["member_results"]:
        lines.append(
            f"| {r['member']} | {r['seed']} | "
            + "".join(f"{r[n]:g} | " for n in swept)
            + f"{f(r['eval_mean_return'])} | {f(r['eval_min_return'])} |"
        )
    return "\n".join(lines) + "\n"


def plot_population(run_dir: Path, members: int) -> None:
    """population_curves.png: every member's training return and greedy evaluations."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    alpha = max(0.15, min(0.8, 8 / members))
    for k in range(members):
        d = member_dir(run_dir, k)
        m = read_csv_columns(d / "metrics.csv")
        axes[0].plot(m["global_step"], m["rollout/ep_return_mean"], color="tab:blue", lw=0.8, alpha=alpha)
        e = read_csv_columns(d / "evaluations.csv")
        if len(e.get("global_step", [])):
            axes[1].plot(e["global_step"], e["eval/mean_return"], color="tab:green", lw=0.8, alpha=alpha, marker=".")
    axes[0].set_title(f"training return (last 100 episodes), {members} members")
    axes[1].set_title("greedy evaluation (mean over episodes), every member")
    for ax in axes:
        ax.set_xlabel("env steps per member")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(run_dir / POPULATION_CURVES, dpi=110)
    plt.close(fig)
