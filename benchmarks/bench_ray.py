"""Env steps/s against Ray worker count on LunarLander-v3, beside the single-process
trainer and Stable-Baselines3 (DummyVecEnv and SubprocVecEnv), in one run.

Every implementation trains LunarLander-v3 with 8 envs x 5 steps per update (the preset's
batch) for the same number of steps, with no evaluation, each in a fresh process run one
after another, under ``nice``. Ours: the standard trainer in one process; synchronous
A2C on 1, 2 and 4 local Ray actors (the 8 envs split among them: the same algorithm and
batch, strong scaling); A3C on 2 and 4 actors; synchronous A2C with 2 workers on a
two-node cluster simulated on this machine (``ray.cluster_utils.Cluster``: separate
object stores, so the weights and batches cross between nodes). Steps/s leave the
warm-up (first update: compilation, workers starting) out. Each Ray run also reports the
per-round cost of collecting remotely (round wall time less the slowest worker's
collection), the ``ray.put`` of the weights, and their size.

    python benchmarks/bench_ray.py --out results/ray_benchmark.json   # also .md and .png
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cpu_model, git, package_versions, run_worker, train_sb3, worker_main  # noqa: E402

ENV_ID, N_ENVS = "LunarLander-v3", 8
# (name, kind, workers, async, nodes)
IMPLS: list[tuple[str, str, int, bool, int]] = [
    ("single process", "ours", 0, False, 1),
    ("sync, 1 worker", "ours", 1, False, 1),
    ("sync, 2 workers", "ours", 2, False, 1),
    ("sync, 4 workers", "ours", 4, False, 1),
    ("A3C, 2 workers", "ours", 2, True, 1),
    ("A3C, 4 workers", "ours", 4, True, 1),
    ("sync, 2 workers, 2 simulated nodes", "ours", 2, False, 2),
    ("SB3 A2C, DummyVecEnv", "sb3", 0, False, 1),
    ("SB3 A2C, SubprocVecEnv", "sb3", 0, False, 1),
]


def ours(spec: dict[str, Any]) -> dict[str, Any]:
    from a2c.config.resolve import make_config
    from a2c.run.train import train

    cfg = make_config(
        {
            "env_id": ENV_ID,
            "seed": spec["seed"],
            "n_envs": N_ENVS,
            "total_steps": spec["steps"],
            "workers": spec["workers"],
            "async_updates": spec["async"],
            "eval_every": 0,
            "final_eval_episodes": 0,
            "log_every": 10_000,
            "checkpoint_every": 0,
            "progress": False,
            "run_dir": spec["run_dir"],
        }
    )
    cluster = None
    if spec["nodes"] > 1:
        import ray
        from ray.cluster_utils import Cluster

        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
        for _ in range(spec["nodes"] - 1):
            cluster.add_node(num_cpus=1)
        ray.init(address=cluster.address, logging_level="ERROR", log_to_driver=False)
    try:
        s = train(cfg, quiet=True).summary
    finally:
        if cluster is not None:
            import ray

            ray.shutdown()
            cluster.shutdown()
    keys = (
        "steps_per_second",
        "train_seconds",
        "warmup_seconds",
        "total_steps",
        "worker_nodes",
        "broadcast_seconds_median",
        "round_seconds_median",
        "round_overhead_seconds_median",
        "weights_bytes",
        "staleness_mean",
        "staleness_max",
        "worker_restarts",
    )
    return {k: s[k] for k in keys if k in s}


def sb3(spec: dict[str, Any]) -> dict[str, Any]:
    # The LunarLander preset's A2C settings where SB3 has them (its own separate trunks).
    run = train_sb3(
        ENV_ID,
        spec["seed"],
        spec["steps"],
        eval_every=10**9,
        eval_episodes=1,
        n_envs=N_ENVS,
        threads=1,
        subprocess_envs=spec["subproc"],
        n_steps=5,
        gamma=0.995,
        learning_rate=8.3e-4,
        ent_coef=1e-5,
        normalize_advantage=True,
    )
    return {
        "steps_per_second": run["total_steps"] / run["train_seconds"],
        "train_seconds": run["train_seconds"],
        "total_steps": run["total_steps"],
    }


def markdown(report: dict[str, Any]) -> str:
    rows = report["runs"]
    single = next(r["steps_per_second"] for r in rows if r["name"] == "single process")
    out = [
        "# Ray workers: env steps/s against worker count (LunarLander-v3)",
        "",
        f"Produced by `make bench-ray` (`{report['command']}`); settings in the script's docstring. "
        f"{report['steps']:,} steps per run, {N_ENVS} envs x 5 steps per update, seed {report['seed']}.",
        "",
        f"Machine: {report['machine']['cpu_model']}, {report['machine']['cpu_count']} CPUs; 1-minute load "
        f"average {report['load_before']:.1f} before and {report['load_after']:.1f} after the runs"
        + (
            " (other work was running on the machine: absolute figures are low and noisy)."
            if max(report["load_before"], report["load_after"]) > 1.5
            else "."
        ),
        "",
        "| implementation | steps/s | vs single process | warm-up s | round overhead ms | ray.put ms | "
        "staleness (mean / max) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:

        def ms(key: str) -> str:
            return f"{1000 * r[key]:.2f}" if r.get(key) is not None else ""  # noqa: B023 (called at once)

        stale = f"{r['staleness_mean']:.2f} / {r['staleness_max']}" if "staleness_mean" in r else ""
        warm = f"{r['warmup_seconds']:.1f}" if "warmup_seconds" in r else ""
        out.append(
            f"| {r['name']} | {r['steps_per_second']:,.0f} | {r['steps_per_second'] / single:.2f} | {warm} | "
            f"{ms('round_overhead_seconds_median')} | {ms('broadcast_seconds_median')} | {stale} |"
        )
    weights = next((r["weights_bytes"] for r in rows if "weights_bytes" in r), None)
    if weights:
        out += [
            "",
            f"Weights broadcast each update: {weights:,} bytes (one `ray.put`, fetched by reference). "
            "Round overhead: a round's wall time less its slowest worker's collection (the remote call, "
            "the weight fetch, the batch's return), median over the run.",
        ]
    return "\n".join(out) + "\n"


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = {r["name"]: r["steps_per_second"] for r in report["runs"]}
    fig, ax = plt.subplots(figsize=(7, 4))
    for prefix, label, marker in (("sync", "ours, synchronous workers", "o"), ("A3C", "ours, A3C", "s")):
        points = sorted(
            (int(n.split(", ")[1].split()[0]), v) for n, v in rows.items() if n.startswith(prefix) and "nodes" not in n
        )
        ax.plot([p[0] for p in points], [p[1] for p in points], marker=marker, label=label)
    two_nodes = rows.get("sync, 2 workers, 2 simulated nodes")
    if two_nodes:
        ax.plot([2], [two_nodes], "D", label="ours, sync, 2 simulated nodes")
    styles = {
        "single process": ("k", "-"),
        "SB3 A2C, DummyVecEnv": ("tab:red", "--"),
        "SB3 A2C, SubprocVecEnv": ("tab:purple", ":"),
    }
    for name, (color, style) in styles.items():
        if name in rows:
            ax.axhline(rows[name], color=color, linestyle=style, label=f"{name} ({N_ENVS} envs)")
    ax.set_xlabel("Ray workers (8 envs split among them)")
    ax.set_ylabel("env steps / s (warm-up excluded)")
    ax.set_xticks([1, 2, 4])
    ax.set_ylim(bottom=0)
    ax.set_title(f"{ENV_ID}: throughput on {report['machine']['cpu_count']} cores")
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12_000, help="env steps per run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results/ray_benchmark.json")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_main(args.worker, {"ours": ours, "sb3": sb3}, "kind")
        return
    load_before = os.getloadavg()[0]
    runs = []
    for name, kind, workers, is_async, nodes in IMPLS:
        spec = {
            "kind": kind,
            "seed": args.seed,
            "steps": args.steps,
            "workers": workers,
            "async": is_async,
            "nodes": nodes,
            "subproc": "Subproc" in name,
        }
        result = run_worker(Path(__file__), spec, timed=True)
        runs.append({"name": name, **result})
        print(f"{name}: {result['steps_per_second']:,.0f} steps/s", flush=True)
    report = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "steps": args.steps,
        "seed": args.seed,
        "env_id": ENV_ID,
        "n_envs": N_ENVS,
        "runs": runs,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "machine": {
            "cpu_model": cpu_model() or platform.processor(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "versions": package_versions(["tensorflow", "keras", "ray", "gymnasium", "torch", "stable-baselines3"]),
        "git_commit": git("rev-parse", "HEAD"),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(report))
    plot(report, out.with_suffix(".png"))
    print(f"wrote {out}, {out.with_suffix('.md')}, {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
