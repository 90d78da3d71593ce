"""The policy distributions against closed forms, and the seam's refusals."""

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from a2c.distributions import CATEGORICAL, distribution_for, distribution_of
from a2c.errors import EnvError

LOGITS = np.array([[2.0, -1.0, 0.5], [0.0, 0.0, 0.0], [30.0, -30.0, 0.0]])


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_categorical_log_prob_and_entropy_match_closed_forms():
    p = _softmax(LOGITS)
    actions = np.array([0, 2, 1])
    log_prob = CATEGORICAL.log_prob(tf.constant(LOGITS), tf.constant(actions)).numpy()
    np.testing.assert_allclose(log_prob, np.log(p[np.arange(3), actions]), rtol=1e-12)
    assert log_prob[2] == pytest.approx(-60.0 - np.log1p(np.exp(-30.0) + np.exp(-60.0)), rel=1e-12)  # no -inf
    entropy = CATEGORICAL.entropy(tf.constant(LOGITS)).numpy()
    np.testing.assert_allclose(entropy, -(p * np.log(p)).sum(axis=-1), rtol=1e-10)
    assert entropy[1] == pytest.approx(np.log(3))


def test_categorical_mode_is_the_argmax():
    np.testing.assert_array_equal(CATEGORICAL.mode(tf.constant(LOGITS)).numpy(), [0, 0, 0])


def test_categorical_sample_follows_softmax_and_is_a_function_of_its_noise():
    logits = tf.constant(np.tile(LOGITS[:1], (200_000, 1)), tf.float32)
    noise = tf.random.stateless_uniform(logits.shape, seed=[1, 2])
    actions = CATEGORICAL.sample(logits, noise).numpy()
    assert actions.dtype == np.int32
    freq = np.bincount(actions, minlength=3) / len(actions)
    np.testing.assert_allclose(freq, _softmax(LOGITS[:1])[0], atol=0.005)
    np.testing.assert_array_equal(actions, CATEGORICAL.sample(logits, noise).numpy())
    # Noise of exactly 0 is floored, not turned into -inf Gumbel noise everywhere.
    zero = CATEGORICAL.sample(tf.constant(LOGITS[:2], tf.float32), tf.zeros([2, 3]))
    assert zero.numpy().tolist() == [0, 0]


def test_distribution_for_refuses_action_spaces_without_a_distribution():
    assert distribution_for("X", gym.spaces.Discrete(4)) is CATEGORICAL
    with pytest.raises(EnvError, match=r"Pendulum-v1 has action space Box"):
        distribution_for("Pendulum-v1", gym.spaces.Box(-2.0, 2.0, (1,)))
    assert distribution_of({"logits": 0, "probs": 0, "value": 0}) is CATEGORICAL
    with pytest.raises(ValueError, match="no policy distribution"):
        distribution_of({"mean": 0, "value": 0})
