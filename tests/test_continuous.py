"""Continuous actions end to end (issue 14): Box rollouts keep the unclipped action, the
observation normalisation lives in the model (trained, checkpointed, saved, exported),
exports serve the Gaussian's parameters and clip greedy actions, and every format
evaluates alike."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from a2c.agent.model import OBS_NORM_LAYER, action_bounds_of, build_actor_critic, model_for
from a2c.artifacts.loading import evaluate_path, load_model_any
from a2c.artifacts.saving import load_keras_model
from a2c.config.resolve import make_config
from a2c.envs.make import make_vec_env
from a2c.run.signals import TrainingInterrupted
from a2c.run.train import resume, train
from a2c.trainers.rollout import RolloutCollector


def tiny_pendulum(tmp_path: Path, name: str = "run", **overrides):
    return make_config(
        {
            "env_id": "Pendulum-v1",
            "total_steps": 1280,
            "n_envs": 4,
            "n_steps": 8,
            "normalize_obs": True,
            "normalize_reward": True,
            "log_std_init": -0.5,
            "eval_every": 640,
            "eval_episodes": 2,
            "final_eval_episodes": 2,
            "log_every": 10,
            "checkpoint_every": 10,
            "keep_checkpoints": 5,
            "progress": False,
            "run_dir": str(tmp_path / name),
            **overrides,
        }
    )


@pytest.fixture(scope="module")
def pendulum_run(tmp_path_factory):
    result = train(tiny_pendulum(tmp_path_factory.mktemp("pend")), quiet=True)
    return result


def test_rollout_keeps_unclipped_actions_and_the_env_gets_clipped_ones():
    env = make_vec_env("MountainCarContinuous-v0", 3)
    cfg = make_config({"env_id": "MountainCarContinuous-v0", "log_std_init": 1.5})  # std 4.5 on a [-1, 1] Box
    model = model_for(cfg, env.single_observation_space, env.single_action_space)
    sent = []
    step = env.step
    env.step = lambda actions: (sent.append(np.array(actions)), step(actions))[1]
    collector = RolloutCollector(env, model, n_steps=20, seed=0)
    batch, _ = collector.collect()
    collector.close()
    assert batch.actions.shape == (20, 3, 1) and batch.actions.dtype == np.float32
    assert np.abs(batch.actions).max() > 1.5  # the buffer holds what was drawn ...
    np.testing.assert_array_equal(np.stack(sent), np.clip(batch.actions, -1.0, 1.0))  # ... the env the clip


def test_training_updates_the_models_observation_statistics(pendulum_run):
    norm = pendulum_run.model.get_layer(OBS_NORM_LAYER)
    # Pendulum observes (cos, sin, angular velocity): the running mean sits inside the bounds
    # and the count is every observation of the run (1280) plus the prior 1e-4.
    assert float(norm.count.numpy()) == pytest.approx(1280, abs=1e-3)
    assert np.all(np.abs(norm.mean.numpy()[:2]) <= 1.0) and np.all(norm.var.numpy() > 0)
    assert not np.allclose(norm.var.numpy(), 1.0)
    saved = load_keras_model(pendulum_run.run_dir / "model.keras").get_layer(OBS_NORM_LAYER)
    np.testing.assert_array_equal(saved.mean.numpy(), norm.mean.numpy())


def test_observation_normalisation_matches_numpy():
    model = build_actor_critic(3, 1, (4,), policy="gaussian", obs_norm=True)
    norm = model.get_layer(OBS_NORM_LAYER)
    rng = np.random.default_rng(0)
    a, b = rng.normal(5.0, 3.0, (100, 3)), rng.normal(-1.0, 0.5, (37, 3))
    norm.update(a)
    norm.update(b)
    both = np.concatenate([a, b])
    np.testing.assert_allclose(norm.mean.numpy(), both.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(norm.var.numpy(), both.var(axis=0), rtol=1e-4)
    x = np.array([[5.0, 100.0, -1.0]], np.float32)
    expected = np.clip((x - both.mean(axis=0)) / np.sqrt(both.var(axis=0) + 1e-8), -10, 10)
    np.testing.assert_allclose(norm(tf.constant(x)).numpy(), expected, rtol=1e-4)


def test_saved_model_serves_gaussian_parameters_and_clips_the_greedy_action(pendulum_run):
    model = pendulum_run.model
    loaded = tf.saved_model.load(str(pendulum_run.run_dir / "saved_model"))
    obs = np.array([[1.0, 0.0, 8.0], [-1.0, 0.0, -8.0], [0.0, 1.0, 0.0]], np.float32)
    out = loaded.serve(tf.constant(obs))
    assert set(out) == {"mean", "log_std", "value"}
    ref = model(obs)
    for key in out:
        np.testing.assert_allclose(out[key].numpy(), ref[key].numpy(), rtol=1e-5, atol=1e-6)
    # Put the mean outside the Box: the greedy action is the mean clipped to [-2, 2].
    model.get_layer("policy_mean").bias.assign([5.0])
    from a2c.artifacts.export import export_saved_model

    shifted = export_saved_model(model, pendulum_run.run_dir.parent / "shifted")
    exported = tf.saved_model.load(str(shifted))  # keep it referenced: its variables live in it
    greedy = exported.greedy_action(tf.constant(obs)).numpy()
    model.get_layer("policy_mean").bias.assign(
        load_keras_model(pendulum_run.run_dir).get_layer("policy_mean").bias.numpy()
    )
    assert greedy.shape == (3, 1) and greedy.dtype == np.float32
    np.testing.assert_array_equal(greedy, np.full((3, 1), 2.0, np.float32))
    meta = json.loads((shifted / "a2c_export.json").read_text())
    assert meta["policy"] == "gaussian" and meta["action_low"] == [-2.0] and meta["action_high"] == [2.0]
    assert action_bounds_of(model)[1].tolist() == [2.0]


@pytest.mark.parametrize("sample", [False, True])
def test_every_format_evaluates_alike(pendulum_run, sample):
    run = pendulum_run.run_dir
    results = [
        evaluate_path(p, episodes=3, sample=sample)[0].returns for p in (run, run / "model.keras", run / "saved_model")
    ]
    np.testing.assert_allclose(results[0], results[1], rtol=1e-6)
    np.testing.assert_allclose(results[0], results[2], rtol=1e-4)
    if not sample:  # the run's own final evaluation used the same seeds
        summary = json.loads((run / "summary.json").read_text())
        assert summary["eval_mean_return"] == pytest.approx(np.mean(evaluate_path(run, episodes=2)[0].returns))
    assert load_model_any(run / "saved_model").n_actions == 1


@pytest.mark.slow  # ~11 s
def test_resumed_run_restores_the_observation_statistics(tmp_path, pendulum_run):
    cfg = tiny_pendulum(tmp_path, "int")

    def stop(update: int, step: int) -> None:
        if update == 23:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        train(cfg, callback=stop, quiet=True)
    result = resume(cfg.run_dir, quiet=True)
    for a, b in zip(pendulum_run.model.get_weights(), result.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # the statistics are weights: restored bit for bit


def test_identity_task_is_learned_with_a_gaussian_policy(tmp_path):
    """Reward -|a - obs| on a 1-D Box: the greedy policy must learn to copy the observation."""
    cfg = make_config(
        {
            "env_id": "A2CTest/ContinuousIdentity-v0",
            "total_steps": 12_000,
            "n_envs": 8,
            "n_steps": 5,
            "lr": 3e-3,
            "hidden_sizes": (32,),
            "log_std_init": -0.5,
            "normalize_advantage": True,
            "eval_every": 0,
            "final_eval_episodes": 20,
            "progress": False,
            "run_dir": str(tmp_path / "cid"),
        }
    )
    result = train(cfg, quiet=True)
    # A random policy with std 0.6 scores about -5; copying the observation scores 0.
    assert result.summary["eval_mean_return"] > -1.0, result.summary


def test_a_gaussian_model_is_refused_on_a_discrete_env_and_vice_versa(pendulum_run, shared_run_dir):
    from a2c.common.errors import ModelFileError

    with pytest.raises(ModelFileError, match="has a Gaussian policy and CartPole-v1 has action space Discrete"):
        evaluate_path(pendulum_run.run_dir, "CartPole-v1", episodes=1)
    with pytest.raises(ModelFileError, match="has a categorical policy and Pendulum-v1 has action space Box"):
        evaluate_path(shared_run_dir, "Pendulum-v1", episodes=1)
