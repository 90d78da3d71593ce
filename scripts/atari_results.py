"""Atari results under a wall-clock budget: ``python scripts/atari_results.py`` (``make results-atari``).

The zoo trains Pong and Breakout for 10M steps; a 2-core machine manages a few
hundred steps per second, so the presets' budget takes days. Each invocation
therefore gives every game ``--minutes`` of training: it starts the run (or resumes
it from its newest checkpoint: ``a2c train --resume``), stops it with SIGINT when the
time is up (the run driver checkpoints first), and then writes what the runs have
reached so far, however far that is: ``results/atari/results.md``, a learning curve
per game and the docs block (docs/atari.md) between ``<!-- results-atari:start/end -->``. Running it
again continues the same runs, until they reach the preset's 10M steps and finish
with their final evaluation.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import subprocess
import sys
from pathlib import Path

from results import update_readme

ENVS = ("ALE/Pong-v5", "ALE/Breakout-v5")
#: rl-baselines3-zoo benchmark.md, A2C, 10M steps, 16 envs, AtariWrapper + 4 frames (the project's field guide).
ZOO_REFERENCE = {
    "ALE/Pong-v5": "17.3 ± 3.2 (PongNoFrameskip-v4)",
    "ALE/Breakout-v5": "279.8 ± 122.2 (BreakoutNoFrameskip-v4)",
}
ZOO_SCORE = {"ALE/Pong-v5": 17.29, "ALE/Breakout-v5": 279.8}
GRACE_SECONDS = 300  # after SIGINT: the checkpoint, the curves


def run_dir_for(runs: Path, env_id: str, seed: int) -> Path:
    from a2c.analysis.plotting import safe_name

    return runs / f"{safe_name(env_id)}__s{seed}"


def has_checkpoint(run_dir: Path) -> bool:
    index = run_dir / "checkpoints" / "checkpoint"
    return index.is_file() and "model_checkpoint_path" in index.read_text()


def train_for(run_dir: Path, env_id: str, seed: int, seconds: float, extra: list[str]) -> str:
    """Train (or resume) one run for at most ``seconds``; return what became of it."""
    if (run_dir / "summary.json").is_file():
        return "finished"
    a2c = [sys.executable, "-m", "a2c", "train", "--no-progress"]
    if has_checkpoint(run_dir):
        cmd = [*a2c, "--resume", str(run_dir)]
    else:
        cmd = [*a2c, "--env", env_id, "--seed", str(seed), "--run-dir", str(run_dir), "--overwrite", *extra]
    print("$", " ".join(cmd[1:]), f"(for at most {seconds / 60:.0f} min)", flush=True)
    proc = subprocess.Popen(cmd)
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # the run driver checkpoints, draws its curves and exits
        try:
            proc.wait(timeout=GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        return "stopped"
    except BaseException:
        proc.send_signal(signal.SIGINT)
        proc.wait()
        raise
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[1:])} failed with status {proc.returncode}")
    return "finished"


def _last(values, default: float = math.nan) -> float:
    import numpy as np

    finite = values[np.isfinite(values)] if values is not None else []
    return float(finite[-1]) if len(finite) else default


def plot_against_zoo(run_dirs: list[Path], out: Path) -> dict[str, Path]:
    """Each game's learning curve with the zoo's final score drawn across it."""
    import matplotlib.pyplot as plt

    from a2c.analysis.plotting import plot_learning_curve, safe_name, save_figure
    from a2c.analysis.run_data import group_by_env, load_run

    paths = {}
    for env_id, runs in group_by_env(load_run(d) for d in run_dirs).items():
        fig = plot_learning_curve([r.run_dir for r in runs])
        ax = fig.axes[0]
        if env_id in ZOO_SCORE:
            ax.axhline(
                ZOO_SCORE[env_id], color="gray", linestyle="--", label=f"zoo A2C after 10M steps: {ZOO_SCORE[env_id]:g}"
            )
            ax.legend(fontsize="small", loc="best")
        paths[env_id] = out / f"learning_curve_{safe_name(env_id)}.png"
        save_figure(fig, paths[env_id])
        plt.close(fig)
    return paths


def progress_table(run_dirs: list[Path]) -> str:
    """One row per game: how far its run got and what it scores there, beside the zoo's score."""
    from a2c.analysis.run_data import EVAL_MEAN, RETURN, load_run
    from a2c.config.resolve import make_config

    rows = [
        "| Game | Env steps reached | of | Games played | Training game return (last 100 games) "
        "| Latest greedy eval (step) | Train time (h) | Steps/s | Zoo A2C at 10M |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for run_dir in run_dirs:
        run = load_run(run_dir)
        m, e = run.metrics, run.evaluations
        steps = int(_last(m["global_step"], 0))
        total = make_config({}, run_dir / "config.toml").total_steps
        games = int(_last(m.get("rollout/episodes"), 0))
        ret = _last(m.get(RETURN))
        if e and len(e.get(EVAL_MEAN, [])):
            evaluation = f"{_last(e[EVAL_MEAN]):.1f} ({int(_last(e['global_step'])):,})"
        else:
            evaluation = "none yet"
        hours = _last(m.get("time/elapsed_seconds"), 0.0) / 3600
        speed = _last(m.get("time/steps_per_second"))
        rows.append(
            f"| {run.env_id} | {steps:,} | {total:,} | {games:,} | "
            f"{'n/a' if math.isnan(ret) else f'{ret:.1f}'} | {evaluation} | {hours:.2f} | {speed:.0f} | "
            f"{ZOO_REFERENCE.get(run.env_id, 'n/a')} |"
        )
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python scripts/atari_results.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/atari", help="output folder (default: results/atari)")
    parser.add_argument("--runs", default="runs/results", help="where the training runs go (git-ignored)")
    parser.add_argument("--envs", nargs="+", default=list(ENVS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--minutes",
        type=float,
        default=17.0,
        help="training time per game in this invocation (default: 17); 0 only rewrites the results",
    )
    parser.add_argument(
        "--readme", default=None, help="also rewrite the results-atari block of this Markdown page (docs/atari.md)"
    )
    parser.add_argument(
        "--total-steps", type=int, default=None, help="override the presets' 10M steps for new runs (smoke tests only)"
    )
    args = parser.parse_args(argv)
    out, runs = Path(args.out), Path(args.runs)
    out.mkdir(parents=True, exist_ok=True)
    extra = [] if args.total_steps is None else ["--total-steps", str(args.total_steps)]

    # TRAIN: each game in turn, for its share of the budget (resuming where it stopped).
    run_dirs = [run_dir_for(runs, env, args.seed) for env in args.envs]
    states = {}
    for env, run_dir in zip(args.envs, run_dirs):
        states[env] = train_for(run_dir, env, args.seed, args.minutes * 60, extra) if args.minutes > 0 else "kept"
    run_dirs = [d for d in run_dirs if (d / "metrics.csv").is_file()]
    if not run_dirs:
        raise SystemExit("no Atari run has logged anything yet; give it more --minutes")

    from a2c.common.tf_setup import import_tensorflow_quietly

    import_tensorflow_quietly()
    # CURVES AND TABLE
    curves = plot_against_zoo(run_dirs, out)
    table = progress_table(run_dirs)
    command = "python scripts/atari_results.py " + " ".join(argv if argv is not None else sys.argv[1:])
    (out / "results.md").write_text(
        "# Atari results (work in progress)\n\nProduced by `" + command.strip() + "` (see docs/atari.md): each "
        "invocation trains every game for its share of time and resumes the same runs; "
        "\"of\" is the preset's budget (the zoo's). Training returns are whole games (all lives), unclipped; "
        "greedy evaluations are whole games on seeds 1,000,000 + k.\n\n"
        + table
        + "\n## Learning curves\n\n"
        + "\n".join(f"![{env}]({Path(p).name})" for env, p in curves.items())
        + "\n"
    )
    (out / "progress.json").write_text(json.dumps({"last_invocation": states}, indent=2) + "\n")
    if args.readme:
        reference = "\n".join(f"| {env} | {ZOO_REFERENCE.get(env, 'n/a')} after 10M steps (zoo) |" for env in args.envs)
        update_readme(
            Path(args.readme), table, reference, str(next(iter(curves.values()))), command.strip(), "results-atari"
        )
    print(f"wrote {out / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
