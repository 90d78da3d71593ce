"""Regenerate everything in ``results/``: ``python scripts/results.py`` (``make results``).

Trains each environment's preset for several seeds (skipping runs that already
finished, so an interrupted regeneration resumes), then writes the learning curves,
the results table beside the Stable-Baselines3 reference figures, a GIF of the trained
CartPole agent and a small exported CartPole model. Nothing in ``results/`` is edited
by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ENVS = ("CartPole-v1", "Acrobot-v1", "LunarLander-v3")
#: Box action spaces (a Gaussian policy): ``make results-continuous`` (``--set continuous``),
#: its own folder (results/continuous) and docs block, so the two sets regenerate apart.
CONTINUOUS_ENVS = ("Pendulum-v1", "MountainCarContinuous-v0", "LunarLanderContinuous-v3", "BipedalWalker-v3")
SETS = {"discrete": ENVS, "continuous": CONTINUOUS_ENVS}

# Stable-Baselines3 A2C references: RL Baselines3 Zoo's benchmark and SB3 2.9.2 runs
# measured on this project's 2-core machine (the project's field guide).
SB3_REFERENCE = {
    "CartPole-v1": "500.0 ± 0.0 after 500k steps (zoo settings, 5 of 5 seeds, measured here)",
    "Acrobot-v1": "-84.4 after 500k steps (16 envs, normalised obs, measured here)",
    "LunarLander-v3": "155.8 ± 80.4 after 200k steps (zoo); 60.3 ± 136 measured here",
    # rl-baselines3-zoo benchmark, A2C with gSDE (use_sde=True), 1 seed
    "Pendulum-v1": "-163 ± 103 after 1M steps (zoo, with gSDE)",
    "MountainCarContinuous-v0": "91.2 after 100k steps (zoo, with gSDE)",
    "LunarLanderContinuous-v3": "84 ± 146 after 5M steps (zoo, with gSDE)",
    "BipedalWalker-v3": "300 ± 23 after 5M steps (zoo, with gSDE)",
}


def run_dir_for(runs: Path, env_id: str, seed: int) -> Path:
    return runs / f"{env_id}__s{seed}"


def train_one(runs: Path, env_id: str, seed: int, extra: list[str] = []) -> Path:  # noqa: B006
    """Train one preset run in its own process (one TF thread each) unless it finished."""
    run_dir = run_dir_for(runs, env_id, seed)
    if (run_dir / "summary.json").is_file():
        return run_dir
    cmd = [
        sys.executable,
        "-m",
        "a2c",
        "train",
        "--env",
        env_id,
        "--seed",
        str(seed),
        "--run-dir",
        str(run_dir),
        "--overwrite",
        "--no-progress",
        *extra,
    ]
    print("$", " ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, check=True)
    return run_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python scripts/results.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results", help="output folder (default: results)")
    parser.add_argument("--runs", default="runs/results", help="where the training runs go (git-ignored)")
    parser.add_argument(
        "--set",
        choices=sorted(SETS),
        default="discrete",
        dest="env_set",
        help="which environments (default: discrete); also names the docs block, "
        "<!-- results:start --> or <!-- results-continuous:start -->",
    )
    parser.add_argument("--envs", nargs="+", default=None, help="override the set's environments")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default: 0,1,2)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="runs in parallel")
    parser.add_argument(
        "--readme", default=None, help="also rewrite the results block of this Markdown page (docs/results.md)"
    )
    parser.add_argument(
        "--total-steps",
        type=int,
        default=None,
        help="override the presets' budgets (smoke tests only; the results use the presets)",
    )
    args = parser.parse_args(argv)
    args.envs = args.envs or list(SETS[args.env_set])
    out, runs = Path(args.out), Path(args.runs)
    out.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]

    # TRAIN: every (env, seed), the longest first so parallel jobs finish together.
    jobs = [(env, seed) for env in reversed(args.envs) for seed in seeds]
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        extra = [] if args.total_steps is None else ["--total-steps", str(args.total_steps)]
        run_dirs = list(pool.map(lambda job: train_one(runs, *job, extra), jobs))

    from a2c.common.tf_setup import import_tensorflow_quietly

    import_tensorflow_quietly()  # heavy imports only after training
    from a2c.analysis.plotting import plot_learning_curves_by_env
    from a2c.analysis.run_data import results_table
    from a2c.artifacts.export import export_saved_model
    from a2c.artifacts.loading import evaluate_path
    from a2c.artifacts.saving import load_keras_model

    # FIGURES AND TABLE
    curves = plot_learning_curves_by_env(run_dirs, out)
    by_env: dict[str, list[Path]] = {}
    for (env, _), run_dir in zip(jobs, run_dirs):
        by_env.setdefault(env, []).append(run_dir)
    table = results_table(run_dirs, per_run=True)
    reference = "\n".join(f"| {env} | {SB3_REFERENCE.get(env, 'n/a')} |" for env in args.envs)
    command = "python scripts/results.py " + " ".join(argv if argv is not None else sys.argv[1:])
    (out / "results.md").write_text(
        "# Results\n\nProduced by `" + command.strip() + "` (see docs/results.md). Greedy evaluation: 100 episodes, "
        "each on its own seed (1,000,000 + k) never used in training. Runs whose preset has `keep_best` "
        "report the weights of their best periodic evaluation, chosen on seeds of their own (2,000,000 + k); "
        '"Last weights" is what their last weights score on the same 100 episodes.\n\n'
        + table
        + "\n## Stable-Baselines3 A2C reference\n\n| Environment | SB3 A2C greedy return |\n|---|---|\n"
        + reference
        + "\n\n## Learning curves\n\n"
        + "\n".join(f"![{env}]({Path(p).name})" for env, p in curves.items())
        + "\n"
    )

    # CARTPOLE ARTIFACTS: the best seed's model (small) and a GIF of it.
    if "CartPole-v1" in by_env:
        summaries = {d: json.loads((d / "summary.json").read_text()) for d in by_env["CartPole-v1"]}
        best = max(summaries, key=lambda d: summaries[d]["eval_mean_return"] or float("-inf"))
        model_dir = out / "cartpole_model"
        model_dir.mkdir(exist_ok=True)
        shutil.copyfile(best / "model.keras", model_dir / "model.keras")
        shutil.copyfile(best / "config.toml", model_dir / "config.toml")
        export_saved_model(load_keras_model(best / "model.keras"), model_dir / "saved_model", env_id="CartPole-v1")
        result, _ = evaluate_path(model_dir / "saved_model", "CartPole-v1", episodes=1, gif=out / "cartpole.gif")
        print(f"CartPole GIF: {out / 'cartpole.gif'} (return {result.mean:.0f})")
    if args.readme:
        marker = "results" if args.env_set == "discrete" else f"results-{args.env_set}"
        first_curve = curves.get("CartPole-v1" if args.env_set == "discrete" else args.envs[0])
        update_readme(Path(args.readme), table, reference, first_curve, command.strip(), marker)
    print(f"wrote {out / 'results.md'}")
    return 0


def update_readme(
    readme: Path, table: str, reference: str, curve: str | None, command: str, marker: str = "results"
) -> None:
    """Replace the Markdown page's block between the ``<!-- {marker}:start/end -->`` markers with the fresh table."""
    name = Path(curve).stem.replace("learning_curve_", "") if curve else ""
    curve_md = f"\n![{name} learning curves]({Path(curve).as_posix()})\n" if curve else ""
    block = (
        f"_Generated by `{command}`; do not edit by hand._\n\n{table}\n"
        "Stable-Baselines3 A2C reference:\n\n| Environment | SB3 A2C greedy return |\n|---|---|\n"
        f"{reference}\n{curve_md}"
    )
    from a2c.common.files import replace_marked_block

    replace_marked_block(readme, marker, block)


if __name__ == "__main__":
    sys.exit(main())
