"""Rollouts across gymnasium's next-step autoreset: truncation bootstraps, termination does not."""

import numpy as np
import pytest

from a2c.agent.learner import batch_returns
from a2c.agent.model import VALUE_LAYER, build_actor_critic
from a2c.config.resolve import make_config
from a2c.envs.make import make_vec_env
from a2c.trainers.rollout import RolloutCollector

C = 3.0  # the constant value the critic is pinned to
GAMMA = 0.9


def _constant_critic(obs_dim):
    model = build_actor_critic(obs_dim, 2, (8,))
    value = model.get_layer(VALUE_LAYER)
    value.kernel.assign(np.zeros_like(value.kernel.numpy()))
    value.bias.assign([C])
    return model


def _collect(env_id, n_steps=10, n_envs=2, reward_scale=1.0):
    env = make_vec_env(env_id, n_envs)
    obs_dim = env.single_observation_space.shape[0]
    model = _constant_critic(obs_dim)
    batch, stats = RolloutCollector(env, model, n_steps, seed=0).collect()
    cfg = make_config(
        {
            "env_id": "CartPole-v1",
            "n_envs": n_envs,
            "n_steps": n_steps,
            "gamma": GAMMA,
            "gae_lambda": 1.0,
            "reward_scale": reward_scale,
        }
    )
    return batch, stats, batch_returns(model, batch, cfg).numpy()


def test_truncation_bootstraps_across_the_autoreset():
    # Endless reward-1 episodes cut by a 4-step time limit.
    batch, stats, returns = _collect("A2CTest/ConstantReward-v0")
    np.testing.assert_array_equal(batch.truncated[:, 0], [0, 0, 0, 1, 0, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(batch.terminated, 0)
    # The step after a truncation is gymnasium's reset step: not a real transition.
    np.testing.assert_array_equal(batch.valid[:, 0], [1, 1, 1, 1, 0, 1, 1, 1, 1, 0])
    # Truncated step: r + gamma * V(final obs), and the trace restarts after it.
    assert returns[3, 0] == pytest.approx(1 + GAMMA * C)
    assert returns[0, 0] == pytest.approx(1 + GAMMA + GAMMA**2 + GAMMA**3 * (1 + GAMMA * C))
    # The final step of the batch bootstraps from V(next obs) too.
    assert returns[7, 0] == pytest.approx(1 + GAMMA * (1 + GAMMA * C))
    assert stats.returns == [4.0] * 4 and stats.lengths == [4] * 4


def test_termination_does_not_bootstrap():
    batch, stats, returns = _collect("A2CTest/TerminateAfter3-v0")
    np.testing.assert_array_equal(batch.terminated[:, 0], [0, 0, 1, 0, 0, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(batch.valid[:, 0], [1, 1, 1, 0, 1, 1, 1, 0, 1, 1])
    assert returns[2, 0] == pytest.approx(1.0)  # no future after a real end
    assert returns[0, 0] == pytest.approx(1 + GAMMA + GAMMA**2)
    assert returns[9, 0] == pytest.approx(1 + GAMMA * C)  # rollout cut mid-episode: bootstrap
    # obs[t + 1] after the terminating step is the episode's final observation (t = 3).
    assert batch.obs[3, 0, 0] == pytest.approx(3.0)
    assert batch.obs[4, 0, 0] == pytest.approx(0.0)  # then the reset step brings the new episode


def test_collector_carries_observations_between_batches():
    env = make_vec_env("CartPole-v1", 3)
    model = build_actor_critic(4, 2)
    collector = RolloutCollector(env, model, 4, seed=0)
    first, _ = collector.collect()
    second, _ = collector.collect()
    np.testing.assert_array_equal(first.obs[-1], second.obs[0])
    assert first.obs.shape == (5, 3, 4) and first.actions.shape == (4, 3)


def test_reward_scale_scales_the_targets_not_the_episode_returns():
    _, stats, returns = _collect("A2CTest/TerminateAfter3-v0", reward_scale=0.5)
    assert returns[2, 0] == pytest.approx(0.5)  # terminal step: scaled reward, no bootstrap
    assert returns[0, 0] == pytest.approx(0.5 * (1 + GAMMA + GAMMA**2))
    assert stats.returns[0] == 3.0  # logged episode returns stay in the env's units
