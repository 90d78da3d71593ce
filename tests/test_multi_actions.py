"""MultiDiscrete and MultiBinary action spaces (issue 26): identity tasks learned by the standard
trainer, and the trained model served by every artifact (.keras, SavedModel, A2C.predict)."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import tensorflow as tf

from a2c.artifacts.export import read_export_metadata
from a2c.artifacts.loading import evaluate_path, load_model_any
from a2c.config.resolve import make_config
from a2c.run.train import train

TASKS = {"multi_discrete": "A2CTest/MultiDiscreteIdentity-v0", "multi_binary": "A2CTest/MultiBinaryIdentity-v0"}


def identity_config(run_dir, env_id, **overrides):
    return make_config(
        {
            "env_id": env_id,
            "total_steps": 16_000,
            "gamma": 0.5,  # a contextual bandit: later rewards do not depend on this action
            "normalize_advantage": True,
            "n_envs": 8,
            "n_steps": 5,
            "lr": 3e-3,
            "hidden_sizes": (32,),
            "eval_every": 0,
            "final_eval_episodes": 20,
            "progress": False,
            "run_dir": str(run_dir),
            **overrides,
        }
    )


@functools.cache
def _trained(kind, tmp_root):
    return train(identity_config(tmp_root / kind, TASKS[kind]), quiet=True)


@pytest.fixture(scope="module", params=sorted(TASKS))
def identity_run(request, tmp_path_factory):
    return request.param, _trained(request.param, tmp_path_factory.mktemp("identity"))


def test_identity_tasks_are_learned_to_90_percent_of_optimal(identity_run):
    kind, result = identity_run
    # optimal: 10 per episode (every sub-action right at each of 10 steps); random: 3.6 / 5
    assert result.summary["eval_mean_return"] >= 9.0, (kind, result.summary)


def test_the_saved_model_and_the_keras_file_evaluate_alike(identity_run):
    kind, result = identity_run
    run = result.run_dir
    meta = read_export_metadata(run / "saved_model")
    assert meta["policy"] == {"multi_discrete": "multi_categorical", "multi_binary": "bernoulli"}[kind]
    assert meta["n_actions"] == (3 if kind == "multi_discrete" else 4)
    keras_eval = evaluate_path(run / "model.keras", episodes=4)[0].returns
    saved_eval = evaluate_path(run / "saved_model", episodes=4)[0].returns
    np.testing.assert_allclose(keras_eval, saved_eval)
    sampled = evaluate_path(run / "saved_model", episodes=4, sample=True)[0].returns
    assert np.mean(sampled) >= 8.0
    loaded = tf.saved_model.load(str(run / "saved_model"))
    obs = np.array([[2.0, 1.0, 3.0]] if kind == "multi_discrete" else [[1.0, 0.0, 0.0, 1.0]], np.float32)
    action = loaded.greedy_action(tf.constant(obs)).numpy()
    np.testing.assert_array_equal(action, obs.astype(np.int32))
    assert load_model_any(run).n_actions == obs.shape[1]


def test_a2c_predict_returns_env_actions(identity_run):
    from a2c.api.agent import A2C

    kind, result = identity_run
    agent = A2C(TASKS[kind], hidden_sizes=(32,), quiet=True, run_dir=result.run_dir.parent / f"{kind}_api")
    agent.model.set_weights(result.model.get_weights())
    obs = np.array([2.0, 1.0, 3.0] if kind == "multi_discrete" else [1.0, 0.0, 0.0, 1.0], np.float32)
    action, _ = agent.predict(obs)
    assert agent.action_space.contains(action)
    np.testing.assert_array_equal(action, obs.astype(np.int64))
    batch, _ = agent.predict(np.stack([obs, obs]), deterministic=False)
    assert batch.shape == (2, obs.shape[0]) and all(agent.action_space.contains(a) for a in batch)
