"""Recurrent A2C on the partially observed tasks (velocities removed, a2c.envs.novel).

Each run is ``a2c train`` with the env's preset (a recurrent LSTM policy) in a subprocess;
the feed-forward policy runs the same preset with ``recurrent=none``, so the only difference
is the memory. The final greedy evaluation is 100 episodes (seeds 1,000,000 + k).

    python benchmarks/bench_recurrent.py --out results/recurrent.json   # writes .json, .md, .png
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
#: (env, policy, seeds, target greedy 100-episode mean)
RUNS = (
    ("CartPoleNoVel-v1", "lstm", (0, 1, 2), 475.0),
    ("CartPoleNoVel-v1", "none", (0, 1, 2), 475.0),
    ("PendulumNoVel-v1", "lstm", (0,), -250.0),
)


def train(env_id: str, recurrent: str, seed: int, root: Path) -> dict:
    run_dir = root / f"{env_id}__{recurrent}__s{seed}"
    cmd = [sys.executable, "-m", "a2c", "train", "--env", env_id, "--seed", str(seed), "--recurrent", recurrent]
    cmd += ["--final-eval-episodes", "100", "--run-dir", str(run_dir), "--no-progress"]
    subprocess.run(
        cmd, check=True, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    )
    summary = json.loads((run_dir / "summary.json").read_text())
    with open(run_dir / "evaluations.csv") as f:
        rows = list(csv.DictReader(f))
    curve = [(int(r["global_step"]), float(r["eval/mean_return"])) for r in rows[:-1]]
    return {
        "env_id": env_id,
        "recurrent": recurrent,
        "seed": seed,
        "final_mean_return": summary["eval_mean_return"],
        "final_std_return": summary["eval_std_return"],
        "final_episodes": summary["eval_episodes"],
        "train_seconds": summary.get("train_seconds"),
        "curve": curve,
    }


def write_markdown(results: list[dict], out: Path) -> None:
    lines = [
        "# Recurrent A2C on partially observed tasks",
        "",
        "Written by `python benchmarks/bench_recurrent.py --out results/recurrent.json`: each env's preset",
        "(a2c/config/presets.py), the recurrent policy (LSTM) beside the same preset with `--recurrent none`.",
        "Final greedy evaluation: 100 episodes, seeds 1,000,000 + k. Curves: results/recurrent.png.",
        "",
        "| env | policy | seed | greedy 100-episode mean | std | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        target = next(t for e, p, _, t in RUNS if e == r["env_id"])
        met = "yes" if r["final_mean_return"] >= target else "no"
        policy = "feed-forward" if r["recurrent"] == "none" else r["recurrent"].upper()
        lines.append(
            f"| {r['env_id']} | {policy} | {r['seed']} | {r['final_mean_return']:.1f} | "
            f"{r['final_std_return']:.1f} | >= {target:g} | {met} |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


def plot(results: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = sorted({r["env_id"] for r in results})
    fig, axes = plt.subplots(1, len(envs), figsize=(6 * len(envs), 4), squeeze=False)
    for ax, env_id in zip(axes[0], envs):
        for r in (r for r in results if r["env_id"] == env_id):
            steps, means = zip(*r["curve"]) if r["curve"] else ((), ())
            style = "-" if r["recurrent"] != "none" else "--"
            label = f"{'feed-forward' if r['recurrent'] == 'none' else r['recurrent'].upper()} s{r['seed']}"
            ax.plot(steps, means, style, label=label)
        ax.set_title(env_id)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("greedy mean return")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/recurrent.json")
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel")
    args = parser.parse_args()
    out = Path(args.out)
    jobs = [(env_id, policy, seed) for env_id, policy, seeds, _ in RUNS for seed in seeds]
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda job: train(*job, Path(tmp)), jobs))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"runs": results}, indent=1) + "\n")
    write_markdown(results, out)
    plot(results, out)
    print(out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
