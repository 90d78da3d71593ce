"""Time to a Pendulum-v1 greedy return >= -200: our fused preset beside Stable-Baselines3 A2C.

SB3 runs RL Baselines3 Zoo's A2C Pendulum settings (8 envs x 8 steps, gamma 0.9, GAE 0.9,
vf 0.4, RMSprop, lr 7e-4 decayed linearly, gSDE with log_std_init -2, no orthogonal init,
VecNormalize on observations and rewards, 1M steps), one torch thread; ours the fused
Pendulum preset (2M steps). Both are evaluated greedily on 100 episodes (seeds 1,000,000 + k)
every 100k steps, evaluation time off the clock; our clock includes compilation.

    python benchmarks/bench_pendulum.py --seeds 0 --out results/continuous/pendulum_benchmark.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import read_eval_clock, train_sb3  # noqa: E402

THRESHOLD = -200.0
EVAL_EVERY, EVAL_EPISODES = 100_000, 100


def solve_times(evals: list[dict]) -> dict:
    first = next((e for e in evals if e["mean_return"] >= THRESHOLD), None)
    stable = next((e for i, e in enumerate(evals) if all(x["mean_return"] >= THRESHOLD for x in evals[i:])), None)
    return {
        "first_seconds": first and first["train_seconds"],
        "first_steps": first and first["global_step"],
        "stable_seconds": stable and stable["train_seconds"],
        "stable_steps": stable and stable["global_step"],
        "final": evals[-1]["mean_return"] if evals else None,
    }


def ours(seed: int) -> dict:
    from a2c.config.resolve import make_fused_config
    from a2c.run.train import train_fused

    with tempfile.TemporaryDirectory() as tmp:
        cfg = make_fused_config(
            {
                "env_id": "Pendulum-v1",
                "seed": seed,
                "eval_every": EVAL_EVERY,
                "eval_episodes": EVAL_EPISODES,
                "final_eval_episodes": EVAL_EPISODES,
                "progress": False,
                "num_threads": 1,
                "run_dir": str(Path(tmp) / "run"),
            }
        )
        result = train_fused(cfg, overwrite=True, quiet=True)
        evals = read_eval_clock(Path(tmp) / "run")
    return {
        "impl": "ours (fused preset)",
        "seed": seed,
        "total_steps": result.summary["total_steps"],
        "train_seconds": result.summary["train_seconds"],
        "evals": evals,
        **solve_times(evals),
    }


def sb3(seed: int, total_steps: int) -> dict:
    run = train_sb3(
        "Pendulum-v1",
        seed,
        total_steps,
        EVAL_EVERY,
        EVAL_EPISODES,
        n_envs=8,
        threads=1,
        always_final_eval=True,
        normalize=True,
        n_steps=8,
        gamma=0.9,
        gae_lambda=0.9,
        vf_coef=0.4,
        ent_coef=0.0,
        max_grad_norm=0.5,
        use_rms_prop=True,
        normalize_advantage=False,
        learning_rate=lambda progress: 7e-4 * progress,
        use_sde=True,
        policy_kwargs=dict(log_std_init=-2, ortho_init=False),
    )
    return {
        "impl": "sb3 (zoo settings, gSDE)",
        "seed": seed,
        "total_steps": run["total_steps"],
        "train_seconds": run["train_seconds"],
        "evals": run["evals"],
        **solve_times(run["evals"]),
    }


def markdown(rows: list[dict]) -> str:
    out = [
        "# Pendulum-v1: time to a greedy 100-episode return >= -200",
        "",
        "Produced by `python benchmarks/bench_pendulum.py` (see its docstring for the settings).",
        "",
        "| implementation | seed | steps | train s | first >= -200 (steps, s) | stays >= -200 from (steps, s) "
        "| final |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        first = f"{r['first_steps']:,}, {r['first_seconds']:.1f}" if r["first_steps"] else "never"
        stable = f"{r['stable_steps']:,}, {r['stable_seconds']:.1f}" if r["stable_steps"] else "never"
        out.append(
            f"| {r['impl']} | {r['seed']} | {r['total_steps']:,} | {r['train_seconds']:.1f} | {first} | "
            f"{stable} | {r['final']:.1f} |"
        )
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--sb3-steps", type=int, default=1_000_000)
    parser.add_argument("--out", default="results/continuous/pendulum_benchmark.json")
    args = parser.parse_args()
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        rows.append(ours(seed))
        rows.append(sb3(seed, args.sb3_steps))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(rows))
    print(markdown(rows))


if __name__ == "__main__":
    main()
