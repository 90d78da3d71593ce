#!/usr/bin/env python
"""Population training (``a2c train --fused --seeds 0-63``) against Stable-Baselines3 on one seed.

Two parts, in one invocation, each training run in its own subprocess
(``common.run_worker``):

* **compare**: SB3 A2C (RL-Zoo CartPole settings, 500k steps, 1 torch thread, as in
  ``bench_fused.py``) on each of ``--sb3-seeds`` seeds, and ONE population run of
  ``--members`` CartPole seeds (0..M-1) with the fused CartPole preset, the population
  run placed between SB3's first and second runs so that both see the same load.
  Both are evaluated greedily every 10k steps (per member) on 100 episodes seeded
  1,000,000 + k. A run's **stable solve** is the training clock at the first
  evaluation from which every later one averages >= 475 (``bench_fused.solve_times``);
  the population is **all solved** at the largest of its members' stable-solve times
  (never, if any member never stably solves). Training clocks include compilation and
  exclude evaluations (ours, SB3's). **Process wall** is the whole subprocess: Python
  and framework start-up, building, evaluations and, for the population, writing every
  member's files.
* **scaling**: population sizes 1..256, each a run of ``--scaling-steps`` env steps per
  member (no evaluations): wall seconds of training (compilation included), the
  compile seconds, and env steps per second summed over members.

Writes ``results/population_benchmark.json`` (every run, each member's evaluations
and solve times, settings, machine, versions), ``.md`` and ``.png`` (the members'
and SB3's greedy curves against the training clock; the wall time and throughput
against the population size).

Usage::

    python benchmarks/bench_population.py                         # ~12 min on 2 cores
    python benchmarks/bench_population.py --quick --out /tmp/pb.json   # smoke test, ~2 min
    python benchmarks/bench_population.py --replot      # the .md and .png again from the .json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# benchmarks/ is sys.path[0] when this script runs (also in its --worker subprocesses).
from bench_fused import solve_times  # noqa: E402
from common import (  # noqa: E402
    REPO_ROOT,
    WorkerFailed,
    cpu_model,
    fmt,
    git,
    median_censored,
    package_versions,
    read_eval_clock,
    run_worker,
    train_sb3,
    worker_main,
)

THRESHOLD = 475.0


# ----------------------------------------------------------------------------- workers
def worker_population(spec: dict[str, Any]) -> dict[str, Any]:
    """One population run (fused CartPole preset) of seeds 0..M-1; per-member solve times."""
    from a2c.config.resolve import make_fused_config
    from a2c.population.driver import train_population

    overrides = {
        "eval_every": spec["eval_every"],
        "eval_episodes": spec["eval_episodes"],
        "final_eval_episodes": spec["eval_episodes"],
        "run_dir": spec["run_dir"],
        "progress": False,
        "num_threads": 1,
        **spec.get("overrides", {}),
    }
    base = make_fused_config(overrides)
    run_dir, s = train_population(base, list(range(spec["members"])), {}, quiet=True)
    members = []
    for k in range(spec["members"]):
        evals = read_eval_clock(Path(run_dir) / "members" / str(k))
        members.append({"member": k, "seed": k, "evals": evals, **solve_times(evals, THRESHOLD)})
    stable = [m["stable_solve_seconds"] for m in members]
    return {
        "impl": "population",
        "members": spec["members"],
        "n_envs": base.n_envs,
        "n_steps": base.n_steps,
        "lr": base.lr,
        "lr_schedule": base.lr_schedule,
        "executor": s["executor"],
        "total_steps_per_member": s["total_steps_per_member"],
        "train_seconds": s["train_seconds"],
        "compile_seconds": s["compile_seconds"],
        "steps_per_second": s["steps_per_second"],
        "all_solved_seconds": None if any(x is None for x in stable) else max(stable),
        "stably_solved": sum(x is not None for x in stable),
        "median_member_stable_seconds": median_censored(stable),
        "final_solved": sum(
            m["final_eval_mean_return"] is not None and m["final_eval_mean_return"] >= THRESHOLD for m in members
        ),
        "member_runs": members,
    }


def worker_sb3(spec: dict[str, Any]) -> dict[str, Any]:
    """SB3 A2C with RL-Zoo's CartPole settings on one seed (as bench_fused.py's)."""
    run = train_sb3(
        "CartPole-v1",
        spec["seed"],
        spec["total_steps"],
        spec["eval_every"],
        spec["eval_episodes"],
        n_envs=8,
        threads=1,
        always_final_eval=True,
        n_steps=5,
        learning_rate=7e-4,
        ent_coef=0.0,
    )
    return {
        "impl": "sb3",
        "seed": spec["seed"],
        "total_steps": run["total_steps"],
        "train_seconds": run["train_seconds"],
        "steps_per_second": run["total_steps"] / run["train_seconds"],
        "evals": run["evals"],
        **solve_times(run["evals"], THRESHOLD),
    }


def worker_scaling(spec: dict[str, Any]) -> dict[str, Any]:
    """A population of P members trained for a fixed number of steps each, no evaluations."""
    import tensorflow as tf

    from a2c.common.tf_setup import configure_tensorflow
    from a2c.config.resolve import make_fused_config
    from a2c.population.loop import PopulationLoop
    from a2c.population.members import member_configs
    from a2c.trainers.fused import ported_env

    base = make_fused_config({"total_steps": spec["steps"], "num_threads": 1})
    configure_tensorflow(base)
    t0 = time.perf_counter()
    loop = PopulationLoop(member_configs(base, list(range(spec["members"])), {}), (), ported_env(base.env_id))
    setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    compile_seconds = loop.compile()
    done = 0
    while done < base.n_updates:
        k = min(base.fused_updates_per_call, base.n_updates - done)
        float(loop.run(tf.constant(k))["entropy"][0])  # as the run reads its metrics after each call
        done += k
    seconds = time.perf_counter() - t0
    steps = base.n_updates * base.batch_size * spec["members"]
    return {
        "impl": "population_scaling",
        "members": spec["members"],
        "steps_per_member": base.n_updates * base.batch_size,
        "setup_seconds": setup,
        "compile_seconds": compile_seconds,
        "train_seconds": seconds,
        "steps_per_second": steps / (seconds - compile_seconds),
    }


WORKERS = {"population": worker_population, "sb3": worker_sb3, "scaling": worker_scaling}


# ----------------------------------------------------------------------------- driver
def log(msg: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--members", type=int, default=64, help="population size of the comparison (seeds 0..M-1)")
    p.add_argument("--sb3-seeds", type=int, default=3, help="SB3 runs, seeds 0..N-1 (each is 'one seed')")
    p.add_argument("--sb3-steps", type=int, default=500_000)
    p.add_argument("--eval-every", type=int, default=10_000, help="env steps (per member) between evaluations")
    p.add_argument("--eval-episodes", type=int, default=100)
    p.add_argument("--sizes", default="1,2,4,8,16,32,64,128,256", help="population sizes of the scaling part")
    p.add_argument("--scaling-steps", type=int, default=20_000, help="env steps per member in the scaling part")
    p.add_argument("--skip", default="", help="comma list of parts to skip: compare,scaling")
    p.add_argument("--quick", action="store_true", help="smoke test: 8 members, 1 SB3 seed, short budgets")
    p.add_argument("--out", default=str(REPO_ROOT / "results" / "population_benchmark.json"))
    p.add_argument(
        "--replot",
        action="store_true",
        help="only rewrite the .md and .png from the JSON report at --out (no training)",
    )
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args()
    if args.worker:
        worker_main(args.worker, WORKERS, "kind")
        return
    if args.quick:
        args.members, args.sb3_seeds, args.sb3_steps, args.eval_episodes = 8, 1, 60_000, 20
        args.sizes, args.scaling_steps = "1,8", 5_000
    out = Path(args.out)
    if args.replot:
        report = json.loads(out.read_text())
        out.with_suffix(".md").write_text(markdown(report))
        plot(report, out.with_suffix(".png"))
        return
    skip = set(filter(None, args.skip.split(",")))
    out.parent.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "command": " ".join(shlex.quote(a) for a in sys.argv),
        "started": datetime.now(UTC).isoformat(),
        "settings": vars(args),
        "sb3": [],
        "population": [],
        "scaling": [],
    }

    if "compare" not in skip:
        pop_spec = {
            "kind": "population",
            "members": args.members,
            "eval_every": args.eval_every,
            "eval_episodes": args.eval_episodes,
            "overrides": {"total_steps": 60_000} if args.quick else {},
        }
        jobs = [
            (
                "sb3",
                {
                    "kind": "sb3",
                    "seed": s,
                    "total_steps": args.sb3_steps,
                    "eval_every": args.eval_every,
                    "eval_episodes": args.eval_episodes,
                },
            )
            for s in range(args.sb3_seeds)
        ]
        jobs.insert(1, ("population", pop_spec))  # between SB3's runs: the same machine load
        for name, spec in jobs:
            r = run_worker(Path(__file__), spec, None, args.verbose, timed=True)
            report[name].append(r)
            if name == "sb3":
                log(
                    f"sb3 seed {r['seed']}: stable solve {fmt(r['stable_solve_seconds'], '.1f')} s "
                    f"({fmt(r['stable_solve_steps'], ',')} steps), {r['steps_per_second']:,.0f} steps/s, "
                    f"wall {r['wall_seconds']:.0f} s"
                )
            else:
                log(
                    f"population of {r['members']}: all stably solved at {fmt(r['all_solved_seconds'], '.1f')} s "
                    f"({r['stably_solved']}/{r['members']} stably solved), train {r['train_seconds']:.1f} s, "
                    f"{r['steps_per_second']:,.0f} steps/s, wall {r['wall_seconds']:.0f} s"
                )
            out.write_text(json.dumps(report, indent=1))  # partial results survive a crash

    if "scaling" not in skip:
        for size in [int(x) for x in args.sizes.split(",") if x]:
            r = run_worker(
                Path(__file__),
                {"kind": "scaling", "members": size, "steps": args.scaling_steps},
                None,
                args.verbose,
                timed=True,
            )
            report["scaling"].append(r)
            log(
                f"scaling {size:>4} members: {r['train_seconds']:.2f} s for {r['steps_per_member']:,} steps each "
                f"(compile {r['compile_seconds']:.2f} s, setup {r['setup_seconds']:.2f} s), "
                f"{r['steps_per_second']:,.0f} steps/s"
            )
            out.write_text(json.dumps(report, indent=1))

    report["finished"] = datetime.now(UTC).isoformat()
    report["summary"] = summarize(report)
    report["machine"] = {
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "git_commit": git("rev-parse", "HEAD"),
        "versions": package_versions(["tensorflow", "keras", "gymnasium", "torch", "stable-baselines3", "numpy"]),
    }
    out.write_text(json.dumps(report, indent=1))
    md = markdown(report)
    out.with_suffix(".md").write_text(md)
    plot(report, out.with_suffix(".png"))
    print(md)


# ----------------------------------------------------------------------------- report
def summarize(report: dict[str, Any]) -> dict[str, Any]:
    s: dict[str, Any] = {}
    sb3 = report["sb3"]
    if sb3:
        s["sb3_stable_solve_seconds"] = [r["stable_solve_seconds"] for r in sb3]
        s["sb3_median_stable_solve_seconds"] = median_censored(s["sb3_stable_solve_seconds"])
        s["sb3_median_wall_seconds"] = median_censored([r["wall_seconds"] for r in sb3])
    if report["population"]:
        pop = report["population"][0]
        s["population_all_solved_seconds"] = pop["all_solved_seconds"]
        s["population_wall_seconds"] = pop["wall_seconds"]
        if sb3 and pop["all_solved_seconds"] is not None:
            s["ratio_to_each_sb3_seed"] = [
                None if x is None else pop["all_solved_seconds"] / x for x in s["sb3_stable_solve_seconds"]
            ]
            if s["sb3_median_stable_solve_seconds"]:
                s["ratio_to_sb3_median"] = pop["all_solved_seconds"] / s["sb3_median_stable_solve_seconds"]
            s["wall_ratio_to_sb3_median"] = pop["wall_seconds"] / s["sb3_median_wall_seconds"]
    return s


def markdown(report: dict[str, Any]) -> str:
    s, lines = report["summary"], []
    lines += [
        "# Population training vs Stable-Baselines3 (CartPole-v1)",
        "",
        f"_Generated by `{report['command']}` ({report['started'][:19]} UTC); do not edit by hand._",
        "",
    ]
    if report["population"]:
        pop = report["population"][0]
        lines += [
            "## A population of seeds vs SB3 on one seed",
            "",
            f"Population: {pop['members']} seeds (0-{pop['members'] - 1}), fused CartPole preset "
            f"({pop['n_envs']} envs x {pop['n_steps']} steps per member, lr {pop['lr']:g} "
            f"{pop['lr_schedule']}, {pop['executor']} executor), "
            f"{pop['total_steps_per_member']:,} steps per member, one compiled program. SB3: A2C with "
            "RL-Zoo settings, 500k steps, 1 torch thread. Greedy 100-episode evaluations every "
            f"{report['settings']['eval_every']:,} steps (per member); stable solve = from an evaluation on, "
            "every one >= 475; training clocks include compilation, exclude evaluation.",
            "",
            "| | training clock to stable solve (s) | stably solved | env steps/s | process wall (s) |",
            "|---|---:|---:|---:|---:|",
        ]
        lines.append(
            f"| population of {pop['members']} (all members) | {fmt(pop['all_solved_seconds'], '.1f', 'never')} "
            f"| {pop['stably_solved']}/{pop['members']} | {pop['steps_per_second']:,.0f} "
            f"| {pop['wall_seconds']:.1f} |"
        )
        lines.append(
            f"| population: median member | {fmt(pop['median_member_stable_seconds'], '.1f', 'never')} | | | |"
        )
        for r in report["sb3"]:
            lines.append(
                f"| SB3 seed {r['seed']} | {fmt(r['stable_solve_seconds'], '.1f', 'never')} "
                f"| {int(r['stable_solve_seconds'] is not None)}/1 | {r['steps_per_second']:,.0f} "
                f"| {r['wall_seconds']:.1f} |"
            )
        if "ratio_to_sb3_median" in s:
            each = ", ".join(fmt(x, ".2f", "n/a") for x in s["ratio_to_each_sb3_seed"])
            lines += [
                "",
                f"All {pop['members']} members stably solved after **{s['ratio_to_sb3_median']:.2f}x** the "
                f"training time SB3's median seed needed for one (per SB3 seed: {each}); process wall "
                f"{s['wall_ratio_to_sb3_median']:.2f}x SB3's median.",
            ]
        lines += [""]
    if report["scaling"]:
        lines += [
            "## Wall time against the population size",
            "",
            f"Each member trains {report['scaling'][0]['steps_per_member']:,} env steps (fused CartPole "
            "preset, graph executor, 1 thread, no evaluations); training seconds include compilation.",
            "",
            "| members | training wall (s) | compile (s) | setup: building members (s) | env steps/s (all members) |",
            "|---:|---:|---:|---:|---:|",
        ]
        for r in report["scaling"]:
            lines.append(
                f"| {r['members']} | {r['train_seconds']:.2f} | {r['compile_seconds']:.2f} "
                f"| {r['setup_seconds']:.2f} | {r['steps_per_second']:,.0f} |"
            )
        lines += [""]
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    ax = axes[0]
    for pop in report["population"]:
        alpha = max(0.15, min(0.6, 8 / pop["members"]))
        for i, m in enumerate(pop["member_runs"]):
            ax.plot(
                [e["train_seconds"] for e in m["evals"]],
                [e["mean_return"] for e in m["evals"]],
                color="tab:red",
                lw=0.7,
                alpha=alpha,
                label=f"population member ({pop['members']})" if i == 0 else None,
            )
        if pop["all_solved_seconds"] is not None:
            ax.axvline(pop["all_solved_seconds"], color="tab:red", ls="--", label="population: all stably solved")
    for i, r in enumerate(report["sb3"]):
        ax.plot(
            [e["train_seconds"] for e in r["evals"]],
            [e["mean_return"] for e in r["evals"]],
            color="tab:gray",
            lw=1.2,
            marker=".",
            label="SB3 A2C, one seed each" if i == 0 else None,
        )
    ax.axhline(THRESHOLD, color="k", lw=0.6, ls=":")
    ax.set_xscale("log")
    ax.set_xlabel("training seconds (compilation included, evaluation excluded)")
    ax.set_ylabel("greedy return, 100 episodes")
    ax.set_title("CartPole-v1: every population member vs SB3")
    ax.legend(loc="lower right")
    ax = axes[1]
    if report["scaling"]:
        sizes = [r["members"] for r in report["scaling"]]
        ax.plot(
            sizes,
            [r["train_seconds"] for r in report["scaling"]],
            marker="o",
            color="tab:red",
            label=f"training wall, {report['scaling'][0]['steps_per_member']:,} steps per member",
        )
        ax.plot(
            sizes,
            [r["compile_seconds"] for r in report["scaling"]],
            marker="^",
            color="tab:orange",
            label="of which compilation",
        )
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("population size (members)")
        ax.set_ylabel("seconds")
        ax.set_title("Wall time against population size")
        twin = ax.twinx()
        twin.plot(
            sizes,
            [r["steps_per_second"] for r in report["scaling"]],
            marker="s",
            color="tab:blue",
            label="env steps/s, all members (right)",
        )
        twin.set_ylabel("env steps / second")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = twin.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    try:
        main()
    except WorkerFailed as e:
        sys.exit(f"worker failed: {e.spec}\n{e.stderr}")
