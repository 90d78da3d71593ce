#!/usr/bin/env python
"""Speed benchmark on CartPole-v1: this package's A2C vs Stable-Baselines3's A2C.

One script (~480 lines) on purpose: its workers, aggregation and report writers are read
together when a figure is questioned; what both benchmarks share is in ``common.py``.

Both sides train CartPole-v1 with the same hyperparameters (8 envs, n_steps 5,
gamma 0.99, GAE lambda 1, RMSprop with eps 1e-5 outside the square root, global
gradient-norm clip 0.5, the same lr / lr schedule / vf_coef / ent_coef) and are
evaluated with the same protocol: every 10,000 env steps a greedy evaluation of 20
episodes, one env per episode, episode k seeded 1_000_000 + k
(:func:`a2c.artifacts.evaluate.evaluate_policy` for both). Evaluation time is excluded from
both training clocks.

Reported per seed and as medians, each also as a ratio ours / SB3:

* env steps per second of training (whole run; and "steady", i.e. excluding the
  first evaluation interval, which holds TensorFlow's tracing / XLA compilation);
* training seconds until a 20-episode greedy evaluation first averages >= 475
  (runs that never get there within the budget are reported as not reached).

Every training run happens in a fresh subprocess (same interpreter), so the
frameworks never share a process, TensorFlow's thread settings always take effect,
and SB3 / ours runs alternate (ABBA order over seeds) to share machine noise.

Usage::

    python benchmarks/bench_cartpole.py --out results/benchmark_cartpole.json
    python benchmarks/bench_cartpole.py --quick --out /tmp/bench.json   # smoke test
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

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

# benchmarks/ is sys.path[0] when this script runs (also in its --worker subprocesses).
from common import (  # noqa: E402
    REPO_ROOT,
    WorkerFailed,
    column_medians,
    cpu_model,
    fmt,
    git,
    median_censored,
    median_of_known,
    package_versions,
    read_eval_clock,
    run_worker,
    train_sb3,
    worker_main,
)

ENV_ID = "CartPole-v1"
SOLVED = 475.0
# SB3 reference (1 torch thread, MlpPolicy) and 1 thread with a shared trunk identical to
# our network. Torch's default threads (as RL Baselines3 Zoo runs it) is "0": left out by
# default because on a small, shared machine its OpenMP threads spin against the load.
DEFAULT_SB3_VARIANTS = "1,1:shared"
OUR_TRAINERS = ("standard", "fused")
DEFAULT_OURS = "standard,fused"

# Fixed for both implementations (the brief's comparison protocol).
FIXED = dict(
    n_envs=8,
    n_steps=5,
    gamma=0.99,
    gae_lambda=1.0,
    max_grad_norm=0.5,
    rms_rho=0.99,
    optimizer_eps=1e-5,
    normalize_advantage=False,
    hidden_sizes=[64, 64],
    activation="tanh",
)


# --------------------------------------------------------------------------- workers
def _evals_summary(evals: list[dict], total_steps: int, train_seconds: float) -> dict[str, Any]:
    """Figures derived from the evaluation points (each carries its training clock)."""
    solved = next((e for e in evals if e["mean_return"] >= SOLVED), None)
    first = evals[0] if evals else None
    steady = None
    if first is not None and total_steps > first["global_step"] and train_seconds > first["train_seconds"]:
        steady = (total_steps - first["global_step"]) / (train_seconds - first["train_seconds"])
    return {
        "total_steps": total_steps,
        "train_seconds": train_seconds,
        "steps_per_second": total_steps / max(train_seconds, 1e-9),
        # Excluding the first evaluation interval (tracing, XLA compile, allocator warm-up).
        "steady_steps_per_second": steady,
        "warmup_interval": (
            {"steps": first["global_step"], "train_seconds": first["train_seconds"]} if first else None
        ),
        "reached_475": solved is not None,
        "seconds_to_475": solved["train_seconds"] if solved else None,
        "steps_to_475": solved["global_step"] if solved else None,
        "final_eval_mean_return": evals[-1]["mean_return"] if evals else None,
        "evals": evals,
    }


def ours_config(spec: dict[str, Any], fused: bool = False):
    """Our Config for the benchmark: every hyperparameter given explicitly (so no env or
    fused preset decides anything), run-time extras switched off where the field exists."""
    from a2c.config.resolve import make_config
    from a2c.config.schema import FIELD_NAMES

    batch = FIXED["n_envs"] * FIXED["n_steps"]
    if spec["eval_every"] % batch:
        raise SystemExit(f"eval_every ({spec['eval_every']}) must be a multiple of n_envs*n_steps ({batch})")
    overrides = {
        **FIXED,
        "env_id": ENV_ID,
        "seed": spec["seed"],
        "total_steps": spec["steps"],
        "lr": spec["lr"],
        "lr_schedule": spec["lr_schedule"],
        "vf_coef": spec["vf_coef"],
        "ent_coef": spec["ent_coef"],
        "optimizer": "rmsprop",
        "eval_every": spec["eval_every"],
        "eval_episodes": spec["eval_episodes"],
        "final_eval_episodes": 0,
        "log_every": spec["eval_every"] // batch,
        "run_dir": spec["run_dir"],
        "progress": False,
        "num_threads": 1,
        # Fields newer than the first version of this script: neutral values SB3 matches,
        # and checkpoints only at the end (their time is off the clock anyway).
        "reward_scale": 1.0,
        "obs_scaling": "none",
        "checkpoint_every": 0,
        "fused": fused,
    }
    return make_config({k: v for k, v in overrides.items() if k in FIELD_NAMES})


def worker_ours(spec: dict[str, Any]) -> dict[str, Any]:
    """Train with a2c.run.train.train (or a2c.run.train.train_fused) and read its clock."""
    fused = spec.get("trainer") == "fused"
    cfg = ours_config(spec, fused)
    if fused:
        from a2c.run.train import train_fused as trainer
    else:
        from a2c.run.train import train as trainer
    t0 = time.perf_counter()
    result = trainer(cfg, overwrite=True, quiet=True)
    wall = time.perf_counter() - t0

    s = result.summary
    out = _evals_summary(read_eval_clock(Path(spec["run_dir"])), int(s["total_steps"]), float(s["train_seconds"]))
    # The trainer's own warm-up figure: the standard trainer's first update, the fused
    # trainer's compilation (tracing, XLA); both are inside train_seconds.
    out["trainer_warmup_seconds"] = s.get("warmup_seconds")
    out["trainer_steps_per_second"] = s.get("steps_per_second")  # the trainer's own (excludes that warm-up)
    out.update(
        wall_seconds=wall,
        impl="ours",
        trainer="fused" if fused else "standard",
        threads=1,
        arch="shared 64-64 trunk (a2c.agent.model)",
    )
    return out


def worker_sb3(spec: dict[str, Any]) -> dict[str, Any]:
    """Train SB3 A2C with the same hyperparameters and a greedy evaluation every
    eval_every steps (see :func:`common.train_sb3`: evaluation time is off the clock,
    which runs from on_training_start to on_training_end)."""
    from stable_baselines3.common.utils import LinearSchedule

    lr = spec["lr"] if spec["lr_schedule"] == "constant" else LinearSchedule(spec["lr"], 0.0, 1.0)
    run = train_sb3(
        ENV_ID,
        spec["seed"],
        spec["steps"],
        spec["eval_every"],
        spec["eval_episodes"],
        n_envs=FIXED["n_envs"],
        threads=spec["threads"],
        shared_trunk=spec["arch"] == "shared",
        n_steps=FIXED["n_steps"],
        gamma=FIXED["gamma"],
        gae_lambda=FIXED["gae_lambda"],
        learning_rate=lr,
        ent_coef=spec["ent_coef"],
        vf_coef=spec["vf_coef"],
        max_grad_norm=FIXED["max_grad_norm"],
        rms_prop_eps=FIXED["optimizer_eps"],
        normalize_advantage=False,
    )
    out = _evals_summary(run["evals"], run["total_steps"], run["train_seconds"])
    arch = (
        "shared 64-64 trunk (custom extractor)"
        if spec["arch"] == "shared"
        else "MlpPolicy default: separate 64-64 pi and vf"
    )
    out.update(wall_seconds=run["wall_seconds"], impl="sb3", threads=run["threads"], arch=arch)
    return out


WORKERS = {"ours": worker_ours, "sb3": worker_sb3}


# --------------------------------------------------------------------------- driver
def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b is not None and b > 0 else None


def aggregate(runs: list[dict], ours_labels: list[str], sb3_labels: list[str]) -> dict[str, Any]:
    """Medians per implementation, and ratios of each of ours to each SB3 variant."""
    by: dict[str, list[dict]] = {}
    for r in runs:
        if not r.get("failed"):
            by.setdefault(r["label"], []).append(r)
    medians = {}
    for label, rs in by.items():
        medians[label] = {
            "runs": len(rs),
            **column_medians(rs, ("steps_per_second", "steady_steps_per_second"), median_of_known),
            "seconds_to_475": median_censored([r["seconds_to_475"] for r in rs]),
            "seconds_to_475_reached_only": median_of_known([r["seconds_to_475"] for r in rs]),
            "steps_to_475": median_censored([r["steps_to_475"] for r in rs]),
            "reached_475": f"{sum(r['reached_475'] for r in rs)}/{len(rs)}",
        }

    def compare(mine: str, theirs_label: str) -> dict[str, Any]:
        ours = {r["seed"]: r for r in by.get(mine, [])}
        theirs = {r["seed"]: r for r in by.get(theirs_label, [])}
        seeds = [seed for seed in ours if seed in theirs]
        m_o, m_t = medians.get(mine, {}), medians.get(theirs_label, {})
        out = {}
        for key in ("steps_per_second", "steady_steps_per_second", "seconds_to_475"):
            paired = [_ratio(ours[seed][key], theirs[seed][key]) for seed in seeds]
            out[key] = {
                "median_of_paired_ratios": median_of_known(paired),
                "ratio_of_medians": _ratio(m_o.get(key), m_t.get(key)),
                "per_seed": dict(zip(map(str, seeds), paired)),
            }
        return out

    ratios = {f"{mine} / {theirs}": compare(mine, theirs) for mine in ours_labels for theirs in sb3_labels}
    ref = sb3_labels[0]
    targets = {}
    for mine in ours_labels:
        head = ratios[f"{mine} / {ref}"]["steps_per_second"]["median_of_paired_ratios"]
        targets[mine] = None if head is None else head >= 2.0
    return {
        "medians": medians,
        "ratios": ratios,
        "reference_sb3_variant": ref,
        "target": f"steps per second, ours / {ref} (median of paired ratios) >= 2",
        "target_met": targets,
        "notes": (
            "seconds_to_475 ratios: < 1 means ours reached 475 sooner. Paired ratios skip seeds "
            "where either side never reached 475; medians count 'not reached' as infinite "
            "(None = fewer than half the seeds reached it)."
        ),
    }


def _threads_used(runs: list[dict], label: str) -> int | None:
    return next((r["threads"] for r in runs if r["label"] == label), None)


def code_state() -> dict[str, Any]:
    """Git commit, locally modified files and a hash of the a2c sources being measured."""
    import hashlib

    h = hashlib.sha256()
    for f in sorted((REPO_ROOT / "a2c").rglob("*.py")):
        h.update(str(f.relative_to(REPO_ROOT)).encode() + b"\0" + f.read_bytes())
    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "git_commit": git("rev-parse", "HEAD") or None,
        "modified_tracked_files": status.splitlines() if status else [],
        "a2c_sources_sha256": h.hexdigest(),
    }


def machine_info() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": cpu_model() or platform.processor() or None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": package_versions(
            ("a2c", "tensorflow", "keras", "torch", "stable-baselines3", "gymnasium", "numpy")
        ),
    }


def write_markdown(path: Path, report: dict[str, Any]) -> None:
    s, m, c, agg = report["settings"], report["machine"], report["code"], report["summary"]
    labels = s["ours_variants"] + s["sb3_variants"]
    info = report["variant_info"]
    lines = [
        "# CartPole-v1 benchmark: a2c (TensorFlow/Keras) vs Stable-Baselines3 A2C (PyTorch CPU)",
        "",
        f"Generated {report['finished_utc']} by `{report['command']}`"
        + (" (quick smoke-test mode: too short to mean much)." if s["quick"] else "."),
        "",
        f"Machine: {m['cpu_model']}, {m['cpu_count']} CPUs ({m['cpus_usable']} usable), {m['platform']}; "
        f"load average {report['loadavg_start'][0]:.2f} at start, {report['loadavg_end'][0]:.2f} at end "
        "(the machine may be shared, so compare figures of the same run only: the paired ratios).",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v) + f", python {m['python']}.",
        f"Code: commit {str(c['git_commit'])[:12]}"
        + (
            f" with local changes to {', '.join(x.split()[-1] for x in c['modified_tracked_files'])}"
            if c["modified_tracked_files"]
            else ""
        )
        + f"; a2c sources sha256 {c['a2c_sources_sha256'][:12]}"
        + (" (the a2c sources CHANGED during the run)." if c["a2c_sources_changed_during_run"] else "."),
        "",
        f"Settings (all): {s['steps']:,} env steps per run, seeds {s['seeds']}, n_envs {s['n_envs']}, "
        f"n_steps {s['n_steps']}, gamma {s['gamma']}, gae_lambda {s['gae_lambda']}, lr {s['lr']} ({s['lr_schedule']}), "
        f"vf_coef {s['vf_coef']}, ent_coef {s['ent_coef']}, max_grad_norm {s['max_grad_norm']}, RMSprop "
        f"(alpha {s['rms_rho']}, eps {s['optimizer_eps']} outside the sqrt), tanh 64-64. "
        f"Greedy evaluation every {s['eval_every']:,} steps, {s['eval_episodes']} episodes "
        f"(one env each, seeds {s['eval_seed_base']:,}+k), excluded from the training clocks.",
        "",
        "Implementations: " + "; ".join(f"`{v}` = {info[v]}" for v in labels) + ".",
        "",
        "## Per run",
        "",
        "| order | seed | implementation | steps/s | steady steps/s | seconds to 475 | steps to 475 | last eval "
        "| wall s |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for i, r in enumerate(report["runs"], 1):
        if r.get("failed"):
            lines.append(f"| {i} | {r['seed']} | {r['label']} | FAILED: {r['error'].splitlines()[0]} ||||||")
            continue
        lines.append(
            f"| {i} | {r['seed']} | {r['label']} | {fmt(r['steps_per_second'])} | "
            f"{fmt(r['steady_steps_per_second'])} | "
            f"{fmt(r['seconds_to_475'], '.1f', 'not reached')} | {fmt(r['steps_to_475'], ',', '-')} | "
            f"{fmt(r['final_eval_mean_return'], '.1f')} | {r['wall_seconds']:.1f} |"
        )
    lines += [
        "",
        "## Medians over seeds",
        "",
        "| implementation | steps/s | steady steps/s | seconds to 475 | steps to 475 | reached 475 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label in labels:
        md = agg["medians"].get(label)
        if md:
            lines.append(
                f"| {label} | {fmt(md['steps_per_second'])} | {fmt(md['steady_steps_per_second'])} | "
                f"{fmt(md['seconds_to_475'], '.1f', 'not reached')} | "
                f"{fmt(md['steps_to_475'], ',.0f', '-')} | {md['reached_475']} |"
            )
    lines += [
        "",
        "## Ratios ours / SB3",
        "",
        "Steps/s: > 1 means ours is faster. Seconds to 475: < 1 means ours reaches 475 sooner in "
        "training wall-clock. 'paired' = median over seeds of the ratio of the two runs of the same "
        "seed (run back to back, so they saw similar machine load); 'of medians' = ratio of the "
        "medians above. n/a where either side never reached 475.",
        "",
        "| ours / SB3 | steps/s (paired) | steps/s (of medians) | steady steps/s (paired) "
        "| seconds to 475 (paired) | seconds to 475 (of medians) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for pair, r in agg["ratios"].items():
        lines.append(
            f"| {pair} | {fmt(r['steps_per_second']['median_of_paired_ratios'], '.2f')} | "
            f"{fmt(r['steps_per_second']['ratio_of_medians'], '.2f')} | "
            f"{fmt(r['steady_steps_per_second']['median_of_paired_ratios'], '.2f')} | "
            f"{fmt(r['seconds_to_475']['median_of_paired_ratios'], '.2f')} | "
            f"{fmt(r['seconds_to_475']['ratio_of_medians'], '.2f')} |"
        )
    lines += [
        "",
        f"Target: {agg['target']}: "
        + "; ".join(
            f"`{k}` " + ("met" if v else "not met" if v is not None else "n/a") for k, v in agg["target_met"].items()
        )
        + ".",
        "",
        "'steady' excludes the first evaluation interval "
        f"({s['eval_every']:,} steps: tracing/XLA compilation and warm-up) from both clocks.",
        "",
    ]
    path.write_text("\n".join(lines))


def parse_variants(text: str) -> list[tuple[int, str]]:
    """'1:separate,0:shared' -> [(1, 'separate'), (0, 'shared')]; threads 0 = torch's default."""
    out = []
    for item in filter(None, (t.strip() for t in text.split(","))):
        threads, _, arch = item.partition(":")
        arch = arch or "separate"
        if arch not in ("separate", "shared") or not threads.isdigit():
            raise argparse.ArgumentTypeError(f"bad SB3 variant {item!r}; expected THREADS[:separate|shared]")
        out.append((int(threads), arch))
    if not out:
        raise argparse.ArgumentTypeError("at least one SB3 variant is needed")
    return out


def parse_ours(text: str) -> list[str]:
    out = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in out if t not in OUR_TRAINERS]
    if bad or not out:
        raise argparse.ArgumentTypeError(f"--ours takes a comma-separated list of {', '.join(OUR_TRAINERS)}")
    return out


def variant_label(threads: int, arch: str) -> str:
    return ("sb3_default_threads" if threads == 0 else f"sb3_{threads}t") + ("_shared" if arch == "shared" else "")


def ours_label(trainer: str) -> str:
    return "ours" if trainer == "standard" else f"ours_{trainer}"


def preset_defaults() -> dict[str, Any]:
    """lr, lr_schedule, vf_coef, ent_coef of our CartPole-v1 config (preset over defaults)."""
    try:
        from a2c.config.resolve import make_config

        cfg = make_config({"env_id": ENV_ID})
        return {k: getattr(cfg, k) for k in ("lr", "lr_schedule", "vf_coef", "ent_coef")}
    except Exception:  # the package is being edited: fall back to A2C's usual values
        return {"lr": 7e-4, "lr_schedule": "linear", "vf_coef": 0.5, "ent_coef": 0.0}


def build_parser() -> argparse.ArgumentParser:
    d = preset_defaults()
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--seeds", type=int, default=3, help="number of seeds (0, 1, ...)")
    p.add_argument("--steps", type=int, default=200_000, help="env steps per training run")
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: 1 seed, 20,000 steps, ours (standard) vs the SB3 reference only",
    )
    p.add_argument(
        "--out",
        default="results/benchmark_cartpole.json",
        help="JSON report; a markdown table is written next to it (.md)",
    )
    p.add_argument(
        "--lr", type=float, default=d["lr"], help="learning rate, both sides (default: our CartPole-v1 preset's)"
    )
    p.add_argument(
        "--lr-schedule",
        choices=("constant", "linear"),
        default=d["lr_schedule"],
        help="both sides; linear decays to 0 over --steps (default: the preset's)",
    )
    p.add_argument("--vf-coef", type=float, default=d["vf_coef"], help="both sides (default: the preset's)")
    p.add_argument("--ent-coef", type=float, default=d["ent_coef"], help="both sides (default: the preset's)")
    p.add_argument("--eval-every", type=int, default=10_000)
    p.add_argument("--eval-episodes", type=int, default=20)
    p.add_argument(
        "--ours",
        type=parse_ours,
        default=None,
        metavar="TRAINERS",
        help=f"our trainers, comma-separated from {', '.join(OUR_TRAINERS)}; the first is the "
        f"headline. Default {DEFAULT_OURS!r} ('standard' with --quick); 'fused' needs a2c.trainers.fused.",
    )
    p.add_argument(
        "--sb3",
        type=parse_variants,
        default=None,
        metavar="VARIANTS",
        help="SB3 variants, comma-separated THREADS[:separate|shared]: torch threads (0 = torch's "
        "default) and network (separate = MlpPolicy's own pi/vf nets, shared = our shared "
        "64-64 trunk). The first is the reference for the 2x target. "
        f"Default {DEFAULT_SB3_VARIANTS!r} ('1' with --quick).",
    )
    p.add_argument("--verbose", action="store_true", help="show the workers' output")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.worker:
        worker_main(args.worker, WORKERS, "impl")
        return 0
    from a2c.artifacts.evaluate import EVAL_SEED_BASE  # imports TensorFlow: not needed for --help or in workers

    if args.quick:
        args.seeds, args.steps = 1, 20_000
    if args.sb3 is None:
        args.sb3 = parse_variants("1" if args.quick else DEFAULT_SB3_VARIANTS)
    if args.ours is None:
        args.ours = ["standard"] if args.quick else parse_ours(DEFAULT_OURS)
        if "fused" in args.ours and not (REPO_ROOT / "a2c" / "fused.py").exists():
            args.ours.remove("fused")
    seeds = list(range(args.seeds))
    sb3 = [(variant_label(t, a), dict(impl="sb3", threads=t, arch=a)) for t, a in args.sb3]
    ours = [(ours_label(t), dict(impl="ours", trainer=t)) for t in args.ours]
    base = dict(
        steps=args.steps,
        lr=args.lr,
        lr_schedule=args.lr_schedule,
        vf_coef=args.vf_coef,
        ent_coef=args.ent_coef,
        eval_every=args.eval_every,
        eval_episodes=args.eval_episodes,
    )
    command = " ".join(shlex.quote(a) for a in ["python", "benchmarks/bench_cartpole.py", *sys.argv[1:]])
    out = Path(args.out)
    loadavg_start = list(os.getloadavg())
    code_start = code_state()
    started = datetime.now(UTC).isoformat(timespec="seconds")

    # Mirrored (ABBA) order with the headline pair (first of ours, first SB3 variant) in
    # the middle, so that they always run back to back:
    # seed 0: ... sb3 ref, ours; seed 1: ours, sb3 ref, ...; and so on.
    runs: list[dict] = []
    t_all = time.perf_counter()
    for seed in seeds:
        jobs = ours[::-1] + sb3
        if seed % 2 == 0:
            jobs.reverse()
        for label, extra in jobs:
            print(f"[{time.perf_counter() - t_all:6.0f}s] seed {seed}: {label} ...", end=" ", flush=True)
            try:
                r = run_worker(Path(__file__), {**base, **extra, "seed": seed}, verbose=args.verbose)
            except WorkerFailed as e:  # keep going: the report says which run failed and why
                error = f"{extra['impl']} run (seed {seed}) failed with status {e.returncode}\n{e.stderr[-4000:]}"
                r = {"failed": True, "error": error, "impl": extra["impl"]}
                print("FAILED\n" + error, flush=True)
            r.update(label=label, seed=seed)
            runs.append(r)
            if not r.get("failed"):
                print(
                    f"{r['steps_per_second']:.0f} steps/s, 475 at {fmt(r['seconds_to_475'], '.1f', 'never')} s",
                    flush=True,
                )

    ours_labels, sb3_labels = [o[0] for o in ours], [v[0] for v in sb3]
    variant_info = {}
    for trainer, (label, _) in zip(args.ours, ours):
        variant_info[label] = (
            "a2c.run.train.train, 1 TensorFlow thread, gymnasium's numpy-vectorised CartPole"
            if trainer == "standard"
            else "a2c.run.train.train_fused, 1 TensorFlow thread: TF port of CartPole, rollout and "
            "update in one XLA call (same-step autoreset), same hyperparameters as above"
        )
    for (t, a), (label, _) in zip(args.sb3, sb3):
        variant_info[label] = (
            (
                f"torch's default threads ({_threads_used(runs, label)} here), "
                if t == 0
                else f"{t} torch thread{'s' if t > 1 else ''}, "
            )
            + (
                "MlpPolicy (separate 64-64 actor and critic nets)"
                if a == "separate"
                else "shared 64-64 trunk like ours (custom features extractor)"
            )
            + ", DummyVecEnv of 8 gymnasium envs"
        )
    report = {
        "benchmark": "CartPole-v1 A2C: a2c (TensorFlow/Keras) vs Stable-Baselines3 (PyTorch CPU)",
        "command": command,
        "python_executable": sys.executable,
        "started_utc": started,
        "finished_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "total_wall_seconds": time.perf_counter() - t_all,
        "loadavg_start": loadavg_start,
        "loadavg_end": list(os.getloadavg()),
        "machine": machine_info(),
        "code": {
            **code_start,
            "a2c_sources_changed_during_run": code_state()["a2c_sources_sha256"] != code_start["a2c_sources_sha256"],
        },
        "settings": {
            **base,
            **FIXED,
            "env_id": ENV_ID,
            "seeds": seeds,
            "quick": args.quick,
            "optimizer": "RMSprop, eps outside the sqrt (PyTorch / SB3 style)",
            "solved_threshold": SOLVED,
            "eval_seed_base": EVAL_SEED_BASE,
            "ours_tf_threads": 1,
            "ours_variants": ours_labels,
            "sb3_variants": sb3_labels,
        },
        "variant_info": variant_info,
        "timing": (
            "Training clock per run: ours = the trainer's own train_seconds / metrics.csv "
            "time/elapsed_seconds read at each evaluation step (a metrics row falls on every "
            "evaluation step); SB3 = perf_counter from on_training_start to on_training_end minus "
            "the callback's evaluation time. All exclude model/env construction and evaluation; "
            "ours include tf.function tracing and XLA compilation (in the first interval). "
            "steady_steps_per_second excludes the first evaluation interval."
        ),
        "summary": aggregate(runs, ours_labels, sb3_labels),
        "runs": runs,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    md = out.with_suffix(".md")
    write_markdown(md, report)
    print(md.read_text())
    print(f"wrote {out} and {md}")
    return 1 if any(r.get("failed") for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
