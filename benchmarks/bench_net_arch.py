#!/usr/bin/env python
"""Separate actor and critic networks against the shared trunk (issue 26), for steps and
wall-clock time to a solve.

Each environment trains with its current standard preset, once with ``net_arch="shared"``
and once with ``net_arch="separate"`` (the policy and the value each get their own Dense
layers of the preset's ``hidden_sizes``), on seeds from 100,000 up that no sweep, benchmark or
``make results`` uses, with a greedy evaluation every ``eval_every`` steps. Per run: the
training clock and steps at the first evaluation at or above the solve threshold, at the
first one after which every evaluation stays there ("stable"), and the last evaluation
(``benchmarks/sweep_presets.py``'s definitions). Writes results/separate_networks.{json,md}.

    nice -n 10 python benchmarks/bench_net_arch.py --seeds 3 --lunar-seeds 2 --jobs 2
    nice -n 10 python benchmarks/bench_net_arch.py --envs CartPole-v1 --eval-every 2500 --total-steps 60000 \
        --seeds 5 --out results/separate_networks_cartpole_fine   # the first solve at a finer resolution
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from sweep_presets import solve_points  # noqa: E402

from a2c.common.files import atomic_write_text  # noqa: E402

SEED_BASE = 100_000
ARCHS = ("shared", "separate")
#: env -> (solve threshold, eval_every, eval_episodes); steps: the preset's total_steps.
ENVS: dict[str, tuple[float, int, int]] = {
    "CartPole-v1": (475.0, 10_000, 20),
    "Acrobot-v1": (-100.0, 25_000, 20),
    "LunarLander-v3": (200.0, 25_000, 10),
}


def run_one(job: tuple[str, str, int, dict[str, Any]]) -> dict[str, Any]:
    """One training run in this worker process; returns its solve points."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from a2c.common.tf_setup import import_tensorflow_quietly
    from a2c.config.resolve import make_config

    import_tensorflow_quietly()
    from a2c.run.train import train

    env_id, arch, seed, overrides = job
    solved, eval_every, episodes = ENVS[env_id]
    with tempfile.TemporaryDirectory(prefix="a2c-netarch-") as tmp:
        cfg = make_config(
            {
                "env_id": env_id,
                "seed": seed,
                "net_arch": arch,
                "eval_every": eval_every,
                "eval_episodes": episodes,
                "final_eval_episodes": 0,
                "checkpoint_every": 0,
                "progress": False,
                "run_dir": str(Path(tmp) / "run"),
                **overrides,
            }
        )
        result = train(cfg, quiet=True)
        evals = common.read_eval_clock(result.run_dir)
    row = {
        "env_id": env_id,
        "net_arch": arch,
        "seed": seed,
        "total_steps": cfg.total_steps,
        "eval_every": cfg.eval_every,
    }
    return {**row, "steps_per_second": result.summary["steps_per_second"], **solve_points(evals, solved)}


def _median(values: list[float | None]) -> str:
    """Median over the runs that got there, with how many did."""
    got = [v for v in values if v is not None]
    if not got:
        return f"- (0/{len(values)})"
    return f"{statistics.median(got):,.0f} ({len(got)}/{len(values)})"


def report_md(runs: list[dict[str, Any]], seeds: dict[str, list[int]], overrides: dict[str, Any]) -> str:
    command = "nice -n 10 python benchmarks/bench_net_arch.py" + "".join(
        f" --{k.replace('_', '-')} {v}" for k, v in overrides.items()
    )
    lines = [
        "# Separate actor and critic networks against the shared trunk",
        "",
        f"Written by `{command}` (issue 26): each environment's standard "
        "preset"
        + (f" (with {overrides})" if overrides else "")
        + " with `net_arch = shared` and `separate` (the policy and the value each get their own Dense "
        "layers of the preset's `hidden_sizes`), seeds " + "; ".join(f"{e}: {s}" for e, s in seeds.items()) + ". "
        "Steps and training seconds (evaluations excluded) to the first greedy evaluation at or above the "
        "threshold, and to the first after which every evaluation stays there (stable); medians over the "
        "runs that got there (how many of them did). The machine's 2 cores were shared with other work, so "
        "seconds compare the two architectures only roughly; steps do not depend on it.",
        "",
        "| env | threshold | net_arch | first solve steps | first solve s | stable steps | stable s | "
        "final eval (median) | steps/s (median) |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for env_id, (solved, _, _) in ENVS.items():
        for arch in ARCHS:
            rs = [r for r in runs if r["env_id"] == env_id and r["net_arch"] == arch]
            if not rs:
                continue
            finals = [r["final_eval"] for r in rs if r["final_eval"] is not None]
            lines.append(
                f"| {env_id} | {solved:g} | {arch} | {_median([r['first_steps'] for r in rs])} | "
                f"{_median([r['first_seconds'] for r in rs])} | {_median([r['stable_steps'] for r in rs])} | "
                f"{_median([r['stable_seconds'] for r in rs])} | "
                f"{statistics.median(finals):.1f} | {statistics.median(r['steps_per_second'] for r in rs):,.0f} |"
            )
    lines += ["", "Per run:", "", "| env | net_arch | seed | first steps | first s | stable steps | final eval |"]
    lines.append("|---|---|---:|---:|---:|---:|---:|")
    for r in runs:
        first_s = "-" if r["first_seconds"] is None else f"{r['first_seconds']:.0f}"
        lines.append(
            f"| {r['env_id']} | {r['net_arch']} | {r['seed']} | {r['first_steps'] or '-'} | {first_s} | "
            f"{r['stable_steps'] or '-'} | {r['final_eval']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds per env and architecture (from 100000)")
    parser.add_argument("--lunar-seeds", type=int, default=None, help="seeds for LunarLander-v3 (default --seeds)")
    parser.add_argument("--envs", default=",".join(ENVS), help="comma-separated subset of " + ", ".join(ENVS))
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel")
    parser.add_argument("--out", default="results/separate_networks")
    parser.add_argument("--eval-every", type=int, help="instead of the env's (a finer resolution of the solve)")
    parser.add_argument("--eval-episodes", type=int, help="instead of the env's")
    parser.add_argument("--total-steps", type=int, help="instead of the preset's (the first solve needs fewer)")
    args = parser.parse_args()
    names = {"eval_every": args.eval_every, "eval_episodes": args.eval_episodes, "total_steps": args.total_steps}
    overrides = {k: v for k, v in names.items() if v is not None}
    seeds = {
        env: [
            SEED_BASE + i
            for i in range(args.lunar_seeds if env == "LunarLander-v3" and args.lunar_seeds else args.seeds)
        ]
        for env in args.envs.split(",")
    }
    jobs = [(env, arch, seed, overrides) for env, env_seeds in seeds.items() for seed in env_seeds for arch in ARCHS]
    runs: list[dict[str, Any]] = []
    out = Path(args.out)
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for row in pool.map(run_one, jobs):
            runs.append(row)
            print(json.dumps(row), flush=True)
            # written after every run, so an interrupted measurement keeps what it finished
            report = {"seeds": seeds, "overrides": overrides, "runs": runs}
            atomic_write_text(out.with_suffix(".json"), json.dumps(report, indent=1) + "\n")
            atomic_write_text(out.with_suffix(".md"), report_md(runs, seeds, overrides))


if __name__ == "__main__":
    main()
