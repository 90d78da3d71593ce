import numpy as np
import pytest
import tensorflow as tf

from a2c.agent.distributions import CATEGORICAL
from a2c.agent.losses import a2c_loss, explained_variance, soft_policy_loss
from a2c.agent.model import VALUE_LAYER, build_actor_critic


def _batch(n=16, obs_dim=4, n_actions=3, seed=0):
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, obs_dim))
    actions = rng.integers(n_actions, size=n).astype(np.int32)
    returns = rng.normal(size=n) * 3
    return obs, actions, returns


def _grads(model, obs, actions, returns, term, **kw):
    kw = {"vf_coef": 0.5, "ent_coef": 0.01, **kw}
    with tf.GradientTape() as tape:
        out = model(obs)
        _, parts = a2c_loss(out["logits"], out["value"], actions, returns, **kw)
    return dict(zip([v.path for v in model.trainable_variables], tape.gradient(parts[term], model.trainable_variables)))


def test_policy_term_leaves_value_head_untouched():
    model = build_actor_critic(4, 3, dtype="float64")
    obs, actions, returns = _batch()
    grads = _grads(model, obs, actions, returns, "policy_loss")
    value_grads = [g for path, g in grads.items() if path.startswith(VALUE_LAYER + "/")]
    assert len(value_grads) == 2
    for g in value_grads:  # None or exactly zero: the advantage's gradient is stopped
        assert g is None or np.all(g.numpy() == 0.0)
    trunk = [g for path, g in grads.items() if path.startswith("trunk_0/")]
    assert any(np.abs(g.numpy()).max() > 0 for g in trunk)


def test_value_term_does_not_touch_policy_head():
    model = build_actor_critic(4, 3, dtype="float64")
    obs, actions, returns = _batch()
    grads = _grads(model, obs, actions, returns, "value_loss")
    for path, g in grads.items():
        if path.startswith("policy_logits/"):
            assert g is None or np.all(g.numpy() == 0.0)


def test_entropy_sign_and_value():
    uniform = tf.zeros((1, 4), tf.float64)
    assert CATEGORICAL.entropy(uniform).numpy()[0] == pytest.approx(np.log(4))
    peaked = tf.constant([[50.0, 0.0, 0.0, 0.0]], tf.float64)
    assert CATEGORICAL.entropy(peaked).numpy()[0] < 1e-15
    # The bonus lowers the loss: a higher-entropy policy has a lower total at equal other terms.
    actions = tf.constant([0])
    returns = tf.constant([0.0], tf.float64)
    values = tf.constant([0.0], tf.float64)
    total_u, _ = a2c_loss(uniform, values, actions, returns, vf_coef=0.0, ent_coef=1.0)
    total_p, _ = a2c_loss(peaked, values, actions, returns, vf_coef=0.0, ent_coef=1.0)
    assert total_u.numpy() < total_p.numpy()
    # Gradient descent on the entropy term moves logits toward uniform.
    logits = tf.Variable([[1.0, 0.0]], dtype=tf.float64)
    with tf.GradientTape() as tape:
        total, _ = a2c_loss(logits, values, actions, returns, vf_coef=0.0, ent_coef=1.0)
    g = tape.gradient(total, logits).numpy()
    assert g[0, 0] > 0 > g[0, 1]


def test_log_probs_from_logits_stay_finite():
    logits = tf.constant([[1000.0, -1000.0]], tf.float32)
    total, parts = a2c_loss(
        logits, tf.constant([0.0]), tf.constant([1]), tf.constant([1.0]), vf_coef=0.5, ent_coef=0.01
    )
    assert np.isfinite(total.numpy()) and parts["policy_loss"].numpy() == pytest.approx(2000.0)


def test_mask_drops_transitions():
    obs, actions, returns = _batch(n=6)
    logits = tf.constant(np.random.default_rng(0).normal(size=(6, 3)))
    values = tf.constant(np.zeros(6))
    mask = np.array([1, 1, 1, 0, 0, 0], np.float64)
    masked, _ = a2c_loss(logits, values, actions, returns, vf_coef=0.5, ent_coef=0.1, mask=mask)
    first, _ = a2c_loss(logits[:3], values[:3], actions[:3], returns[:3], vf_coef=0.5, ent_coef=0.1)
    assert masked.numpy() == pytest.approx(first.numpy())


def test_advantage_normalisation_is_standardised():
    logits = tf.zeros((4, 2), tf.float64)
    values = tf.zeros(4, tf.float64)
    returns = tf.constant([1.0, 2.0, 3.0, 4.0], tf.float64)
    actions = tf.constant([0, 0, 0, 0])
    _, parts = a2c_loss(logits, values, actions, returns, vf_coef=0.0, ent_coef=0.0, normalize_advantage=True)
    # Normalised advantages have mean 0, so with uniform log-probs the policy loss is 0.
    assert parts["policy_loss"].numpy() == pytest.approx(0.0, abs=1e-12)


def test_soft_policy_loss_matches_formula():
    logits = tf.constant([[0.3, -0.2]], tf.float64)
    q = tf.constant([[1.0, 2.0]], tf.float64)
    p = tf.nn.softmax(logits).numpy()[0]
    expected = -(p[0] * (1.0 - np.log(p[0])) + p[1] * (2.0 - np.log(p[1])))
    assert soft_policy_loss(logits, q, alpha=1.0).numpy() == pytest.approx(expected)


def test_explained_variance():
    r = tf.constant([1.0, 2.0, 3.0])
    assert explained_variance(r, r).numpy() == pytest.approx(1.0)
    assert explained_variance(tf.zeros(3), r).numpy() == pytest.approx(0.0, abs=1e-6)
