"""Recurrent A2C: config refusals, the cell between trunk and heads, rollouts carrying and
resetting cell states, exact resume, greedy evaluation, predict, and the SavedModel's
serve(obs, state) loop with TensorFlow alone."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from a2c.agent.model import build_actor_critic, state_size_of, step, unroll
from a2c.artifacts.loading import evaluate_path
from a2c.common.errors import ConfigError
from a2c.config.resolve import make_config
from a2c.envs.make import make_vec_env
from a2c.run.signals import TrainingInterrupted
from a2c.run.train import resume, train
from a2c.trainers.rollout import RolloutCollector


def tiny(tmp_path, name, **overrides):
    return make_config(
        {
            "env_id": "CartPoleNoVel-v1",
            "total_steps": 1280,
            "n_envs": 4,
            "n_steps": 8,
            "recurrent": "gru",
            "recurrent_size": 8,
            "hidden_sizes": (8,),
            "eval_every": 640,
            "eval_episodes": 2,
            "final_eval_episodes": 3,
            "log_every": 5,
            "checkpoint_every": 7,
            "progress": False,
            "run_dir": str(tmp_path / name),
            **overrides,
        }
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"fused": True}, "fused mode"),
        ({"net_arch": "separate"}, "net_arch shared"),
        ({"recurrent_size": 0}, "recurrent_size must be positive"),
        ({"eval_policy": "sampled"}, "evaluates greedily only"),
        ({"recurrent": "rnn"}, "recurrent must be one of none, lstm, gru"),
    ],
)
def test_unsupported_combinations_are_refused_in_one_line(overrides, message):
    with pytest.raises(ConfigError, match=message) as e:
        make_config({"recurrent": "lstm", **overrides})
    assert "\n" not in str(e.value)


def test_novel_envs_observe_positions_only():
    from a2c.envs.make import make_env

    full = gym.make("CartPole-v1")
    novel, _ = make_env("CartPoleNoVel-v1")
    np.testing.assert_array_equal(novel.reset(seed=3)[0], full.reset(seed=3)[0][[0, 2]])
    o_full, *_ = full.step(1)
    o_novel, *_ = novel.step(1)
    np.testing.assert_array_equal(o_novel, o_full[[0, 2]])
    pendulum, _ = make_env("PendulumNoVel-v1")
    assert pendulum.observation_space.shape == (2,) and pendulum.spec.max_episode_steps == 200


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_step_and_unroll_share_weights_and_reset_at_starts(kind):
    model = build_actor_critic(3, 2, (4,), recurrent=kind, recurrent_size=5)
    size = state_size_of(model)
    assert size == (10 if kind == "lstm" else 5)
    rng = np.random.default_rng(0)
    obs = tf.constant(rng.normal(size=(4, 2, 3)), tf.float32)
    state = tf.constant(rng.normal(size=(2, size)), tf.float32)
    starts = tf.constant([[0, 1], [0, 0], [1, 0], [0, 0]], tf.float32)
    seq = unroll(model, obs, state, starts)
    s = state
    for t in range(4):  # the same, one step at a time
        out = step(model, obs[t], s, starts[t])
        np.testing.assert_allclose(seq["probs"][t], out["probs"], rtol=1e-6)
        s = out["state"]
    # env 0 starts an episode at t=2: from there on its outputs do not depend on the initial state
    other = unroll(model, obs, state + 1.0, starts)
    np.testing.assert_allclose(other["value"][2:, 0], seq["value"][2:, 0], rtol=1e-6)
    assert not np.allclose(other["value"][:2, 0], seq["value"][:2, 0])
    np.testing.assert_allclose(other["value"][:, 1], seq["value"][:, 1], rtol=1e-6)  # env 1 starts at t=0


def test_collector_resets_the_state_after_each_reset_step(tmp_path):
    cfg = tiny(tmp_path, "c")
    env = make_vec_env(cfg.env_id, cfg.n_envs)
    from a2c.agent.model import model_for

    model = model_for(cfg, env.single_observation_space, env.single_action_space)
    collector = RolloutCollector(env, model, cfg.n_steps, cfg.seed)
    try:
        starts_seen = 0
        for _ in range(12):
            batch, _ = collector.collect()
            memory = collector.memory
            assert memory is not None and memory.starts.shape == (cfg.n_steps + 1, cfg.n_envs)
            # a start follows exactly each reset step (valid 0), and nothing else
            np.testing.assert_array_equal(memory.starts[1:], 1.0 - batch.valid)
            starts_seen += int(memory.starts[1:].sum())
        assert starts_seen > 0
    finally:
        collector.close()


@pytest.mark.slow
def test_recurrent_run_resumes_exactly_with_its_cell_states(tmp_path):
    ref = train(tiny(tmp_path, "ref"))
    cfg = tiny(tmp_path, "int")

    def stop(update, step):
        if update == 11:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        train(cfg, callback=stop)
    result = resume(cfg.run_dir)
    for a, b in zip(ref.model.get_weights(), result.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert ref.summary["eval_mean_return"] == result.summary["eval_mean_return"]


@pytest.mark.slow
def test_tf_only_serve_loop_reproduces_a2c_evaluate(tmp_path):
    result = train(tiny(tmp_path, "run", recurrent="lstm"))
    saved = result.run_dir / "saved_model"
    from_keras, _ = evaluate_path(result.run_dir, episodes=4)
    from_export, _ = evaluate_path(saved, episodes=4)
    assert from_keras.returns == from_export.returns
    script = textwrap.dedent(
        f"""
        import sys, json
        import numpy as np, tensorflow as tf, gymnasium as gym
        assert not any(m == "a2c" or m.startswith("a2c.") for m in sys.modules)
        m = tf.saved_model.load({str(saved)!r})
        from gymnasium.envs.classic_control import CartPoleEnv
        returns = []
        for k in range(4):
            env = gym.wrappers.TimeLimit(CartPoleEnv(), 500)
            obs, _ = env.reset(seed=1_000_000 + k)
            state, total, done = m.initial_state(1), 0.0, False
            while not done:
                out, state = m.serve(tf.constant(obs[None, [0, 2]], tf.float32), state)
                obs, r, term, trunc, _ = env.step(int(np.argmax(out["probs"].numpy()[0])))
                total += r
                done = term or trunc
            returns.append(total)
        assert not any(m == "a2c" or m.startswith("a2c.") for m in sys.modules)
        print(json.dumps(returns))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert [float(x) for x in __import__("json").loads(out.stdout.strip().splitlines()[-1])] == from_keras.returns


def test_predict_carries_and_resets_the_state(tmp_path):
    from a2c import A2C

    agent = A2C("CartPoleNoVel-v1", recurrent="gru", recurrent_size=8, hidden_sizes=(8,), n_envs=2, n_steps=4)
    obs = np.array([[0.01, 0.02], [0.0, -0.03]], np.float32)
    a1, s1 = agent.predict(obs, None, np.array([True, True]))
    assert a1.shape == (2,) and s1.shape == (2, 8)
    _, s2 = agent.predict(obs, s1, np.array([False, False]))
    assert not np.allclose(s2, s1)
    # an episode start resets that row: the same as starting from None
    _, s_reset = agent.predict(obs, s2, np.array([True, False]))
    np.testing.assert_allclose(s_reset[0], s1[0], rtol=1e-6)
    single, state = agent.predict(obs[0], None, True)
    assert np.ndim(single) == 0 and state.shape == (8,)
