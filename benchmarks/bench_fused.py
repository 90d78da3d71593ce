#!/usr/bin/env python
"""Fused training vs the standard trainer vs Stable-Baselines3, on CartPole-v1.

One script (~480 lines) on purpose: its workers, aggregation and report writers are read
together when a figure is questioned; what both benchmarks share is in ``common.py``.

The implementations run side by side in the same invocation, each in its own
subprocess (same interpreter), alternating in mirrored order over seeds so that they
share the machine's load:

* ``sb3``: Stable-Baselines3 A2C with RL-Zoo's CartPole settings (8 envs, n_steps 5,
  lr 7e-4 constant, ent_coef 0, MlpPolicy, 500k steps), torch on 1 CPU thread;
* ``standard``: ``a2c train`` (a2c.trainers.standard) with its CartPole preset (200k steps);
* ``fused_graph``: ``a2c train --fused`` (a2c.trainers.fused) with its fused CartPole preset,
  which runs the fused loop in TensorFlow's graph executor; its clock includes tracing and
  graph optimisation;
* ``fused_xla``: the same preset XLA-compiled (``--fused-xla``), cold: no compilation
  cache, so its clock includes tracing and XLA compilation;
* ``fused_xla_warm``: the same with TensorFlow's persistent XLA cache
  (``TF_XLA_FLAGS=--tf_xla_persistent_cache_directory=DIR``) filled by an earlier,
  untimed run of the same program: what a user re-running a config pays.

Evaluation protocol (identical for all): greedy, 100 episodes, one gymnasium env per
episode, episode k reset with seed 1,000,000 + k (:func:`a2c.artifacts.evaluate.evaluate_policy`;
SB3's policy enters as ``model.predict(obs, deterministic=True)``), every
``--eval-every`` steps (SB3 and standard: 10,000; fused: 20,000) and at the end of the
step budget. Evaluation time is excluded from every training clock; our clocks
include compilation (the standard trainer's first update, the fused trainer's
compile), SB3 has none.

* **time to first solve**: training clock at the first evaluation averaging >= 475;
* **time to stable solve**: training clock at the first evaluation from which EVERY
  later evaluation up to the end of the step budget also averages >= 475 (runs whose
  last evaluation is below 475 never stably solve);
* **steps/s**: env steps / training seconds excluding compilation (for SB3, all of its
  clock); "steps/s incl. compile" divides by the whole clock.

Also measured: fused steps/s and compile time against the number of parallel envs
(CartPole, 1 thread), XLA-compiled and in the graph executor, and, for contrast, the
standard trainer at a few env counts; and Acrobot-v1 with the fused preset (greedy
100-episode return; solved = >= -100).

Writes ``results/fused_benchmark.json`` (every run, every evaluation, settings,
machine, versions, load averages), ``.md`` (tables) and ``.png`` (learning curves
against wall-clock, and steps/s against env count).

Usage::

    python benchmarks/bench_fused.py                 # full: ~25 min on 2 busy cores
    python benchmarks/bench_fused.py --quick --out /tmp/fb.json   # smoke test, ~3 min
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# benchmarks/ is sys.path[0] when this script runs (also in its --worker subprocesses).
from common import (  # noqa: E402
    REPO_ROOT,
    WorkerFailed,
    column_medians,
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

SOLVED = {"CartPole-v1": 475.0, "Acrobot-v1": -100.0}
CACHE_FLAG = "--tf_xla_persistent_cache_directory"
COMPARED = ("sb3", "standard", "fused_graph", "fused_xla", "fused_xla_warm")


# ----------------------------------------------------------------------------- helpers
def solve_times(evals: list[dict], threshold: float) -> dict[str, Any]:
    """First and stable solve (see the module docstring) from evaluation points."""
    first = next((e for e in evals if e["mean_return"] >= threshold), None)
    stable = None
    for i, e in enumerate(evals):
        if all(later["mean_return"] >= threshold for later in evals[i:]):
            stable = e
            break
    return {
        "first_solve_seconds": first["train_seconds"] if first else None,
        "first_solve_steps": first["global_step"] if first else None,
        "stable_solve_seconds": stable["train_seconds"] if stable else None,
        "stable_solve_steps": stable["global_step"] if stable else None,
        "final_eval_mean_return": evals[-1]["mean_return"] if evals else None,
    }


# ----------------------------------------------------------------------------- workers
def worker_ours(spec: dict[str, Any]) -> dict[str, Any]:
    from a2c.config.resolve import make_config

    overrides = {
        "env_id": spec["env_id"],
        "seed": spec["seed"],
        "eval_episodes": spec["eval_episodes"],
        "final_eval_episodes": spec["eval_episodes"],
        "eval_every": spec["eval_every"],
        "run_dir": spec["run_dir"],
        "progress": False,
        "num_threads": 1,
    }
    if spec.get("total_steps"):
        overrides["total_steps"] = spec["total_steps"]
    overrides.update(spec.get("overrides", {}))
    if spec["trainer"] == "standard":
        from a2c.run.train import train

        cfg = make_config(overrides)
        # A metrics row on every evaluation step; checkpoints (off the clock anyway) only at the end.
        extra = {"log_every": max(1, cfg.eval_every // cfg.batch_size), "checkpoint_every": 0}
        cfg = make_config({**overrides, **{k: v for k, v in extra.items() if hasattr(cfg, k)}})
        result = train(cfg, overwrite=True, quiet=True)
    else:
        from a2c.config.resolve import make_fused_config
        from a2c.run.train import train_fused

        cfg = make_fused_config(overrides)
        result = train_fused(cfg, overwrite=True, quiet=True)
    s = result.summary
    evals = read_eval_clock(Path(spec["run_dir"]))
    return {
        "impl": spec["trainer"],
        "env_id": cfg.env_id,
        "seed": cfg.seed,
        "total_steps": s["total_steps"],
        "n_envs": cfg.n_envs,
        "n_steps": cfg.n_steps,
        "lr": cfg.lr,
        "optimizer": cfg.optimizer,
        "lr_schedule": cfg.lr_schedule,
        "reward_scale": cfg.reward_scale,
        "executor": s.get("executor"),
        "train_seconds": s["train_seconds"],
        "compile_seconds": s.get("compile_seconds", s.get("warmup_seconds")),
        "steps_per_second": s["steps_per_second"],
        "steps_per_second_incl_compile": s["total_steps"] / s["train_seconds"],
        "evals": evals,
        **solve_times(evals, SOLVED.get(cfg.env_id, math.inf)),
    }


def worker_sb3(spec: dict[str, Any]) -> dict[str, Any]:
    """SB3 A2C, RL-Zoo CartPole settings, 1 torch thread; greedy evaluations at rollout
    starts (after the previous update) and at the end, their time taken off the clock
    (:func:`common.train_sb3`)."""
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
    steps, train_seconds, evals = run["total_steps"], run["train_seconds"], run["evals"]
    return {
        "impl": "sb3",
        "env_id": "CartPole-v1",
        "seed": spec["seed"],
        "total_steps": steps,
        "n_envs": 8,
        "n_steps": 5,
        "lr": 7e-4,
        "optimizer": "RMSprop (torch)",
        "lr_schedule": "constant",
        "train_seconds": train_seconds,
        "compile_seconds": 0.0,
        "steps_per_second": steps / train_seconds,
        "steps_per_second_incl_compile": steps / train_seconds,
        "evals": evals,
        **solve_times(evals, SOLVED["CartPole-v1"]),
    }


def worker_scaling(spec: dict[str, Any]) -> dict[str, Any]:
    """Fused steps/s at one env count, XLA or graph executor: compile, then run calls
    for >= min_seconds."""
    import tensorflow as tf

    from a2c.common.tf_setup import configure_tensorflow
    from a2c.config.resolve import make_fused_config
    from a2c.trainers.fused import FusedTrainer

    n = spec["n_envs"]
    cfg = make_fused_config(
        {
            "n_envs": n,
            "n_steps": spec["n_steps"],
            "num_threads": spec.get("threads", 1),
            "total_steps": 10**9,
            "fused_xla": spec["xla"],
        }
    )
    configure_tensorflow(cfg)
    loop = FusedTrainer(cfg).loop  # the model, optimizer and loop a fused run trains
    compile_seconds = loop.compile()
    k = max(1, int(spec["steps_per_call"] // cfg.batch_size))
    loop.run(tf.constant(k))  # first execution: allocations
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < spec["min_seconds"]:
        float(loop.run(tf.constant(k))["entropy"])
        steps += k * cfg.batch_size
    seconds = time.perf_counter() - t0
    return {
        "impl": "fused_xla" if cfg.fused_xla else "fused_graph",
        "n_envs": n,
        "n_steps": cfg.n_steps,
        "threads": cfg.num_threads,
        "updates_per_call": k,
        "steps": steps,
        "seconds": seconds,
        "steps_per_second": steps / seconds,
        "compile_seconds": compile_seconds,
    }


def worker_scaling_standard(spec: dict[str, Any]) -> dict[str, Any]:
    """The standard trainer's steps/s at one env count (its own figure, warm-up excluded)."""
    from a2c.config.resolve import make_config
    from a2c.run.train import train

    cfg = make_config(
        {
            "n_envs": spec["n_envs"],
            "n_steps": 5,
            "total_steps": spec["total_steps"],
            "eval_every": 0,
            "final_eval_episodes": 0,
            "progress": False,
            "num_threads": 1,
            "run_dir": spec["run_dir"],
        }
    )
    s = train(cfg, overwrite=True, quiet=True).summary
    return {
        "impl": "standard",
        "n_envs": spec["n_envs"],
        "n_steps": 5,
        "threads": 1,
        "steps": s["total_steps"],
        "seconds": s["train_seconds"],
        "steps_per_second": s["steps_per_second"],
        "compile_seconds": s["warmup_seconds"],
    }


WORKERS = {
    "ours": worker_ours,
    "sb3": worker_sb3,
    "scaling": worker_scaling,
    "scaling_standard": worker_scaling_standard,
}


# --------------------------------------------------------------------------- driver
def run_job(spec: dict[str, Any], env: dict[str, str] | None = None, verbose: bool = False) -> dict[str, Any]:
    """Run one job in a fresh interpreter; return its result (plus wall time and load)."""
    return run_worker(Path(__file__), spec, env, verbose, timed=True)


def log(msg: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


def describe(r: dict) -> str:
    f = lambda x: "never" if x is None else f"{x:.2f}s"  # noqa: E731
    return (
        f"{r['impl']:<14} seed {r['seed']}: {r['steps_per_second']:>9,.0f} steps/s, compile "
        f"{r['compile_seconds']:.2f}s, first {f(r['first_solve_seconds'])}, stable {f(r['stable_solve_seconds'])}, "
        f"final {r['final_eval_mean_return']:.1f} (wall {r['wall_seconds']:.0f}s)"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 for the CartPole comparison (default 3)")
    p.add_argument("--eval-episodes", type=int, default=100)
    p.add_argument("--sb3-steps", type=int, default=500_000, help="SB3 budget (RL Zoo: 500k)")
    p.add_argument("--sb3-eval-every", type=int, default=10_000)
    p.add_argument("--standard-eval-every", type=int, default=10_000)
    p.add_argument("--fused-eval-every", type=int, default=20_000)
    p.add_argument("--scaling-envs", default="8,32,128,256,512,2048,8192")
    p.add_argument("--scaling-standard-envs", default="8,64,512")
    p.add_argument("--acrobot-seeds", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="smoke test: 1 seed, short budgets, 2 scaling points")
    p.add_argument("--skip", default="", help="comma list of parts to skip: compare,scaling,acrobot")
    p.add_argument(
        "--impls",
        default=",".join(COMPARED),
        help=f"implementations the CartPole comparison runs (default: all of {','.join(COMPARED)})",
    )
    p.add_argument("--out", default=str(REPO_ROOT / "results" / "fused_benchmark.json"))
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args()

    if args.worker:
        worker_main(args.worker, WORKERS, "kind")
        return

    if args.quick:
        args.seeds, args.sb3_steps, args.eval_episodes, args.acrobot_seeds = 1, 60_000, 20, 1
        args.scaling_envs, args.scaling_standard_envs = "32,512", "8"
    skip = set(filter(None, args.skip.split(",")))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    report: dict[str, Any] = {
        "command": " ".join(shlex.quote(a) for a in sys.argv),
        "started": started.isoformat(),
        "settings": vars(args),
        "runs": [],
        "scaling": [],
        "acrobot": [],
    }
    quick_ours = {"total_steps": 40_000} if args.quick else {}

    # ---------------------------------------------------------------- CartPole, side by side
    if "compare" not in skip:
        cache_dir = tempfile.mkdtemp(prefix="a2c-xla-cache-")
        warm_env = {"TF_XLA_FLAGS": f"{os.environ.get('TF_XLA_FLAGS', '')} {CACHE_FLAG}={cache_dir}".strip()}
        cold_env = {
            "TF_XLA_FLAGS": " ".join(
                f for f in os.environ.get("TF_XLA_FLAGS", "").split() if not f.startswith(CACHE_FLAG)
            )
        }
        fused_spec = {
            "kind": "ours",
            "trainer": "fused",
            "env_id": "CartPole-v1",
            "eval_every": args.fused_eval_every,
            "eval_episodes": args.eval_episodes,
            "overrides": {"total_steps": 100_000} if args.quick else {},
        }
        xla_spec = {**fused_spec, "overrides": {**fused_spec["overrides"], "fused_xla": True}}
        impls = [i for i in args.impls.split(",") if i]
        unknown = sorted(set(impls) - set(COMPARED))
        if unknown:
            p.error(f"unknown --impls {', '.join(unknown)}; known: {', '.join(COMPARED)}")
        if "fused_xla_warm" in impls:
            log("filling the XLA cache for fused_xla_warm (untimed run)")
            run_job({**xla_spec, "seed": 0}, warm_env, args.verbose)
        for seed in range(args.seeds):
            jobs = [
                (
                    "sb3",
                    {
                        "kind": "sb3",
                        "seed": seed,
                        "total_steps": args.sb3_steps,
                        "eval_every": args.sb3_eval_every,
                        "eval_episodes": args.eval_episodes,
                    },
                    None,
                ),
                (
                    "standard",
                    {
                        "kind": "ours",
                        "trainer": "standard",
                        "env_id": "CartPole-v1",
                        "seed": seed,
                        "eval_every": args.standard_eval_every,
                        "eval_episodes": args.eval_episodes,
                        "overrides": quick_ours,
                    },
                    None,
                ),
                ("fused_graph", {**fused_spec, "seed": seed}, cold_env),
                ("fused_xla", {**xla_spec, "seed": seed}, cold_env),
                ("fused_xla_warm", {**xla_spec, "seed": seed}, warm_env),
            ]
            jobs = [job for job in jobs if job[0] in impls]
            for name, spec, env in jobs if seed % 2 == 0 else jobs[::-1]:
                r = run_job(spec, env, args.verbose)
                r["impl"] = name
                report["runs"].append(r)
                log(describe(r))
                Path(out).write_text(json.dumps(report, indent=1))  # partial results survive a crash

    # ------------------------------------------------------------------ scaling
    if "scaling" not in skip:
        for n in [int(x) for x in args.scaling_envs.split(",") if x]:
            for xla in (True, False):
                r = run_job(
                    {
                        "kind": "scaling",
                        "n_envs": n,
                        "n_steps": 5,
                        "steps_per_call": 200_000,
                        "xla": xla,
                        "min_seconds": 1.0 if args.quick else 3.0,
                    },
                    None,
                    args.verbose,
                )
                report["scaling"].append(r)
                log(
                    f"scaling {r['impl']:<11} n_envs {n:>5}: {r['steps_per_second']:>11,.0f} steps/s, "
                    f"compile {r['compile_seconds']:.2f}s"
                )
        for n in [int(x) for x in args.scaling_standard_envs.split(",") if x]:
            r = run_job(
                {"kind": "scaling_standard", "n_envs": n, "total_steps": min(200_000, max(20_000, 2_500 * n))},
                None,
                args.verbose,
            )
            report["scaling"].append(r)
            log(f"scaling standard    n_envs {n:>5}: {r['steps_per_second']:>11,.0f} steps/s")

    # ------------------------------------------------------------------ Acrobot
    if "acrobot" not in skip:
        for seed in range(args.acrobot_seeds):
            r = run_job(
                {
                    "kind": "ours",
                    "trainer": "fused",
                    "env_id": "Acrobot-v1",
                    "seed": seed,
                    "eval_every": 50_000,
                    "eval_episodes": args.eval_episodes,
                    "overrides": {"total_steps": 200_000} if args.quick else {},
                },
                None,
                args.verbose,
            )
            report["acrobot"].append(r)
            log(
                f"acrobot fused seed {seed}: final {r['final_eval_mean_return']:.1f}, first >= -100 at "
                f"{r['first_solve_steps']} steps / {r['first_solve_seconds']}s (compile {r['compile_seconds']:.2f}s)"
            )

    report["finished"] = datetime.now(UTC).isoformat()
    report["summary"] = summarize(report)
    report["machine"] = machine_info()
    out.write_text(json.dumps(report, indent=1))
    md = markdown(report)
    out.with_suffix(".md").write_text(md)
    plot(report, out.with_suffix(".png"))
    print(md)


# ---------------------------------------------------------------------------- report
def summarize(report: dict) -> dict[str, Any]:
    runs = report["runs"]
    by = {impl: [r for r in runs if r["impl"] == impl] for impl in COMPARED}
    s: dict[str, Any] = {}
    for impl, rs in by.items():
        if not rs:
            continue
        s[impl] = {
            "runs": len(rs),
            **column_medians(
                rs,
                (
                    "steps_per_second",
                    "steps_per_second_incl_compile",
                    "compile_seconds",
                    "first_solve_seconds",
                    "stable_solve_seconds",
                ),
            ),
            "stable_solves": sum(r["stable_solve_seconds"] is not None for r in rs),
            "train_seconds": median_censored([r["train_seconds"] for r in rs]),
        }
    ratios: dict[str, Any] = {}
    sb3 = {r["seed"]: r for r in by["sb3"]}
    for impl in COMPARED[1:]:
        paired = [(r, sb3[r["seed"]]) for r in by[impl] if r["seed"] in sb3]
        if not paired:
            continue
        entry = {
            "steps_per_second_x_sb3": median_censored(
                [a["steps_per_second"] / b["steps_per_second"] for a, b in paired]
            )
        }
        for key in ("first_solve_seconds", "stable_solve_seconds"):
            vals = []
            for a, b in paired:
                if a[key] is None:
                    vals.append(None)  # ours never: ratio infinite
                elif b[key] is None:  # SB3 never: bounded above by ours / SB3's whole clock
                    vals.append(a[key] / b["train_seconds"])
                else:
                    vals.append(a[key] / b[key])
            entry[f"{key}_over_sb3"] = median_censored(vals)
            entry[f"{key}_sb3_never_seeds"] = [b["seed"] for a, b in paired if b[key] is None]
        ratios[impl] = entry
    s["ratios"] = ratios
    for impl in ("fused_xla", "fused_graph"):
        points = [r for r in report["scaling"] if r["impl"] == impl]
        if points:
            s[f"scaling_best_{impl}"] = max(points, key=lambda r: r["steps_per_second"])
    if report["acrobot"]:
        s["acrobot"] = {
            "final_eval_mean_return": [r["final_eval_mean_return"] for r in report["acrobot"]],
            "solved_runs": sum(r["final_eval_mean_return"] >= SOLVED["Acrobot-v1"] for r in report["acrobot"]),
            "first_solve_seconds": [r["first_solve_seconds"] for r in report["acrobot"]],
            "first_solve_steps": [r["first_solve_steps"] for r in report["acrobot"]],
        }
    return s


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "load_avg_end": os.getloadavg(),
    }
    cpu = cpu_model()
    if cpu is not None:
        info["cpu"] = cpu
    info["versions"] = package_versions(
        ("tensorflow", "keras", "gymnasium", "torch", "stable_baselines3", "numpy"), source="import"
    )
    commit = git("rev-parse", "HEAD")
    if commit is not None:
        info["git_commit"] = commit
    return info


def markdown(report: dict) -> str:
    s = report["summary"]
    lines = [
        "# Fused training vs standard vs Stable-Baselines3 (CartPole-v1)",
        "",
        f"Command: `{report['command']}`  ",
        f"Started {report['started']}, finished {report['finished']}; "
        f"machine: {report['machine'].get('cpu', '?')}, {report['machine']['cpus']} CPUs "
        f"(shared; load averages per run in the JSON).",
        "",
    ]
    if report["runs"]:
        lines += [
            "## Medians over seeds",
            "",
            "| impl | runs | steps/s (excl. compile) | steps/s incl. compile | compile s | first solve s | "
            "stable solve s | stable solves | train s |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for impl in COMPARED:
            if impl in s:
                m = s[impl]
                lines.append(
                    f"| {impl} | {m['runs']} | {m['steps_per_second']:,.0f} | "
                    f"{m['steps_per_second_incl_compile']:,.0f} | "
                    f"{fmt(m['compile_seconds'], '.2f', 'never')} | "
                    f"{fmt(m['first_solve_seconds'], '.2f', 'never')} | "
                    f"{fmt(m['stable_solve_seconds'], '.2f', 'never')} | "
                    f"{m['stable_solves']}/{m['runs']} | {m['train_seconds']:.1f} |"
                )
        lines += [
            "",
            "Paired ratios (same seed, run back to back), medians:",
            "",
            "| impl | steps/s x SB3 | first solve / SB3 | stable solve / SB3 |",
            "|---|---|---|---|",
        ]
        for impl, r in s["ratios"].items():
            note = (
                f" (SB3 never stable on seeds {r['stable_solve_seconds_sb3_never_seeds']}: ratio to SB3's whole clock)"
                if r["stable_solve_seconds_sb3_never_seeds"]
                else ""
            )
            lines.append(
                f"| {impl} | {r['steps_per_second_x_sb3']:.1f}x | "
                f"{fmt(r['first_solve_seconds_over_sb3'], '.3f', 'never')} | "
                f"{fmt(r['stable_solve_seconds_over_sb3'], '.3f', 'never')}{note} |"
            )
        lines += [
            "",
            "## Every run",
            "",
            "| impl | seed | envs x steps | lr / opt / schedule / reward scale | budget | steps/s | compile s | "
            "first solve | "
            "stable solve | final eval | load |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in report["runs"]:
            first = (
                "never"
                if r["first_solve_seconds"] is None
                else f"{r['first_solve_seconds']:.2f}s @ {r['first_solve_steps']:,}"
            )
            stable = (
                "never"
                if r["stable_solve_seconds"] is None
                else f"{r['stable_solve_seconds']:.2f}s @ {r['stable_solve_steps']:,}"
            )
            lines.append(
                f"| {r['impl']} | {r['seed']} | {r['n_envs']}x{r['n_steps']} | {r['lr']:g} / {r['optimizer']}"
                f" / {r['lr_schedule']} / {r.get('reward_scale', 1.0):g} | {r['total_steps']:,} | "
                f"{r['steps_per_second']:,.0f} | "
                f"{r['compile_seconds']:.2f} | {first} | {stable} | {r['final_eval_mean_return']:.1f} | "
                f"{r['load_start']:.1f}-{r['load_end']:.1f} |"
            )
    if report["scaling"]:
        lines += [
            "",
            "## Steps/s against the number of parallel envs (CartPole-v1, n_steps 5, 1 thread)",
            "",
            "| impl | envs | steps/s | compile / warm-up s |",
            "|---|---|---|---|",
        ]
        for r in report["scaling"]:
            lines.append(f"| {r['impl']} | {r['n_envs']} | {r['steps_per_second']:,.0f} | {r['compile_seconds']:.2f} |")
    if report["acrobot"]:
        lines += [
            "",
            "## Acrobot-v1, fused preset (solved: greedy 100-episode mean >= -100)",
            "",
            "| seed | budget | final eval | first >= -100 | compile s |",
            "|---|---|---|---|---|",
        ]
        for r in report["acrobot"]:
            first = (
                "never"
                if r["first_solve_steps"] is None
                else f"{r['first_solve_steps']:,} steps, {r['first_solve_seconds']:.2f}s"
            )
            lines.append(
                f"| {r['seed']} | {r['total_steps']:,} | {r['final_eval_mean_return']:.1f} | {first} | "
                f"{r['compile_seconds']:.2f} |"
            )
    lines += [
        "",
        "Definitions: see the docstring of benchmarks/bench_fused.py (training clocks exclude evaluation "
        "and include compilation; 'stable' = this and every later evaluation up to the end of the budget "
        "average >= 475).",
    ]
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    ax = axes[0]
    colors = {
        "sb3": "tab:gray",
        "standard": "tab:blue",
        "fused_graph": "tab:red",
        "fused_xla": "tab:purple",
        "fused_xla_warm": "tab:orange",
    }
    for impl, color in colors.items():
        for i, r in enumerate(x for x in report["runs"] if x["impl"] == impl):
            ev = r["evals"]
            ax.plot(
                [e["train_seconds"] for e in ev],
                [e["mean_return"] for e in ev],
                color=color,
                alpha=0.8,
                marker=".",
                ms=3,
                lw=1,
                label=impl if i == 0 else None,
            )
    ax.axhline(475, color="k", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("training wall-clock seconds (compilation included, evaluation excluded)")
    ax.set_ylabel("greedy return, 100 episodes")
    ax.set_title("CartPole-v1: learning against wall-clock")
    ax.legend()
    ax = axes[1]
    for impl, color, marker in (
        ("fused_xla", "tab:purple", "o"),
        ("fused_graph", "tab:red", "^"),
        ("standard", "tab:blue", "s"),
    ):
        pts = sorted((r["n_envs"], r["steps_per_second"]) for r in report["scaling"] if r["impl"] == impl)
        if pts:
            ax.plot(*zip(*pts), marker=marker, color=color, label=f"{impl} (1 thread)")
    sb3 = report["summary"].get("sb3", {}).get("steps_per_second")
    if sb3:
        ax.axhline(sb3, color="tab:gray", ls="--", label=f"SB3 A2C, 8 envs ({sb3:,.0f})")
        ax.axhline(50 * sb3, color="tab:gray", ls=":", label="50x SB3")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("parallel environments")
    ax.set_ylabel("env steps / second")
    ax.set_title("Throughput against the number of environments")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    try:
        main()
    except WorkerFailed as e:
        sys.exit(f"worker failed: {e.spec}\n{e.stderr}")
