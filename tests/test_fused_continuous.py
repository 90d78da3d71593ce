"""Fused mode with Box actions (issue 14): the Pendulum and MountainCarContinuous ports
inside the compiled loop, the Gaussian's unclipped actions in the batch and clipped
ones in the port, the fused presets, and the population's refusal."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from a2c.agent.learner import make_optimizer
from a2c.agent.model import model_for
from a2c.artifacts.loading import evaluate_path
from a2c.common.errors import ConfigError, EnvError
from a2c.config.resolve import make_fused_config
from a2c.envs.make import env_spaces
from a2c.population.driver import population_env
from a2c.run.train import train
from a2c.trainers.fused import FusedLoop, ported_env


def test_the_loop_keeps_drawn_actions_and_the_port_gets_clipped_ones():
    # MountainCarContinuous charges 0.1 * action^2 on the action the port receives.
    cfg = make_fused_config(
        {"env_id": "MountainCarContinuous-v0", "n_envs": 16, "n_steps": 30, "log_std_init": 1.0, "fused_xla": False}
    )
    env = ported_env(cfg.env_id)
    obs_space, action_space = env_spaces(cfg.env_id)
    loop = FusedLoop(model_for(cfg, obs_space, action_space), make_optimizer(cfg), cfg, env)
    state = tf.nest.map_structure(lambda v: v.read_value(), loop.state)
    _, batch, _, _ = loop._rollout(state)
    actions, rewards = batch.actions.numpy(), batch.rewards.numpy()
    assert actions.shape == (30, 16, 1) and actions.dtype == np.float32
    assert np.abs(actions).max() > 1.5  # drawn with std e^1: far outside [-1, 1]
    goal = batch.terminated.numpy() > 0
    expected = -0.1 * np.clip(actions[..., 0], -1.0, 1.0) ** 2
    np.testing.assert_allclose(rewards[~goal], expected[~goal], rtol=1e-5, atol=1e-7)


def test_fused_presets_of_the_continuous_ports():
    # reward normalisation is a host step the loop does not have: the fused presets scale by a constant
    pendulum = make_fused_config({"env_id": "Pendulum-v1"})
    assert not pendulum.normalize_obs and not pendulum.normalize_reward and pendulum.obs_scaling == "bounds"
    # MountainCarContinuous keeps the running observation normalisation, updated in the loop's graph
    car = make_fused_config({"env_id": "MountainCarContinuous-v0"})
    assert car.normalize_obs and not car.normalize_reward and car.obs_scaling == "none"
    with pytest.raises(ConfigError, match="normalize_reward is for the standard trainer"):
        make_fused_config({"env_id": "Pendulum-v1", "normalize_reward": True})


def test_a_short_fused_pendulum_run_writes_a_model_that_evaluates(tmp_path):
    cfg = make_fused_config(
        {
            "env_id": "Pendulum-v1",
            "total_steps": 4096,
            "n_envs": 16,
            "fused_updates_per_call": 8,
            "eval_every": 0,
            "final_eval_episodes": 2,
            "progress": False,
            "run_dir": str(tmp_path / "run"),
        }
    )
    result = train(cfg, quiet=True)
    assert result.summary["total_steps"] == 4096 and result.summary["trainer"] == "fused"
    evaluation, info = evaluate_path(tmp_path / "run" / "saved_model", episodes=2)
    assert info["env_id"] == "Pendulum-v1"
    assert evaluation.mean == pytest.approx(result.summary["eval_mean_return"], rel=1e-4)


def test_population_refuses_box_actions_in_one_line():
    with pytest.raises(EnvError, match=r"^population training .* Pendulum-v1 has Box actions"):
        population_env("Pendulum-v1")
    assert not population_env("CartPole-v1").continuous


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_fused_pendulum_preset_reaches_minus_200(tmp_path, seed):
    cfg = make_fused_config(
        {"env_id": "Pendulum-v1", "seed": seed, "progress": False, "eval_every": 0, "run_dir": str(tmp_path / "run")}
    )
    assert train(cfg, quiet=True).summary["eval_mean_return"] >= -200


def test_cli_fused_pendulum_resolves_the_fused_preset_before_validating(tmp_path, capsys):
    """The standard Pendulum preset normalises (refused in fused mode); --fused's own preset
    layer turns that off, and the command line must apply it before checking the config."""
    from a2c.cli.main import main

    code = main(
        [
            "train",
            "--env",
            "Pendulum-v1",
            "--fused",
            "--total-steps",
            "512",
            "--n-envs",
            "8",
            "--eval-every",
            "0",
            "--final-eval-episodes",
            "1",
            "--no-progress",
            "--run-dir",
            str(tmp_path / "run"),
        ]
    )
    assert code == 0 and (tmp_path / "run" / "summary.json").is_file()
