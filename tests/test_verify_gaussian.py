"""Gradient verification of the Gaussian policy loss (issue 14): tape vs SymPy vs finite
differences on the default Pendulum-v1 model, and bugs injected into the tape's
distribution that the check must catch."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import tensorflow as tf
from test_verify import _parse  # noqa: E402

from a2c.agent.distributions import HALF_LOG_2PI, DiagGaussian
from a2c.agent.losses import a2c_loss
from a2c.agent.model import OBS_NORM_LAYER, build_actor_critic
from a2c.common.errors import ConfigError
from a2c.verify import verify_model
from a2c.verify.network import LOG_STD_PARAM, default_model


class LogStdSignFlipped(DiagGaussian):
    """Divides by exp(-log_std) instead of exp(log_std): the std's sign in the exponent."""

    def log_prob(self, params, actions):
        mean, log_std = params
        z = (actions - mean) * tf.exp(log_std)
        return tf.reduce_sum(-0.5 * tf.square(z) - log_std - HALF_LOG_2PI, axis=-1)


class EntropyWithoutConstant(DiagGaussian):
    """Entropy as sum(log_std + 0.5), the log(2 pi)/2 forgotten: same gradients, wrong value."""

    def entropy(self, params):
        return tf.reduce_sum(params[1] + 0.5, axis=-1)


class MeanOverDims(DiagGaussian):
    """log pi averaged over the action dimensions instead of summed (a joint density's log is a sum)."""

    def log_prob(self, params, actions):
        mean, log_std = params
        z = (actions - mean) * tf.exp(-log_std)
        return tf.reduce_mean(-0.5 * tf.square(z) - log_std - HALF_LOG_2PI, axis=-1)


def with_distribution(dist):
    """a2c_loss with ``dist`` in place of the model's Gaussian."""

    def loss(*args, distribution, **kwargs):
        return a2c_loss(*args, distribution=dist, **kwargs)

    return loss


@functools.lru_cache(maxsize=1)
def pendulum_model():
    return default_model(0, "Pendulum-v1")


def two_dim_model():
    """A Gaussian head with two action dimensions (as LunarLanderContinuous)."""
    return build_actor_critic(8, 2, (16, 16), "tanh", seed=1, policy="gaussian", log_std_init=-0.5)


def _failed_params(report):
    return {(r.term, r.param) for r in report.failures}


def test_default_pendulum_model_passes_three_ways_with_values():
    report = verify_model(pendulum_model(), batch=32, seed=0)
    assert report.passed, report.table()
    params = {r.param for r in report.rows}
    assert {"policy_mean/kernel", LOG_STD_PARAM, OBS_NORM_LAYER + "/mean"} & params == {
        "policy_mean/kernel",
        LOG_STD_PARAM,
    }
    assert len(report.checks) == 4 and all(report.checks.values())  # the loss values agree too
    # d entropy / d log_std = 1 per dimension, by every method
    for method in ("tape", "symbolic", "numeric"):
        np.testing.assert_allclose(report.gradients[method]["entropy"][LOG_STD_PARAM], [1.0], rtol=1e-6)
        assert not np.any(report.gradients[method]["entropy"]["policy_mean/kernel"])


def test_expanded_sympy_and_normalised_observations_pass():
    model = build_actor_critic(2, 2, (2,), "tanh", seed=3, policy="gaussian", obs_norm=True, log_std_init=-1.0)
    norm = model.get_layer(OBS_NORM_LAYER)
    norm.update(np.random.default_rng(0).normal([3.0, -1.0], [2.0, 0.5], size=(500, 2)))
    report = verify_model(model, batch=6, seed=2, normalize_advantage=True)
    assert report.settings["symbolic_method"] == "expanded"
    assert report.passed, report.table()
    assert "normalised" in report.title


def test_log_std_sign_bug_fails_on_the_policy_head():
    report = verify_model(pendulum_model(), batch=16, tape_loss=with_distribution(LogStdSignFlipped()))
    assert not report.passed
    assert ("policy_loss", LOG_STD_PARAM) in _failed_params(report)
    # Away from log_std = 0 the flipped scale also bends the mean's gradient.
    report = verify_model(two_dim_model(), batch=16, tape_loss=with_distribution(LogStdSignFlipped()))
    assert {("policy_loss", LOG_STD_PARAM), ("policy_loss", "policy_mean/kernel")} <= _failed_params(report)


def test_missing_log_2pi_constant_fails_on_the_entropy_value_only():
    report = verify_model(pendulum_model(), batch=16, tape_loss=with_distribution(EntropyWithoutConstant()))
    assert not report.passed
    assert not report.failures  # a constant has no gradient: every gradient still agrees ...
    failed = [name for name, ok in report.checks.items() if not ok]
    assert [name.split()[0] for name in failed] == ["entropy", "total_loss"]  # ... but the values do not


def test_mean_instead_of_sum_over_action_dims_fails_where_it_matters():
    # One action dimension (Pendulum): the mean over one dimension IS the sum; nothing to see.
    assert verify_model(pendulum_model(), batch=16, tape_loss=with_distribution(MeanOverDims())).passed
    # Two dimensions: half the log-probability, so the policy gradient is off.
    report = verify_model(two_dim_model(), batch=16, tape_loss=with_distribution(MeanOverDims()))
    assert not report.passed
    assert ("policy_loss", "policy_mean/kernel") in _failed_params(report)
    assert verify_model(two_dim_model(), batch=16).passed


def test_cli_pendulum_and_soft_refusal(capsys):
    from a2c.cli.commands import run_verify

    assert run_verify(_parse("--env", "Pendulum-v1", "--batch", "8")) == 0
    out = capsys.readouterr().out
    assert "mean, log_std, value" in out and "RESULT: PASS" in out
    with pytest.raises(ConfigError, match="Gaussian head"):
        run_verify(_parse("--env", "Pendulum-v1", "--case", "soft"))
