"""The seams of the run driver: a collector that is not the local one, observations that
are neither flat nor float, and the fused trainer under the same driver (obs_scaling,
checkpoints, exact resume)."""

from __future__ import annotations

import csv
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from a2c.agent.batch import EpisodeStats, Rollout
from a2c.config.resolve import make_config
from a2c.envs.make import make_vec_env
from a2c.envs.spaces import feature_space, observation_scale
from a2c.envs.state import decode, encode
from a2c.run.signals import TrainingInterrupted
from a2c.run.train import resume, train
from a2c.trainers.rollout import RolloutCollector

TIME_COLUMNS = {"time/steps_per_second", "time/elapsed_seconds"}


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k not in TIME_COLUMNS} for row in csv.DictReader(f)]


class ScriptedCollector:
    """A Collector that steps no env: observations, actions and rewards come from its own
    generator (CartPole's spaces), and it keeps every weight list the learner sends."""

    shares_model = False

    def __init__(self, n_envs: int, n_steps: int, seed: int) -> None:
        env = gym.make("CartPole-v1")
        self.observation_space, self.action_space = env.observation_space, env.action_space
        env.close()
        self.num_envs, self.n_steps = n_envs, n_steps
        self.rng = np.random.default_rng(seed)
        self.collected = 0
        self.received: list[list[np.ndarray]] = []
        self.loaded: dict | None = None
        self.closed = False

    def collect(self) -> tuple[Rollout, EpisodeStats]:
        self.collected += 1
        t, n = self.n_steps, self.num_envs
        batch = Rollout(
            obs=self.rng.normal(size=(t + 1, n, 4)).astype(np.float32),
            actions=self.rng.integers(0, 2, (t, n)).astype(np.int32),
            rewards=self.rng.normal(size=(t, n)).astype(np.float32),
            terminated=np.zeros((t, n), np.float32),
            truncated=np.zeros((t, n), np.float32),
            valid=np.ones((t, n), np.float32),
        )
        return batch, EpisodeStats([float(self.collected)], [5])

    def set_weights(self, weights: list[np.ndarray]) -> None:
        self.received.append([np.array(w) for w in weights])

    def state(self) -> dict:
        return {"collected": self.collected, "rng": encode(self.rng)}

    def load_state(self, state: dict) -> list[str]:
        self.loaded = state
        self.collected, self.rng = state["collected"], decode(state["rng"])
        return []

    def close(self) -> None:
        self.closed = True


def _scripted_cfg(run_dir: Path, **overrides):
    return make_config(
        {
            "env_id": "CartPole-v1",
            "n_envs": 4,
            "n_steps": 5,
            "total_steps": 120,
            "seed": 3,
            "eval_every": 0,
            "final_eval_episodes": 0,
            "log_every": 2,
            "checkpoint_every": 2,
            "progress": False,
            "run_dir": str(run_dir),
            **overrides,
        }
    )


def test_a_collector_that_does_not_share_the_model_drives_the_standard_trainer(tmp_path):
    collector = ScriptedCollector(4, 5, seed=1)
    result = train(_scripted_cfg(tmp_path / "run"), quiet=True, collector=collector)
    assert collector.collected == 6 and collector.closed
    # The weights go out before the first rollout and after every update.
    assert len(collector.received) == 7
    for sent, final in zip(collector.received[-1], result.model.get_weights(), strict=True):
        np.testing.assert_array_equal(sent, final)
    assert any(not np.array_equal(a, b) for a, b in zip(collector.received[0], collector.received[1]))
    # Its episodes are what the driver counts and averages.
    assert result.summary["episodes"] == 6 and result.summary["train_return_mean_last100"] == pytest.approx(3.5)
    assert result.summary["trainer"] == "standard"


def test_a_collectors_state_is_checkpointed_and_restored_exactly(tmp_path):
    whole = train(_scripted_cfg(tmp_path / "whole"), quiet=True, collector=ScriptedCollector(4, 5, seed=1))
    stop = lambda update, step: (_ for _ in ()).throw(KeyboardInterrupt) if update == 3 else None  # noqa: E731
    with pytest.raises(TrainingInterrupted):
        train(_scripted_cfg(tmp_path / "parts"), quiet=True, collector=ScriptedCollector(4, 5, seed=1), callback=stop)
    again = ScriptedCollector(4, 5, seed=99)  # a fresh collector: its state must come from the checkpoint
    parts = resume(tmp_path / "parts", quiet=True, collector=again)
    assert again.loaded is not None and again.loaded["collected"] == 3 and again.collected == 6
    for a, b in zip(whole.model.get_weights(), parts.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert read_csv(tmp_path / "whole" / "metrics.csv") == read_csv(tmp_path / "parts" / "metrics.csv")


def test_the_collector_must_gather_the_configured_batch(tmp_path):
    with pytest.raises(ValueError, match="gathers 5 steps x 2 envs"):
        train(_scripted_cfg(tmp_path / "run"), quiet=True, collector=ScriptedCollector(2, 5, seed=1))
    assert not (tmp_path / "run").exists()


def test_uint8_frames_stay_uint8_until_the_model(tmp_path):
    """Observations of shape (4, 4) uint8: buffers, model input and export keep them."""
    from a2c.agent.model import OBS_FLATTEN_LAYER, OBS_SCALE_LAYER, model_for
    from a2c.artifacts.export import read_export_metadata
    from a2c.artifacts.loading import evaluate_path

    cfg = make_config(
        {
            "env_id": "A2CTest/Frames-v0",
            "n_envs": 4,
            "n_steps": 5,
            "total_steps": 400,
            "eval_every": 200,
            "eval_episodes": 2,
            "final_eval_episodes": 2,
            "log_every": 5,
            "progress": False,
            "run_dir": str(tmp_path / "run"),
        }
    )
    env = make_vec_env(cfg.env_id, cfg.n_envs)
    model = model_for(cfg, env.single_observation_space, 2)
    batch, _ = RolloutCollector(env, model, cfg.n_steps, seed=0).collect()
    env.close()
    assert batch.obs.dtype == np.uint8 and batch.obs.shape == (6, 4, 4, 4)
    assert str(model.inputs[0].dtype) == "uint8"
    assert {OBS_FLATTEN_LAYER, OBS_SCALE_LAYER} <= {layer.name for layer in model.layers}

    result = train(cfg, quiet=True)
    assert result.summary["eval_episodes"] == 2
    meta = read_export_metadata(result.run_dir / "saved_model")
    assert meta["obs_shape"] == [4, 4] and meta["obs_dtype"] == "uint8"
    for path in (result.run_dir, result.run_dir / "saved_model"):
        evaluated, info = evaluate_path(path, episodes=2)
        assert info["env_id"] == "A2CTest/Frames-v0" and len(evaluated.returns) == 2
    sampled, _ = evaluate_path(result.run_dir, episodes=2, sample=True)
    assert len(sampled.returns) == 2


def _fused_cfg(run_dir: Path, **overrides):
    from a2c.config.resolve import make_fused_config

    return make_fused_config(
        {
            "env_id": "CartPole-v1",
            "n_envs": 8,
            "n_steps": 5,
            "total_steps": 1600,
            "fused_updates_per_call": 5,
            "fused_xla": False,
            "eval_every": 800,
            "eval_episodes": 2,
            "final_eval_episodes": 2,
            "log_every": 10,
            "checkpoint_every": 10,
            "progress": False,
            "run_dir": str(run_dir),
            **overrides,
        }
    )


def test_fused_honours_obs_scaling(tmp_path):
    from a2c.agent.model import obs_scale_of
    from a2c.run.train import train_fused

    cfg = _fused_cfg(
        tmp_path / "run",
        env_id="Acrobot-v1",
        obs_scaling="bounds",
        total_steps=400,
        eval_every=0,
        final_eval_episodes=0,
    )
    result = train_fused(cfg, quiet=True)
    expected = observation_scale(feature_space(gym.make("Acrobot-v1").observation_space))
    np.testing.assert_allclose(obs_scale_of(result.model), np.float32(expected), rtol=1e-7)
    assert obs_scale_of(result.model)[4] < 0.1  # the angular velocities are scaled down


def test_fused_run_stopped_and_resumed_matches_the_uninterrupted_run(tmp_path):
    from a2c.run.train import train_fused

    whole = train_fused(_fused_cfg(tmp_path / "whole"), quiet=True)
    stop = lambda update, step: (_ for _ in ()).throw(KeyboardInterrupt) if update == 20 else None  # noqa: E731
    with pytest.raises(TrainingInterrupted, match="checkpoint at update 20"):
        train_fused(_fused_cfg(tmp_path / "parts"), quiet=True, callback=stop)
    parts = resume(tmp_path / "parts", quiet=True)
    assert parts.summary["trainer"] == "fused" and parts.summary["resumed_at_updates"] == [20]
    for a, b in zip(whole.model.get_weights(), parts.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    for name in ("metrics.csv", "evaluations.csv"):
        assert read_csv(tmp_path / "whole" / name) == read_csv(tmp_path / "parts" / name), name
