"""Gradient verification of the MultiDiscrete and MultiBinary policy losses (issue 26): tape vs
SymPy vs finite differences on the default models of the identity tasks, and bugs injected into
the tape's distributions that the check must catch."""

from __future__ import annotations

import functools

import pytest
import tensorflow as tf

from a2c.agent.distributions import Bernoulli, MultiCategorical
from a2c.agent.losses import a2c_loss
from a2c.agent.model import build_actor_critic
from a2c.common.errors import ConfigError
from a2c.verify import verify_model
from a2c.verify.network import default_model, describe


class FirstSubActionOnly(MultiCategorical):
    """log pi of the first sub-action alone (the sum over sub-actions forgotten)."""

    def log_prob(self, logits, actions):
        return tf.gather(tf.nn.log_softmax(logits[:, 0]), actions[:, 0], axis=-1, batch_dims=1)


class SoftmaxOverEverything(MultiCategorical):
    """Entropy of one softmax over all sub-actions' logits (the padding included)."""

    def entropy(self, logits):
        flat = tf.reshape(logits, [tf.shape(logits)[0], -1])
        log_p = tf.nn.log_softmax(flat)
        return -tf.reduce_sum(tf.exp(log_p) * log_p, axis=-1)


class SwappedOutcomes(Bernoulli):
    """log p(a) with the outcomes swapped: a = 1 scored as log(1 - p)."""

    def log_prob(self, logits, actions):
        a = tf.cast(actions, logits.dtype)
        return -tf.reduce_sum(a * tf.nn.softplus(logits) + (1.0 - a) * tf.nn.softplus(-logits), axis=-1)


class EntropyOfOneOutcome(Bernoulli):
    """-sum p log p, the (1 - p) log(1 - p) half forgotten."""

    def entropy(self, logits):
        p = tf.sigmoid(logits)
        return tf.reduce_sum(p * tf.nn.softplus(-logits), axis=-1)


def with_distribution(dist):
    def loss(*args, distribution, **kwargs):
        return a2c_loss(*args, distribution=dist, **kwargs)

    return loss


@functools.cache
def identity_model(kind):
    return default_model(
        0, {"multi": "A2CTest/MultiDiscreteIdentity-v0", "binary": "A2CTest/MultiBinaryIdentity-v0"}[kind]
    )


def _failed(report):
    return {(r.term, r.param) for r in report.failures}


@pytest.mark.parametrize("kind", ["multi", "binary"])
def test_default_models_pass_three_ways_with_values(kind):
    model = identity_model(kind)
    spec = describe(model)
    assert spec.policy == {"multi": "multi_categorical", "binary": "bernoulli"}[kind]
    assert spec.nvec == ((3, 2, 4) if kind == "multi" else None)
    report = verify_model(model, batch=32, seed=0)
    assert report.passed, report.table()
    assert len(report.checks) == 4 and all(report.checks.values())  # the loss values agree too
    assert ("multi-categorical" if kind == "multi" else "Bernoulli") in report.title


@pytest.mark.parametrize("policy,nvec", [("multi_categorical", (2, 3)), ("bernoulli", None)])
def test_expanded_sympy_passes_on_tiny_models(policy, nvec):
    model = build_actor_critic(2, 5 if nvec else 2, (2,), "tanh", seed=3, policy=policy, nvec=nvec)
    report = verify_model(model, batch=6, seed=2, normalize_advantage=True, method="expanded")
    assert report.settings["symbolic_method"] == "expanded"
    assert report.passed, report.table()


def test_multi_discrete_bugs_are_caught():
    report = verify_model(identity_model("multi"), batch=16, tape_loss=with_distribution(FirstSubActionOnly()))
    assert ("policy_loss", "policy_logits/kernel") in _failed(report)
    report = verify_model(identity_model("multi"), batch=16, tape_loss=with_distribution(SoftmaxOverEverything()))
    assert not report.passed and ("entropy", "policy_logits/kernel") in _failed(report)


def test_multi_binary_bugs_are_caught():
    report = verify_model(identity_model("binary"), batch=16, tape_loss=with_distribution(SwappedOutcomes()))
    assert ("policy_loss", "policy_logits/kernel") in _failed(report)
    report = verify_model(identity_model("binary"), batch=16, tape_loss=with_distribution(EntropyOfOneOutcome()))
    assert not report.passed and ("entropy", "policy_logits/kernel") in _failed(report)


def test_soft_case_is_refused_for_sub_action_heads():
    with pytest.raises(ConfigError, match="MultiDiscrete head"):
        verify_model(identity_model("multi"), case="soft")
