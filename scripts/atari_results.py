"""Atari learning results, resumable across invocations: ``python scripts/atari_results.py`` (``make results-atari``).

Each game has a step budget (:data:`PLAN`: Seaquest and SpaceInvaders 1M steps x 2 seeds, Breakout 5M x 1
seed, Pong its preset's 10M with whatever time is left), and each run a precision: the first runs computed in
float32, before the Atari settings' bfloat16; Seaquest is trained again in bfloat16 on the same seeds, so that
the two precisions' learning curves are drawn side by side. One invocation trains the unfinished runs in that
order for at most ``--minutes`` in all: a run starts (``a2c train --total-steps BUDGET``) or resumes from its
newest checkpoint (``a2c train --resume``, exact apart from the emulators' state), and is stopped with SIGTERM
when the time is spent (the run driver checkpoints first); the next invocation goes on from there. A run
that reaches its budget ends with its own final evaluation: the Atari settings' sampled policy, whole games
on seeds 1,000,000 + k (no training env uses them), each game's draws seeded from its seed, with the greedy
policy played beside it on the same seeds. The random policy is scored by the same evaluator on the same
seeds. Then ``results/atari/`` is rewritten from whatever the runs have reached: ``results.json``,
``results.md`` (the targets of issue 29 and whether they are met) and a learning curve per game with the
random score, the target and the points read from rl-baselines3-zoo's A2C curves; ``--readme`` also
rewrites the block between ``<!-- results-atari:start/end -->`` of that page (docs/atari.md).
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: (game, seed, env-step budget, precision), trained in this order; the last one takes whatever time is left.
PLAN: tuple[tuple[str, int, int, str], ...] = (
    ("ALE/Seaquest-v5", 0, 1_000_000, "float32"),
    ("ALE/Seaquest-v5", 1, 1_000_000, "float32"),
    ("ALE/SpaceInvaders-v5", 0, 1_000_000, "float32"),
    ("ALE/SpaceInvaders-v5", 1, 1_000_000, "float32"),
    ("ALE/Seaquest-v5", 0, 1_000_000, "bfloat16"),
    ("ALE/Seaquest-v5", 1, 1_000_000, "bfloat16"),
    ("ALE/Breakout-v5", 0, 5_000_000, "float32"),
    ("ALE/Pong-v5", 0, 10_000_000, "bfloat16"),
)


@dataclass(frozen=True)
class Target:
    """What the final sampled evaluation must reach: ``times_random`` x the random policy's score, or ``score``."""

    text: str
    times_random: float | None = None
    score: float | None = None

    def level(self, random_score: float | None) -> float | None:
        if self.score is not None:
            return self.score
        if self.times_random is None or random_score is None:
            return None
        return self.times_random * random_score


TARGETS = {
    "ALE/Seaquest-v5": Target(">= 4x random within 1M steps", times_random=4.0),
    "ALE/SpaceInvaders-v5": Target(">= 1.5x random within 1M steps", times_random=1.5),
    "ALE/Breakout-v5": Target(">= 20 within 5M steps", score=20.0),
}
#: rl-baselines3-zoo's trained A2C agents (16 envs), as read from their learning curves in issue 29:
#: (env steps, training return) points; Pong stays flat for about 3M steps.
ZOO_POINTS = {
    "ALE/Seaquest-v5": ((300_000, 280.0), (2_000_000, 850.0)),
    "ALE/Breakout-v5": ((2_700_000, 5.0), (4_200_000, 20.0)),
}
ZOO_NOTES = {
    "ALE/Seaquest-v5": "~4x random (~70) by ~0.3M steps, ~850 by 2M",
    "ALE/SpaceInvaders-v5": "above random within ~0.5M steps",
    "ALE/Breakout-v5": "above 5 by ~2.7M steps, above 20 by ~4.2M",
    "ALE/Pong-v5": "flat for ~3M steps; 17.3 +/- 3.2 at 10M (benchmark.md)",
}
GRACE_SECONDS = 300  # after SIGTERM: the checkpoint, the curves


def run_dir_for(runs: Path, env_id: str, seed: int, precision: str = "float32") -> Path:
    from a2c.analysis.plotting import safe_name

    return runs / f"{safe_name(env_id)}__s{seed}{'' if precision == 'float32' else '__' + precision}"


def run_label(env_id: str, seed: int, precision: str) -> str:
    return f"{env_id} s{seed}" + ("" if precision == "float32" else f" {precision}")


def has_checkpoint(run_dir: Path) -> bool:
    index = run_dir / "checkpoints" / "checkpoint"
    return index.is_file() and "model_checkpoint_path" in index.read_text()


def train_for(
    run_dir: Path, env_id: str, seed: int, budget: int, precision: str, seconds: float, extra: list[str]
) -> str:
    """Train (or resume) one run towards ``budget`` steps for at most ``seconds``; what became of it."""
    if (run_dir / "summary.json").is_file():
        return "finished"
    if seconds <= 0:
        return "in progress" if (run_dir / "metrics.csv").is_file() else "not started"
    a2c = [sys.executable, "-m", "a2c", "train", "--no-progress"]
    if has_checkpoint(run_dir):
        cmd = [*a2c, "--resume", str(run_dir)]
    else:
        cmd = [*a2c, "--env", env_id, "--seed", str(seed), "--total-steps", str(budget), "--precision", precision]
        cmd += ["--run-dir", str(run_dir), "--overwrite", *extra]
    print("$", " ".join(cmd[1:]), f"(for at most {seconds / 60:.1f} min)", flush=True)
    proc = subprocess.Popen(cmd)
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        # SIGTERM, not SIGINT: a shell starting this in the background (nohup ... &) makes its children
        # ignore SIGINT; the run driver checkpoints, draws its curves and exits on either.
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        return "stopped"
    except BaseException:
        proc.send_signal(signal.SIGTERM)
        proc.wait()
        raise
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[1:])} failed with status {proc.returncode}")
    return "finished"


def random_scores(env_id: str, episodes: int, seed: int) -> list[float]:
    """Whole games of the uniformly random policy, by the evaluator that scores the agents, on the same
    seeds; game k's actions come from its own generator seeded with ``seed + k``."""
    import numpy as np

    from a2c.artifacts.evaluate import evaluate_policy
    from a2c.envs.make import env_spaces

    n_actions = int(env_spaces(env_id)[1].n)
    rngs = [np.random.default_rng([seed + k, 29]) for k in range(episodes)]

    def policy(obs: Any) -> np.ndarray:
        return np.array([rng.integers(n_actions) for rng in rngs])

    return evaluate_policy(policy, env_id, episodes, seed).returns


def _last(values: Any, default: float = math.nan) -> float:
    import numpy as np

    if values is None:
        return default
    finite = values[np.isfinite(values)]
    return float(finite[-1]) if len(finite) else default


def run_record(
    run_dir: Path, env_id: str, seed: int, budget: int, state: str, precision: str = "float32"
) -> dict[str, Any]:
    """What one run has reached: steps, training return, and its final evaluation once it has one."""
    from a2c.analysis.run_data import RETURN, load_run

    record: dict[str, Any] = {"env_id": env_id, "seed": seed, "precision": precision, "budget": budget}
    record.update(state=state, label=run_label(env_id, seed, precision))
    if not (run_dir / "metrics.csv").is_file():
        return {**record, "steps": 0}
    run = load_run(run_dir)
    m = run.metrics
    if (run_dir / "config.toml").is_file():  # its own budget (a smoke test's --steps, say)
        from a2c.config.resolve import make_config

        record["budget"] = make_config({}, run_dir / "config.toml").total_steps
    record.update(
        steps=int(_last(m["global_step"], 0)),
        games=int(_last(m.get("rollout/episodes"), 0)),
        train_return_last100=_last(m.get(RETURN)),
        train_hours=_last(m.get("time/elapsed_seconds"), 0.0) / 3600,
        steps_per_second=_last(m.get("time/steps_per_second")),
        eval_policy=run.eval_policy,
    )
    s = run.summary
    if s is not None:
        record.update(
            state="finished",
            steps=int(s["total_steps"]),
            eval_episodes=s["eval_episodes"],
            eval_seeds=s["eval_seeds"],
            eval_mean=s["eval_mean_return"],
            eval_std=s["eval_std_return"],
            greedy_mean=s.get("eval_greedy_mean_return"),
            greedy_std=s.get("eval_greedy_std_return"),
            steps_per_second=s["steps_per_second"],
        )
    return record


def game_rows(records: list[dict[str, Any]], randoms: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per game and precision: the finished seeds' mean sampled score against the random one and the
    target."""
    rows = []
    for env_id, precision in dict.fromkeys((r["env_id"], r.get("precision", "float32")) for r in records):
        runs = [r for r in records if (r["env_id"], r.get("precision", "float32")) == (env_id, precision)]
        done = [r for r in runs if r.get("eval_mean") is not None]
        rand = randoms.get(env_id, {}).get("mean")
        mean = sum(r["eval_mean"] for r in done) / len(done) if done else None
        target = TARGETS.get(env_id)
        level = target.level(rand) if target else None
        met = None if mean is None or level is None or len(done) < len(runs) else mean >= level
        rows.append(
            {
                "env_id": env_id,
                "precision": precision,
                "game": env_id + ("" if precision == "float32" else f" ({precision})"),
                "seeds": len(runs),
                "finished": len(done),
                "sampled_mean": mean,
                "random_mean": rand,
                "times_random": mean / rand if mean is not None and rand else None,
                "target": target.text if target else "as far as the budget gets",
                "target_level": level,
                "met": met,
            }
        )
    return rows


def _num(x: float | None, fmt: str = ".1f") -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def tables(records: list[dict[str, Any]], rows: list[dict[str, Any]], randoms: dict[str, dict[str, Any]]) -> str:
    """The per-game and per-run Markdown tables."""
    lines = [
        "| Game | Target | Final sampled eval (mean over finished seeds) | Random (same seeds) | x random "
        "| Met | Zoo A2C (its curves) |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for g in rows:
        pending = f"pending ({g['finished']}/{g['seeds']} seeds done)" if g["target_level"] is not None else "n/a"
        met = {True: "**yes**", False: "no", None: pending}[g["met"]]
        lines.append(
            f"| {g['game']} | {g['target']} | {_num(g['sampled_mean'])} | {_num(g['random_mean'])} | "
            f"{_num(g['times_random'], '.2f')} | {met} | {ZOO_NOTES.get(g['env_id'], 'n/a')} |"
        )
    lines += [
        "",
        "| Run | Steps reached | Budget | State | Games | Training return (last 100 games) | Final eval: sampled "
        "| greedy (same seeds) | Random (same seeds) | Train time (h) | Steps/s |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        if r.get("eval_mean") is not None:
            sampled = f"{r['eval_mean']:.1f} +/- {r['eval_std']:.1f} ({r['eval_episodes']} games)"
            greedy = f"{_num(r.get('greedy_mean'))} +/- {_num(r.get('greedy_std'))}"
        else:
            sampled = greedy = "not yet"
        rand = randoms.get(r["env_id"])
        rand_text = f"{rand['mean']:.1f} +/- {rand['std']:.1f}" if rand else "n/a"
        lines.append(
            f"| {r['label']} | {r.get('steps', 0):,} | {r['budget']:,} | {r['state']} | "
            f"{r.get('games', 0):,} | {_num(r.get('train_return_last100'))} | {sampled} | {greedy} | {rand_text} | "
            f"{_num(r.get('train_hours'), '.2f')} | {_num(r.get('steps_per_second'), '.0f')} |"
        )
    return "\n".join(lines) + "\n"


def plot_against_zoo(run_dirs: list[Path], out: Path, randoms: dict[str, dict[str, Any]]) -> dict[str, Path]:
    """Each game's learning curve (its seeds' band, its periodic sampled evaluations; one band per precision
    where both were trained) with the random score, the target and the zoo's points."""
    import matplotlib.pyplot as plt

    from a2c.analysis.plotting import plot_learning_curve, safe_name, save_figure
    from a2c.analysis.run_data import group_by_env, load_run

    paths = {}
    for env_id, runs in group_by_env(load_run(d) for d in run_dirs).items():
        precisions = {run_precision(r) for r in runs}
        fig = plot_learning_curve(
            [r.run_dir for r in runs],
            title=f"A2C on {env_id}: {len(runs)} run{'s' if len(runs) != 1 else ''}",
            group_by=run_precision if len(precisions) > 1 else None,
        )
        ax = fig.axes[0]
        rand = randoms.get(env_id, {}).get("mean")
        if rand is not None:
            ax.axhline(rand, color="gray", linestyle=":", label=f"random policy: {rand:.1f}")
        target = TARGETS.get(env_id)
        level = target.level(rand) if target else None
        if level is not None and target is not None:
            ax.axhline(level, color="green", linestyle="--", label=f"target: {target.text}")
        points = ZOO_POINTS.get(env_id)
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, "k^", label="zoo A2C (read from its curves)")
            ax.set_xlim(0, max(ax.get_xlim()[1], 1.05 * max(xs)))  # the zoo's points even before a run gets there
        ax.legend(fontsize="small", loc="best")
        paths[env_id] = out / f"learning_curve_{safe_name(env_id)}.png"
        save_figure(fig, paths[env_id])
        plt.close(fig)
    return paths


def run_precision(run: Any) -> str:
    """A run's precision (runs saved before the field existed computed in float32)."""
    return str(run.config.get("precision", "float32"))


def _stop(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python scripts/atari_results.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/atari", help="output folder (default: results/atari)")
    parser.add_argument("--runs", default="runs/atari", help="where the training runs go (git-ignored)")
    parser.add_argument(
        "--minutes",
        type=float,
        default=180.0,
        help="training time of this invocation, all runs together (default: 180); 0 only rewrites the results",
    )
    parser.add_argument("--games", nargs="+", default=None, help="only these games of the plan (smoke tests)")
    parser.add_argument(
        "--steps", type=int, default=None, help="override every run's step budget (smoke tests only: new runs)"
    )
    parser.add_argument(
        "--train-args", default="", help="extra a2c train flags for new runs (smoke tests: --final-eval-episodes 2)"
    )
    parser.add_argument("--readme", default=None, help="also rewrite the results-atari block of this Markdown page")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)  # as Ctrl-C: the running run is stopped and checkpointed
    out, runs = Path(args.out), Path(args.runs)
    out.mkdir(parents=True, exist_ok=True)
    plan = [(g, s, args.steps or b, p) for g, s, b, p in PLAN if args.games is None or g in args.games]
    if not plan:
        games = ", ".join(dict.fromkeys(g for g, _, _, _ in PLAN))
        raise SystemExit(f"--games: none of {args.games} is in the plan ({games})")

    # TRAIN: the plan in order, each unfinished run for the time that is left.
    deadline = time.monotonic() + args.minutes * 60
    states = {}
    for env_id, seed, budget, precision in plan:
        run_dir = run_dir_for(runs, env_id, seed, precision)
        seconds = deadline - time.monotonic()
        states[run_dir] = train_for(run_dir, env_id, seed, budget, precision, seconds, shlex.split(args.train_args))

    from a2c.common.tf_setup import import_tensorflow_quietly

    import_tensorflow_quietly()
    # SCORE: the runs' final evaluations, and the random policy on the same seeds (computed once per game).
    records = [
        run_record(run_dir_for(runs, g, s, p), g, s, b, states[run_dir_for(runs, g, s, p)], p) for g, s, b, p in plan
    ]
    results_file = out / "results.json"
    previous = json.loads(results_file.read_text()) if results_file.is_file() else {}
    randoms: dict[str, dict[str, Any]] = previous.get("random", {})
    from a2c.artifacts.evaluate import EVAL_SEED_BASE
    from a2c.config.resolve import make_config

    for r in records:
        run_dir = run_dir_for(runs, r["env_id"], r["seed"], r["precision"])
        if r.get("eval_seeds") is not None:
            first, last = r["eval_seeds"]
        elif (run_dir / "config.toml").is_file():  # the seeds its final evaluation will play
            first = EVAL_SEED_BASE
            last = first + make_config({}, run_dir / "config.toml").final_eval_episodes - 1
        else:
            continue
        key = {"episodes": last - first + 1, "seed": first}
        if key["episodes"] < 1:
            continue
        known = randoms.get(r["env_id"])
        if known is None or {k: known[k] for k in key} != key:
            import numpy as np

            returns = random_scores(r["env_id"], key["episodes"], first)
            randoms[r["env_id"]] = {**key, "mean": float(np.mean(returns)), "std": float(np.std(returns))}
            randoms[r["env_id"]]["returns"] = returns
    rows = game_rows(records, randoms)
    run_dirs = [d for g, s, _, p in plan if (d := run_dir_for(runs, g, s, p)).joinpath("metrics.csv").is_file()]
    curves = plot_against_zoo(run_dirs, out, randoms) if run_dirs else {}
    command = "python scripts/atari_results.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    body = tables(records, rows, randoms)
    results_file.write_text(
        json.dumps({"command": command.strip(), "games": rows, "runs": records, "random": randoms}, indent=2) + "\n"
    )
    protocol = (
        "Final evaluations: the sampled policy (the Atari settings' `eval_policy`), whole games (all lives, "
        "unclipped) on seeds 1,000,000 + k, which no training env uses, each game's action draws seeded from "
        "its seed; the greedy policy on the same seeds beside it; the random policy by the same evaluator on "
        "the same seeds. Training returns are whole games too, sampled actions. Each invocation resumes the "
        "same runs (see docs/atari.md).\n\n"
    )
    figures = "\n".join(f"![{env}]({Path(p).name})" for env, p in curves.items())
    (out / "results.md").write_text(
        f"# Atari results\n\nProduced by `{command.strip()}`. {protocol}{body}\n## Learning curves\n\n{figures}\n"
    )
    if args.readme:
        links = "\n".join(f"![{env}]({(out / Path(p).name).as_posix()})" for env, p in curves.items())
        from a2c.common.files import replace_marked_block

        replace_marked_block(
            Path(args.readme),
            "results-atari",
            f"_Generated by `{command.strip()}`; do not edit by hand._\n\n{body}\n{links}\n",
        )
    print(f"wrote {out / 'results.md'}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the running run has checkpointed
        print("stopped; make results-atari goes on from the runs' checkpoints", file=sys.stderr)
        sys.exit(130)
