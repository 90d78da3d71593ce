#!/usr/bin/env python
"""A short learning curve of a MinAtar game's preset (issue 26): the standard trainer on seeds
from 100,000 up, greedy evaluations every ``eval_every`` steps (the preset's), written to
results/minatar/<game>.{json,md} after every run.

    nice -n 10 python benchmarks/minatar_curve.py --seeds 2 --jobs 1                    # Breakout
    nice -n 10 python benchmarks/minatar_curve.py --env MinAtar/SpaceInvaders-v1 --seeds 2 --jobs 1
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

DEFAULT_ENV = "MinAtar/Breakout-v1"
SEED_BASE = 100_000
# Published returns at 10M steps (10x this budget): gymnax-blines PPO, as the project's field guide
# quotes them; the MinAtar paper's AC(lambda) baseline is of the same order.
PUBLISHED_10M = {"MinAtar/Breakout-v1": "~28", "MinAtar/SpaceInvaders-v1": "~131", "MinAtar/Asterix-v1": "~15"}


def run_one(env_id: str, seed: int) -> dict[str, Any]:
    """One preset run; its evaluation curve (steps, training seconds, mean greedy return)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from a2c.common.tf_setup import import_tensorflow_quietly
    from a2c.config.resolve import make_config

    import_tensorflow_quietly()
    from a2c.run.train import train

    with tempfile.TemporaryDirectory(prefix="a2c-minatar-") as tmp:
        cfg = make_config(
            {
                "env_id": env_id,
                "seed": seed,
                "final_eval_episodes": 0,
                "checkpoint_every": 0,
                "progress": False,
                "run_dir": str(Path(tmp) / "run"),
            }
        )
        result = train(cfg, quiet=True)
        evals = common.read_eval_clock(result.run_dir)
    shape = result.model.inputs[0].shape
    return {
        "seed": seed,
        "grid": [int(d) for d in shape[1:]],
        "total_steps": cfg.total_steps,
        "eval_episodes": cfg.eval_episodes,
        "steps_per_second": result.summary["steps_per_second"],
        "curve": [
            {"steps": e["global_step"], "seconds": e["train_seconds"], "mean_return": e["mean_return"]} for e in evals
        ],
    }


def report_md(env_id: str, runs: list[dict[str, Any]]) -> str:
    seeds = [r["seed"] for r in runs]
    grid = "x".join(map(str, runs[0].get("grid", [10, 10, 4])))
    command = "nice -n 10 python benchmarks/minatar_curve.py" + ("" if env_id == DEFAULT_ENV else f" --env {env_id}")
    lines = [
        f"# {env_id}: a short learning curve of the preset",
        "",
        f"Written by `{command}` (issue 26): the standard trainer with the "
        f"{env_id} preset (the MinAtar paper's network: one 16x3x3 convolution on the {grid} channels-last "
        "grid, a 128-unit Dense layer; 16 envs x 5 steps, RMSprop 7e-4, entropy 0.01), seeds "
        f"{', '.join(map(str, seeds))}; greedy mean return over {runs[0]['eval_episodes']} episodes at each "
        "evaluation, training seconds excluding evaluations (2 shared cores).",
        "",
        f"Published for comparison: {PUBLISHED_10M.get(env_id, 'n/a')} after 10M steps (gymnax-blines PPO), ten "
        "times this budget.",
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
    parser.add_argument("--env", default=DEFAULT_ENV, help=f"a MinAtar game with a preset (default {DEFAULT_ENV})")
    parser.add_argument("--seeds", type=int, default=2, help="seeds (from 100000)")
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel")
    parser.add_argument("--out", default=None, help="default: results/minatar/<game, lower case>")
    parser.add_argument("--render", action="store_true", help="only rewrite the .md from the .json")
    args = parser.parse_args()
    game = args.env.split("/")[-1].split("-v")[0].lower()
    out = Path(args.out or f"results/minatar/{game}")
    if args.render:
        data = json.loads(out.with_suffix(".json").read_text())
        atomic_write_text(out.with_suffix(".md"), report_md(data.get("env_id", args.env), data["runs"]))
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    runs: list[dict[str, Any]] = []
    seeds = [SEED_BASE + i for i in range(args.seeds)]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for row in pool.map(run_one, [args.env] * len(seeds), seeds):
            runs.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "curve"}), flush=True)
            atomic_write_text(out.with_suffix(".json"), json.dumps({"env_id": args.env, "runs": runs}, indent=1) + "\n")
            atomic_write_text(out.with_suffix(".md"), report_md(args.env, runs))


if __name__ == "__main__":
    main()
