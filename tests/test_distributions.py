"""The policy distributions against closed forms, and the seam's refusals."""

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from a2c.agent.distributions import (
    BERNOULLI,
    CATEGORICAL,
    DIAG_GAUSSIAN,
    MULTI_CATEGORICAL,
    distribution_for,
    distribution_of,
)
from a2c.common.errors import EnvError
from a2c.envs.spaces import env_action, env_actions

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
    assert distribution_for("Pendulum-v1", gym.spaces.Box(-2.0, 2.0, (1,))) is DIAG_GAUSSIAN
    with pytest.raises(EnvError, match=r"^X has an unbounded Box action space Box\(-inf, inf, \(2,\)"):
        distribution_for("X", gym.spaces.Box(-np.inf, np.inf, (2,)))
    with pytest.raises(EnvError, match=r"^X has an unbounded Box action space .*every bound must be finite$"):
        distribution_for("X", gym.spaces.Box(np.array([-1.0, -np.inf]), np.array([1.0, 1.0])))
    assert distribution_for("X", gym.spaces.MultiDiscrete([3, 4])) is MULTI_CATEGORICAL
    assert distribution_for("X", gym.spaces.MultiBinary(3)) is BERNOULLI
    with pytest.raises(EnvError, match=r"^X has action space Tuple\(Discrete\(3\)\); supported: Discrete, Multi"):
        distribution_for("X", gym.spaces.Tuple((gym.spaces.Discrete(3),)))
    with pytest.raises(EnvError, match=r"^X has action space MultiDiscrete\(\[\]\); supported MultiDiscrete"):
        distribution_for("X", gym.spaces.MultiDiscrete([]))
    with pytest.raises(EnvError, match=r"^X has action space MultiDiscrete\(\[\[2 2\]\]\); supported Multi"):
        distribution_for("X", gym.spaces.MultiDiscrete([[2, 2]]))
    with pytest.raises(EnvError, match=r"^X has action space MultiBinary\(\(2, 2\)\); supported MultiBinary"):
        distribution_for("X", gym.spaces.MultiBinary([2, 2]))
    with pytest.raises(EnvError, match=r"^X has action space Box.*one-dimensional and float$"):
        distribution_for("X", gym.spaces.Box(-1.0, 1.0, (2, 2)))
    assert distribution_of({"logits": 0, "probs": 0, "value": 0}) is CATEGORICAL
    assert distribution_of({"mean": 0, "log_std": 0, "value": 0}) is DIAG_GAUSSIAN
    with pytest.raises(ValueError, match="no policy distribution"):
        distribution_of({"mean": 0, "value": 0})


MEAN = np.array([[0.5, -1.0], [0.0, 2.0], [3.0, 0.1]])
LOG_STD = np.array([[-0.5, 0.3]] * 3)


def _normal_log_pdf(x, mu, log_std):
    return -0.5 * ((x - mu) / np.exp(log_std)) ** 2 - log_std - 0.5 * np.log(2 * np.pi)


def test_gaussian_log_prob_sums_over_dims_and_entropy_matches_closed_form():
    actions = np.array([[0.0, 0.0], [1.5, 2.5], [-3.0, 0.1]])
    params = (tf.constant(MEAN), tf.constant(LOG_STD))
    log_prob = DIAG_GAUSSIAN.log_prob(params, tf.constant(actions)).numpy()
    np.testing.assert_allclose(log_prob, _normal_log_pdf(actions, MEAN, LOG_STD).sum(axis=1), rtol=1e-12)
    # entropy of N(mu, s^2) is log(s * sqrt(2 pi e)) per dimension
    expected = np.log(np.exp(LOG_STD) * np.sqrt(2 * np.pi * np.e)).sum(axis=1)
    np.testing.assert_allclose(DIAG_GAUSSIAN.entropy(params).numpy(), expected, rtol=1e-12)
    np.testing.assert_array_equal(DIAG_GAUSSIAN.mode(params).numpy(), MEAN)  # unclipped


def test_gaussian_sample_has_the_mean_and_std_and_is_a_function_of_its_noise():
    n = 200_000
    params = (tf.constant(np.tile(MEAN[:1], (n, 1)), tf.float32), tf.constant(np.tile(LOG_STD[:1], (n, 1)), tf.float32))
    noise = tf.random.stateless_uniform([n, 2], seed=[3, 4])
    a = DIAG_GAUSSIAN.sample(params, noise).numpy()
    assert a.dtype == np.float32 and a.shape == (n, 2)
    np.testing.assert_allclose(a.mean(axis=0), MEAN[0], atol=0.01)
    np.testing.assert_allclose(a.std(axis=0), np.exp(LOG_STD[0]), rtol=0.01)
    np.testing.assert_array_equal(a, DIAG_GAUSSIAN.sample(params, noise).numpy())
    zero = DIAG_GAUSSIAN.sample((params[0][:1], params[1][:1]), tf.zeros([1, 2])).numpy()
    assert np.all(np.isfinite(zero))  # u = 0 is floored, not sent to -inf
    # Under XLA too: its float32 ndtri gives -inf for u below ~3e-8 (the trainer samples compiled).
    tiny = tf.constant([[1e-12, 3e-8]], tf.float32)
    xla = tf.function(lambda p0, p1, u: DIAG_GAUSSIAN.sample((p0, p1), u), jit_compile=True)
    drawn = xla(params[0][:1], params[1][:1], tiny).numpy()
    assert np.all(np.isfinite(drawn)) and drawn[0, 0] < MEAN[0, 0] - 6.5 * np.exp(LOG_STD[0, 0])


def test_box_actions_are_clipped_for_the_env_only():
    box = gym.spaces.Box(np.array([-1.0, 0.0], np.float32), np.array([1.0, 2.0], np.float32))
    actions = np.array([[-3.0, 1.0], [0.5, 7.0]], np.float32)
    np.testing.assert_array_equal(env_actions(actions, box), [[-1.0, 1.0], [0.5, 2.0]])
    assert actions[0, 0] == -3.0  # the caller's (the buffer's) copy is untouched
    np.testing.assert_array_equal(env_action(actions[1], box), [0.5, 2.0])
    assert env_action(np.int32(1), gym.spaces.Discrete(2)) == 1


def test_multi_categorical_sums_independent_categoricals_and_never_draws_the_padding():
    from a2c.agent.model import build_actor_critic

    model = build_actor_critic(3, 5, (8,), seed=1, policy="multi_categorical", nvec=(3, 2))
    logits = model(tf.random.normal([64, 3]))["multi_logits"]
    assert logits.shape == (64, 2, 3)
    actions = MULTI_CATEGORICAL.sample(logits, tf.random.uniform([64, 6], 1e-12, 1.0))
    assert actions.shape == (64, 2) and int(tf.reduce_max(actions[:, 1])) <= 1
    flat = model.get_layer("policy_logits")(model.get_layer("trunk_0")(tf.zeros([1, 3])))
    # the joint log-prob and entropy are the sums of the two categoricals'
    first, second = flat[:, :3], flat[:, 3:]
    a = tf.constant([[2, 1]])
    expected = CATEGORICAL.log_prob(first, a[:, 0]) + CATEGORICAL.log_prob(second, a[:, 1])
    padded = model(tf.zeros([1, 3]))["multi_logits"]
    np.testing.assert_allclose(MULTI_CATEGORICAL.log_prob(padded, a), expected, rtol=1e-6)
    np.testing.assert_allclose(
        MULTI_CATEGORICAL.entropy(padded), CATEGORICAL.entropy(first) + CATEGORICAL.entropy(second), rtol=1e-6
    )
    np.testing.assert_array_equal(
        MULTI_CATEGORICAL.mode(padded), [[int(tf.argmax(first[0])), int(tf.argmax(second[0]))]]
    )


def test_bernoulli_log_prob_entropy_sample_and_mode():
    logits = tf.constant([[0.0, 2.0, -1.0]], tf.float64)
    p = 1.0 / (1.0 + np.exp(-logits.numpy()))
    a = tf.constant([[1, 0, 0]])
    expected = np.log(p[0, 0]) + np.log(1 - p[0, 1]) + np.log(1 - p[0, 2])
    np.testing.assert_allclose(BERNOULLI.log_prob(logits, a), [expected])
    np.testing.assert_allclose(BERNOULLI.entropy(logits), [-np.sum(p * np.log(p) + (1 - p) * np.log(1 - p))])
    np.testing.assert_array_equal(BERNOULLI.mode(logits), [[0, 1, 0]])
    draws = BERNOULLI.sample(tf.repeat(logits, 20_000, axis=0), tf.random.uniform([20_000, 3], dtype=tf.float64))
    np.testing.assert_allclose(tf.reduce_mean(tf.cast(draws, tf.float64), axis=0), p[0], atol=0.02)


def test_multi_discrete_and_multi_binary_env_actions():
    md = gym.spaces.MultiDiscrete([3, 2], start=[1, -1])
    np.testing.assert_array_equal(env_actions(np.array([[2, 0]], np.int32), md), [[3, -1]])
    assert env_actions(np.array([[2, 0]], np.int32), md).dtype == md.dtype
    mb = gym.spaces.MultiBinary(3)
    action = env_action(np.array([1, 0, 1], np.int32), mb)
    assert mb.contains(action)
