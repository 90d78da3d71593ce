#!/usr/bin/env python
"""A short learning curve of the MinAtar/Breakout-v1 preset (issue 26): the standard trainer on
seeds from 100,000 up, greedy evaluations every ``eval_every`` steps (the preset's), written to
results/minatar/breakout.{json,md} after every run.

    nice -n 10 python benchmarks/minatar_curve.py --seeds 2 --jobs 1
    python benchmarks/minatar_curve.py --render   # the .md again from the .json
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

from a2c.common.files import atomic_write_text  # noqa: E402

ENV_ID = "MinAtar/Breakout-v1"
SEED_BASE = 100_000


def run_one(seed: int) -> dict[str, Any]:
    """One preset run; its evaluation curve (steps, training seconds, mean greedy return)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from a2c.common.tf_setup import import_tensorflow_quietly
    from a2c.config.resolve import make_config

    import_tensorflow_quietly()
    from a2c.run.train import train

    with tempfile.TemporaryDirectory(prefix="a2c-minatar-") as tmp:
        cfg = make_config(
            {
                "env_id": ENV_ID,
                "seed": seed,
                "final_eval_episodes": 0,
                "checkpoint_every": 0,
                "progress": False,
                "run_dir": str(Path(tmp) / "run"),
            }
        )
        result = train(cfg, quiet=True)
        evals = common.read_eval_clock(result.run_dir)
    return {
        "seed": seed,
        "total_steps": cfg.total_steps,
        "eval_episodes": cfg.eval_episodes,
        "steps_per_second": result.summary["steps_per_second"],
        "curve": [
            {"steps": e["global_step"], "seconds": e["train_seconds"], "mean_return": e["mean_return"]} for e in evals
        ],
    }


def report_md(runs: list[dict[str, Any]]) -> str:
    seeds = [r["seed"] for r in runs]
    lines = [
        f"# {ENV_ID}: a short learning curve of the preset",
        "",
        "Written by `nice -n 10 python benchmarks/minatar_curve.py` (issue 26): the standard trainer with the "
        f"{ENV_ID} preset (the MinAtar paper's network: one 16x3x3 convolution on the 10x10x4 channels-last "
        "grid, a 128-unit Dense layer; 16 envs x 5 steps, RMSprop 7e-4, entropy 0.01), seeds "
        f"{', '.join(map(str, seeds))}; greedy mean return over {runs[0]['eval_episodes']} episodes at each "
        "evaluation, training seconds excluding evaluations (2 shared cores).",
        "",
        "| steps | " + " | ".join(f"seed {s}" for s in seeds) + " | median |",
        "|---:|" + "---:|" * (len(seeds) + 1),
    ]
    steps = sorted({p["steps"] for r in runs for p in r["curve"]})
    for step in steps:
        values = [next((p["mean_return"] for p in r["curve"] if p["steps"] == step), None) for r in runs]
        got = [v for v in values if v is not None]
        cells = " | ".join("-" if v is None else f"{v:.1f}" for v in values)
        lines.append(f"| {step:,} | {cells} | {statistics.median(got):.1f} |")
    lines += ["", "| seed | steps/s | training seconds |", "|---:|---:|---:|"]
    for r in runs:
        last = r["curve"][-1]["seconds"] if r["curve"] else float("nan")
        lines.append(f"| {r['seed']} | {r['steps_per_second']:,.0f} | {last:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2, help="seeds (from 100000)")
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel")
    parser.add_argument("--out", default="results/minatar/breakout")
    parser.add_argument("--render", action="store_true", help="only rewrite the .md from the .json")
    args = parser.parse_args()
    out = Path(args.out)
    if args.render:
        atomic_write_text(out.with_suffix(".md"), report_md(json.loads(out.with_suffix(".json").read_text())["runs"]))
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    runs: list[dict[str, Any]] = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for row in pool.map(run_one, [SEED_BASE + i for i in range(args.seeds)]):
            runs.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "curve"}), flush=True)
            atomic_write_text(out.with_suffix(".json"), json.dumps({"env_id": ENV_ID, "runs": runs}, indent=1) + "\n")
            atomic_write_text(out.with_suffix(".md"), report_md(runs))


if __name__ == "__main__":
    main()
