"""Checkpoints, resume, signals and the non-finite guard (issue 6)."""

from __future__ import annotations

import csv
import json
import math
import re
import signal
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf
from gymnasium import spaces

from a2c.common.errors import ConfigError, NonFiniteError, RunDirError
from a2c.config.resolve import make_config
from a2c.envs.state import decode, encode
from a2c.run.checkpoint import RunCheckpoint
from a2c.run.signals import TrainingInterrupted
from a2c.run.train import resume, train

REPO = Path(__file__).resolve().parents[1]
TIME_COLUMNS = {"time/steps_per_second", "time/elapsed_seconds"}


class NanRewardEnv(gym.Env):
    """Reward 1 until its 60th step, NaN after: a diverging run, made to order."""

    observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = spaces.Discrete(2)

    def __init__(self) -> None:
        self.steps = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self.steps += 1
        reward = math.nan if self.steps > 60 else 1.0
        return np.full(2, 0.5, np.float32), reward, False, False, {}


class _Counter:
    """Stands for state a snapshot cannot save (a physics engine's world)."""

    def __init__(self) -> None:
        self.t = 0


class OpaqueStateEnv(gym.Env):
    """Reward 1 per step; the step count lives in an object, not in plain data."""

    observation_space = spaces.Box(0.0, 10.0, (1,), np.float32)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.world = _Counter()
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.world.t += 1
        return np.array([self.world.t], np.float32), 1.0, False, False, {}


gym.register("A2CTest/NanReward-v0", entry_point=NanRewardEnv, max_episode_steps=20)
gym.register("A2CTest/OpaqueState-v0", entry_point=OpaqueStateEnv, max_episode_steps=8)


def tiny(tmp_path: Path, name: str, **overrides):
    """80 updates; checkpoints every 6, logs every 7, evaluations every 40."""
    return make_config(
        {
            "total_steps": 1600,
            "n_envs": 4,
            "n_steps": 5,
            "eval_every": 800,
            "eval_episodes": 2,
            "final_eval_episodes": 3,
            "log_every": 7,
            "checkpoint_every": 6,
            "keep_checkpoints": 2,
            "lr_schedule": "linear",
            "progress": False,
            "run_dir": str(tmp_path / name),
            **overrides,
        }
    )


def read_csv(path: Path, drop: set[str] = TIME_COLUMNS) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k not in drop} for row in csv.DictReader(f)]


def tb_steps(run_dir: Path) -> dict[str, list[int]]:
    """Every (tag, step) in the raw event files; TensorBoard's own reader would hide
    duplicates by purging out-of-order steps."""
    steps: dict[str, list[int]] = {}
    for path in (run_dir / "tb").glob("events.*"):
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                steps.setdefault(value.tag, []).append(int(event.step))
    return {tag: sorted(s) for tag, s in steps.items()}


def stop_at(update: int, exc: type[BaseException] = KeyboardInterrupt):
    def callback(u: int, step: int) -> None:
        if u == update:
            raise exc(f"test stop at update {u}")

    return callback


def assert_same_run(a: Path, b: Path, weights_a: list[np.ndarray], weights_b: list[np.ndarray]) -> None:
    for wa, wb in zip(weights_a, weights_b, strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert read_csv(a / "metrics.csv") == read_csv(b / "metrics.csv")
    assert read_csv(a / "evaluations.csv") == read_csv(b / "evaluations.csv")
    assert tb_steps(a) == tb_steps(b)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run the interrupted ones must reproduce."""
    result = train(tiny(tmp_path_factory.mktemp("ref"), "run"))
    return result.run_dir, result.model.get_weights()


def test_config_fields_are_validated():
    cfg = make_config({})
    assert cfg.checkpoint_every > 0 and cfg.keep_checkpoints > 0
    assert make_config({"checkpoint_every": 0}).checkpoint_every == 0
    with pytest.raises(ConfigError, match="checkpoint_every"):
        make_config({"checkpoint_every": -1})
    with pytest.raises(ConfigError, match="keep_checkpoints"):
        make_config({"keep_checkpoints": 0})


def test_snapshot_encoding_is_exact_and_continues_rngs():
    rng = np.random.default_rng(5)
    rng.uniform(size=3)
    value = {
        "a": np.array([[0.1, np.pi]], np.float64),
        "b": np.float32(1 / 3),
        "c": deque([1.5, 2], maxlen=4),
        "d": (True, None, "x"),
        "e": [np.int32(7)],
        "rng": rng,
    }
    back = decode(json.loads(json.dumps(encode(value))))
    np.testing.assert_array_equal(back["a"], value["a"])
    assert back["b"] == value["b"] and back["b"].dtype == np.float32
    assert back["c"] == value["c"] and back["c"].maxlen == 4
    assert back["d"] == value["d"] and back["e"] == value["e"]
    np.testing.assert_array_equal(back["rng"].uniform(size=5), rng.uniform(size=5))


def test_interrupted_twice_and_resumed_run_equals_the_uninterrupted_one(tmp_path, reference):
    ref_dir, ref_weights = reference
    cfg = tiny(tmp_path, "int")
    with pytest.raises(TrainingInterrupted) as stopped:
        train(cfg, callback=stop_at(33))  # between checkpoints (30, 36) and log steps (28, 35)
    assert stopped.value.exit_code == 130 and stopped.value.checkpoint_update == 33
    assert (Path(cfg.run_dir) / "learning_curves.png").is_file()  # a stopped run leaves a picture too
    assert f"a2c train --resume {tmp_path / 'int'}" in str(stopped.value)
    with pytest.raises(TrainingInterrupted):
        resume(cfg.run_dir, callback=stop_at(50))
    at_50 = RunCheckpoint.latest_update(Path(cfg.run_dir))
    assert at_50 == 50
    result = resume(cfg.run_dir)

    assert result.summary["total_steps"] == cfg.total_steps == 1600
    assert result.summary["resumed_at_updates"] == [33, 50]
    metrics = read_csv(result.run_dir / "metrics.csv")
    assert [int(r["update"]) for r in metrics] == [*range(7, 80, 7), 80]
    assert_same_run(ref_dir, result.run_dir, ref_weights, result.model.get_weights())
    # Only the newest keep_checkpoints=2 remain.
    assert sorted(p.name for p in (result.run_dir / "checkpoints").glob("*.index")) == [
        "ckpt-78.index",
        "ckpt-80.index",
    ]


def test_resume_after_a_crash_cuts_the_logs_back_and_skips_half_written_checkpoints(tmp_path, reference):
    ref_dir, ref_weights = reference
    cfg = tiny(tmp_path, "crash")
    with pytest.raises(RuntimeError):
        train(cfg, callback=stop_at(52, RuntimeError))  # a bug: no checkpoint, logs ran past ckpt-48
    run_dir = Path(cfg.run_dir)
    assert RunCheckpoint.latest_update(run_dir) == 48
    assert int(read_csv(run_dir / "metrics.csv")[-1]["update"]) == 49  # to be cut
    # What a crash in the middle of saving ckpt-54 leaves: files the index never names.
    ckpt_dir = run_dir / "checkpoints"
    (ckpt_dir / "ckpt-54_temp").mkdir()
    (ckpt_dir / "ckpt-54_temp" / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"\0" * 10)
    (ckpt_dir / "ckpt-54.index").write_bytes(b"half")
    assert RunCheckpoint.latest_update(run_dir) == 48

    result = resume(run_dir)
    assert result.summary["total_steps"] == 1600
    assert not (ckpt_dir / "ckpt-54_temp").exists()
    assert_same_run(ref_dir, run_dir, ref_weights, result.model.get_weights())


def test_non_finite_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    cfg = make_config(
        {
            "env_id": "A2CTest/NanReward-v0",
            "total_steps": 2000,
            "n_envs": 4,
            "n_steps": 5,
            "eval_every": 0,
            "final_eval_episodes": 0,
            "log_every": 4,
            "checkpoint_every": 3,
            "progress": False,
            "run_dir": str(tmp_path / "nan"),
        }
    )
    with pytest.raises(NonFiniteError) as err:
        train(cfg)
    match = re.match(r"update (\d+): non-finite .*train/value_loss = nan", str(err.value))
    assert match, str(err.value)
    bad_update = int(match.group(1))
    last_good = RunCheckpoint.latest_update(tmp_path / "nan")
    assert last_good is not None and last_good < bad_update <= last_good + 3
    assert f"last good checkpoint (update {last_good}) is kept" in str(err.value)
    reader = tf.train.load_checkpoint(str(tmp_path / "nan" / "checkpoints" / f"ckpt-{last_good}"))
    for name, dtype in reader.get_variable_to_dtype_map().items():
        if dtype.is_floating:
            assert np.all(np.isfinite(reader.get_tensor(name))), name
    rows = read_csv(tmp_path / "nan" / "metrics.csv")
    assert rows and all(math.isfinite(float(r["train/value_loss"])) for r in rows)
    assert not (tmp_path / "nan" / "model.keras").exists()
    assert not (tmp_path / "nan" / "summary.json").exists()


def test_env_whose_state_cannot_be_saved_resumes_with_fresh_episodes(tmp_path, capsys):
    cfg = tiny(
        tmp_path, "opaque", env_id="A2CTest/OpaqueState-v0", total_steps=400, eval_every=0, final_eval_episodes=0
    )
    with pytest.raises(TrainingInterrupted):
        train(cfg, callback=stop_at(9))
    summary = resume(cfg.run_dir).summary
    assert "state cannot be saved" in capsys.readouterr().err
    assert summary["total_steps"] == 400 and summary["resumed_at_updates"] == [9]
    assert [int(r["update"]) for r in read_csv(Path(cfg.run_dir) / "metrics.csv")] == [*range(7, 20, 7), 20]


def test_run_directory_rules(tmp_path):
    cfg = tiny(tmp_path, "dir", total_steps=200, eval_every=0, final_eval_episodes=0)
    with pytest.raises(RunDirError, match="no config.toml"):
        resume(tmp_path / "dir")
    train(cfg)
    with pytest.raises(RunDirError, match="--resume"):
        train(cfg)
    with pytest.raises(RunDirError, match="has finished"):
        resume(cfg.run_dir)
    (Path(cfg.run_dir) / "checkpoints" / "stale.txt").write_text("x")
    train(cfg, overwrite=True)
    assert not (Path(cfg.run_dir) / "checkpoints" / "stale.txt").exists()  # --overwrite cleared them
    (Path(cfg.run_dir) / "summary.json").unlink()
    for item in (Path(cfg.run_dir) / "checkpoints").iterdir():
        item.unlink()
    with pytest.raises(RunDirError, match="no checkpoint"):
        resume(cfg.run_dir)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "a2c", "train", *args]


def test_cli_refuses_to_change_the_config_of_a_resumed_run(tmp_path):
    proc = subprocess.run(
        _cli("--resume", str(tmp_path), "--lr", "0.1"), cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 2 and "drop --lr" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_signal_checkpoints_and_exits_with_a_resume_hint(tmp_path, signame):
    signum = getattr(signal, signame)
    run_dir = tmp_path / "sig"
    budget = 4000
    proc = subprocess.Popen(
        _cli(
            "--total-steps",
            str(budget),
            "--n-envs",
            "4",
            "--n-steps",
            "5",
            "--log-every",
            "1",
            "--checkpoint-every",
            "1000",
            "--eval-every",
            "0",
            "--final-eval-episodes",
            "0",
            "--run-dir",
            str(run_dir),
            "--no-progress",
        ),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not ((run_dir / "metrics.csv").is_file() and len(read_csv(run_dir / "metrics.csv")) >= 2):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr and proc.stderr.read()
            time.sleep(0.05)
        proc.send_signal(signum)  # the loop is running: handlers are installed
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signum, stderr
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines() == [stderr.strip()]
    assert f"stopped by {signame}" in stderr and f"a2c train --resume {run_dir}" in stderr
    stopped_at = RunCheckpoint.latest_update(run_dir)
    assert stopped_at is not None and stopped_at < budget // 20
    assert int(read_csv(run_dir / "metrics.csv")[-1]["update"]) == stopped_at  # logs flushed to the checkpoint
    if signum != signal.SIGINT:
        return
    done = subprocess.run(
        _cli("--resume", str(run_dir), "--no-progress"), cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["total_steps"] == budget and summary["resumed_at_updates"] == [stopped_at]
    assert [int(r["update"]) for r in read_csv(run_dir / "metrics.csv")] == list(range(1, budget // 20 + 1))
