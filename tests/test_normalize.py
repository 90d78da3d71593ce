"""Running reward normalisation (a2c.agent.normalize) and its place in the standard trainer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from a2c.agent.batch import Rollout
from a2c.agent.normalize import ReturnNormalizer, RunningMeanStd
from a2c.common.errors import ConfigError
from a2c.config.resolve import make_config
from a2c.run.signals import TrainingInterrupted
from a2c.run.train import resume, train


def batch(rewards, terminated=None, truncated=None, valid=None) -> Rollout:
    rewards = np.asarray(rewards, np.float32)
    t, n = rewards.shape
    zeros = np.zeros((t, n), np.float32)
    return Rollout(
        obs=np.zeros((t + 1, n, 1), np.float32),
        actions=np.zeros((t, n), np.int32),
        rewards=rewards,
        terminated=zeros if terminated is None else np.asarray(terminated, np.float32),
        truncated=zeros if truncated is None else np.asarray(truncated, np.float32),
        valid=np.ones((t, n), np.float32) if valid is None else np.asarray(valid, np.float32),
    )


def test_running_mean_std_of_batches_equals_that_of_the_whole_stream():
    rng = np.random.default_rng(0)
    parts = [rng.normal(3.0, 2.0, size=k) for k in (1, 7, 50, 3)]
    rms = RunningMeanStd()
    for p in parts:
        rms.update(p)
    whole = np.concatenate(parts)
    assert rms.mean == pytest.approx(whole.mean(), rel=1e-5)
    assert rms.var == pytest.approx(whole.var(), rel=1e-4)  # the 1e-4 prior count is all that differs


def test_rewards_are_divided_by_the_std_of_the_discounted_return_seen_so_far():
    gamma = 0.5
    norm = ReturnNormalizer(num_envs=1, gamma=gamma)
    out = norm(batch([[1.0], [1.0], [1.0]]))
    # Running returns 1, 1.5, 1.75; each reward is scaled by the std of those seen so far.
    expected = []
    seen: list[float] = []
    for g in (1.0, 1.5, 1.75):
        seen.append(g)
        ref = RunningMeanStd()
        for x in seen:
            ref.update(np.array([x]))
        expected.append(1.0 / np.sqrt(ref.var + 1e-8))
    np.testing.assert_allclose(out.rewards[:, 0], np.minimum(expected, 10.0), rtol=1e-6)
    assert out.rewards.dtype == np.float32


def test_episode_ends_reset_the_running_return_and_autoreset_steps_are_skipped():
    norm = ReturnNormalizer(num_envs=2, gamma=1.0)
    # env 0: episode ends at t=0 (terminated), t=1 is the autoreset step (invalid, reward 0), then a new one.
    # env 1: one long episode.
    out = norm(
        batch([[2.0, 2.0], [0.0, 2.0], [2.0, 2.0]], terminated=[[1, 0], [0, 0], [0, 0]], valid=[[1, 1], [0, 1], [1, 1]])
    )
    np.testing.assert_array_equal(norm.returns, [2.0, 6.0])  # env 0 restarted from 0; env 1 summed on
    assert out.rewards[1, 0] == 0.0  # the autoreset step's reward stays zero
    assert norm.stats.count == pytest.approx(5 + 1e-4)  # 5 real transitions updated the statistics
    # Truncation ends an episode as termination does.
    norm(batch([[1.0, 1.0]], truncated=[[0, 1]]))
    np.testing.assert_array_equal(norm.returns, [3.0, 0.0])


def test_large_rewards_are_clipped_and_state_round_trips_exactly():
    norm = ReturnNormalizer(num_envs=2, gamma=0.0, clip=10.0)  # gamma 0: the returns are the rewards
    norm(batch([[1.0, -1.0]] * 5000))  # unit variance
    out = norm(batch([[1000.0, -1.0]]))  # ~100 std away even with itself in the statistics
    assert out.rewards[0, 0] == 10.0 and out.rewards[0, 1] == pytest.approx(-0.1, rel=0.01)
    copy = ReturnNormalizer(num_envs=2, gamma=0.0)
    copy.load_state(json.loads(json.dumps(norm.state())))
    more = batch([[0.5, 2.0], [3.0, 1.0]])
    np.testing.assert_array_equal(norm(more).rewards, copy(more).rewards)


def test_fused_mode_refuses_reward_normalisation():
    with pytest.raises(ConfigError, match="normalize_reward is for the standard trainer"):
        make_config({"fused": True, "normalize_reward": True})


def test_observation_statistics_fold_the_same_in_graph_code_as_on_the_host():
    import tensorflow as tf

    from a2c.agent.model import ObsNormalization

    host, graph = ObsNormalization(), ObsNormalization()
    for layer in (host, graph):
        layer.build((None, 3))
    fold = tf.function(graph.update_in_graph, jit_compile=True)  # as the fused loop runs it
    rng = np.random.default_rng(0)
    for k in range(3):
        obs = (rng.normal(size=(5, 4, 3)) * (k + 1) + k).astype(np.float32)
        host.update(obs)
        fold(tf.constant(obs))
    for a, b in ((host.mean, graph.mean), (host.var, graph.var), (host.count, graph.count)):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-6)
    assert host.count.numpy() == pytest.approx(60 + 1e-4)


def test_a_fused_run_updates_its_observation_statistics_from_every_rollout_step(tmp_path):
    import tensorflow as tf

    from a2c.agent.model import obs_norms_of
    from a2c.config.resolve import make_fused_config
    from a2c.trainers.fused import FusedTrainer

    cfg = make_fused_config(
        {"env_id": "MountainCarContinuous-v0", "normalize_obs": True, "obs_scaling": "none", "n_envs": 4}
    )
    trainer = FusedTrainer(cfg)
    norm = obs_norms_of(trainer.model)[None]
    trainer.compile()  # run(0) folds nothing
    assert norm.count.numpy() == pytest.approx(1e-4)
    trainer.advance(3)
    assert norm.count.numpy() == pytest.approx(3 * cfg.n_steps * cfg.n_envs + 1e-4)
    mean, std = norm.mean.numpy(), np.sqrt(norm.var.numpy())
    assert -0.6 < mean[0] < -0.2 and abs(mean[1]) < 0.02 and 0 < std[1] < 0.02  # position, velocity
    # the statistics are model weights: checkpoints and exports carry them
    assert any(v is norm.mean for v in trainer.model.weights) and isinstance(norm.mean.value, tf.Variable)


def test_population_training_refuses_observation_normalisation(tmp_path):
    from a2c.config.resolve import make_fused_config
    from a2c.population.driver import train_population

    cfg = make_fused_config({"normalize_obs": True, "run_dir": str(tmp_path / "pop")})
    with pytest.raises(ConfigError, match="normalize_obs is not supported by population training"):
        train_population(cfg, [0, 1], {}, quiet=True)
    assert not (tmp_path / "pop").exists()


def small(tmp_path: Path, name: str):
    return make_config(
        {
            "total_steps": 1200,
            "n_envs": 4,
            "n_steps": 5,
            "eval_every": 0,
            "final_eval_episodes": 0,
            "log_every": 10,
            "checkpoint_every": 20,
            "normalize_reward": True,
            "reward_scale": 1.0,
            "progress": False,
            "run_dir": str(tmp_path / name),
        }
    )


def test_normalised_training_changes_the_update_and_resumes_exactly(tmp_path):
    ref = train(small(tmp_path, "ref"), quiet=True)
    plain = train(make_config({**small(tmp_path, "plain").to_dict(), "normalize_reward": False}), quiet=True)
    assert any(not np.array_equal(a, b) for a, b in zip(ref.model.get_weights(), plain.model.get_weights()))

    def stop(update: int, step: int) -> None:
        if update == 30:  # after the checkpoint at 20: the statistics must come back from it
            raise KeyboardInterrupt

    cfg = small(tmp_path, "int")
    with pytest.raises(TrainingInterrupted):
        train(cfg, quiet=True, callback=stop)
    resumed = resume(cfg.run_dir, quiet=True)
    for a, b in zip(ref.model.get_weights(), resumed.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
