"""End-to-end: the command line, the run directory, determinism, bad input, learning."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from a2c.common.errors import RunDirError
from a2c.config.resolve import make_config
from a2c.run.train import train

REPO = Path(__file__).resolve().parents[1]
TIME_COLUMNS = {"time/steps_per_second", "time/elapsed_seconds"}


def run_cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "a2c", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def tiny(tmp_path: Path, name: str = "run", **overrides):
    return make_config(
        {
            "total_steps": 1600,
            "n_envs": 4,
            "n_steps": 5,
            "eval_every": 800,
            "eval_episodes": 2,
            "final_eval_episodes": 3,
            "log_every": 20,
            "progress": False,
            "run_dir": str(tmp_path / name),
            **overrides,
        }
    )


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_cli_smoke_writes_every_file_of_the_run_directory(tmp_path):
    run_dir = tmp_path / "smoke"
    proc = run_cli(
        "train",
        "--env",
        "CartPole-v1",
        "--total-steps",
        "800",
        "--n-envs",
        "4",
        "--eval-every",
        "400",
        "--eval-episodes",
        "2",
        "--final-eval-episodes",
        "3",
        "--log-every",
        "10",
        "--run-dir",
        str(run_dir),
        "--no-progress",
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"run directory: {run_dir}" in proc.stdout
    for name in ("config.toml", "metrics.csv", "evaluations.csv", "model.keras", "summary.json", "learning_curves.png"):
        assert (run_dir / name).is_file() and (run_dir / name).stat().st_size > 0, name
    assert (run_dir / "learning_curves.png").read_bytes().startswith(b"\x89PNG")
    assert list((run_dir / "tb").glob("events.out.tfevents.*"))
    # What to do next, as commands to copy.
    assert f"learning curves: {run_dir / 'learning_curves.png'}" in proc.stdout
    assert f"a2c evaluate {run_dir} --episodes 100" in proc.stdout and "tensorboard --logdir" in proc.stdout
    config = tomllib.loads((run_dir / "config.toml").read_text())
    assert config["total_steps"] == 800 and config["n_envs"] == 4 and config["run_dir"] == str(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    for key in (
        "env_id",
        "seed",
        "total_steps",
        "train_seconds",
        "steps_per_second",
        "eval_mean_return",
        "eval_std_return",
        "eval_episodes",
    ):
        assert key in summary, key
    assert summary["total_steps"] == 800 and summary["eval_episodes"] == 3
    metrics = read_csv(run_dir / "metrics.csv")
    assert [int(r["global_step"]) for r in metrics] == [200, 400, 600, 800]
    assert all(
        np.isfinite(float(metrics[-1][k]))
        for k in ("train/policy_loss", "train/value_loss", "train/entropy", "train/learning_rate")
    )
    evals = read_csv(run_dir / "evaluations.csv")
    assert [int(r["global_step"]) for r in evals] == [400, 800, 800]  # periodic, periodic, final
    # TensorBoard events hold the namespaced scalars.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    tags = set(events.Tags()["tensors"]) | set(events.Tags()["scalars"])
    assert {"train/policy_loss", "train/entropy", "eval/mean_return", "time/steps_per_second"} <= tags


def test_same_seed_gives_identical_metrics(tmp_path):
    a = train(tiny(tmp_path, "a", seed=7))
    b = train(tiny(tmp_path, "b", seed=7))
    c = train(tiny(tmp_path, "c", seed=8))
    rows_a, rows_b, rows_c = (read_csv(r.run_dir / "metrics.csv") for r in (a, b, c))
    strip = lambda rows: [{k: v for k, v in r.items() if k not in TIME_COLUMNS} for r in rows]  # noqa: E731
    assert strip(rows_a) == strip(rows_b)
    assert strip(rows_a) != strip(rows_c)
    assert strip(read_csv(a.run_dir / "evaluations.csv")) == strip(read_csv(b.run_dir / "evaluations.csv"))
    for wa, wb in zip(a.model.get_weights(), b.model.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_existing_run_directory_is_not_overwritten(tmp_path):
    cfg = tiny(tmp_path, total_steps=200, final_eval_episodes=0, eval_every=0)
    train(cfg)
    before = (tmp_path / "run" / "metrics.csv").read_text()
    with pytest.raises(RunDirError, match="already holds a run"):
        train(cfg)
    assert (tmp_path / "run" / "metrics.csv").read_text() == before
    train(cfg, overwrite=True)
    assert len(read_csv(tmp_path / "run" / "metrics.csv")) == 1


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--env", "NoSuchEnv-v0"], "unknown environment 'NoSuchEnv-v0'"),
        (["--env", "tests.spaces_envs:A2CTest/UnboundedBox-v0"], "has an unbounded Box action space Box(-inf, inf"),
        (["--env", "tests.spaces_envs:A2CTest/TupleAction-v0"], "has action space Tuple(Discrete(3), Discrete(2))"),
        (["--env", "tests.spaces_envs:A2CTest/EmptyMultiDiscrete-v0"], "has action space MultiDiscrete([])"),
        (["--env", "tests.spaces_envs:A2CTest/DictOfTuple-v0"], "has observation key 'bag' of space Tuple"),
        (
            ["--env", "tests.spaces_envs:A2CTest/MultiDiscreteIdentity-v0", "--fused"],
            "fused mode needs a TensorFlow port of the environment",
        ),
        (["--env", "tests.spaces_envs:A2CTest/SequenceObs-v0"], "has observation space Sequence(Discrete(3)"),
        (
            ["--env", "BipedalWalker-v3", "--fused"],
            "fused mode needs a TensorFlow port of the environment and 'BipedalWalker-v3'",
        ),
        (
            ["--env", "CartPole-v1", "--fused", "--seeds", "0-1", "--normalize-obs"],
            "normalize_obs is not supported by population training",
        ),
        (["--gamma", "1.5"], "gamma must be in (0, 1]"),
        (["--total-steps", "0"], "total_steps must be positive"),
        (["--lr", "-1"], "lr must be positive"),
        (["--n-envs", "two"], "n_envs expects int"),
        (["--config", "/no/such/file.toml"], "config file not found"),
    ],
)
def test_bad_input_gets_one_clear_line_and_nonzero_exit(tmp_path, args, needle):
    extra = [] if "--total-steps" in args else ["--total-steps", "100"]
    proc = run_cli("train", *args, *extra, "--run-dir", str(tmp_path / "never"))
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert needle in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "never").exists()  # nothing written for a rejected run


def test_learns_the_identity_task(tmp_path):
    # Reward 1 for repeating a one-hot observation; 10-step episodes, optimum 10.
    cfg = make_config(
        {
            "env_id": "A2CTest/Identity-v0",
            "total_steps": 6000,
            "n_envs": 8,
            "n_steps": 5,
            "lr": 3e-3,
            "hidden_sizes": (32,),
            "eval_every": 0,
            "final_eval_episodes": 20,
            "progress": False,
            "run_dir": str(tmp_path / "id"),
        }
    )
    summary = train(cfg).summary
    assert summary["eval_mean_return"] >= 9.5


def test_critic_bootstraps_a_time_limit_to_the_infinite_horizon_value(tmp_path):
    # Reward 1 forever, cut every 4 steps by a time limit: V must approach 1/(1-gamma) = 10,
    # where treating truncation as termination would give at most 1 + .9 + .81 + .729 = 3.4.
    cfg = make_config(
        {
            "env_id": "A2CTest/ConstantReward-v0",
            "gamma": 0.9,
            "total_steps": 12000,
            "lr": 3e-3,
            "eval_every": 0,
            "final_eval_episodes": 0,
            "progress": False,
            "run_dir": str(tmp_path / "const"),
        }
    )
    model = train(cfg).model
    value = float(model(np.array([[0.5, -0.5]], np.float32))["value"][0])
    assert value == pytest.approx(10.0, abs=0.5)


def test_cartpole_short_run_improves(tmp_path):
    cfg = make_config(
        {
            "total_steps": 40_000,
            "eval_every": 0,
            "final_eval_episodes": 10,
            "progress": False,
            "run_dir": str(tmp_path / "cp"),
        }
    )
    summary = train(cfg).summary
    rows = read_csv(Path(cfg.run_dir) / "metrics.csv")
    first = float(next(r["rollout/ep_return_mean"] for r in rows if r["rollout/ep_return_mean"]))
    assert float(rows[-1]["rollout/ep_return_mean"]) > 2 * first
    assert summary["eval_mean_return"] > 100


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cartpole_is_solved_within_200k_steps(tmp_path, seed):
    cfg = make_config({"seed": seed, "progress": False, "eval_every": 0, "run_dir": str(tmp_path / f"solve{seed}")})
    summary = train(cfg).summary
    assert summary["total_steps"] <= 200_000
    assert summary["eval_episodes"] == 100
    assert summary["eval_mean_return"] >= 475
