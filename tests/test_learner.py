import keras
import numpy as np
import pytest
import tensorflow as tf

from a2c.agent.learner import compute_loss, make_optimizer, make_update
from a2c.agent.model import build_actor_critic
from a2c.agent.optim import RMSpropEpsOutside
from a2c.agent.policy import make_act
from a2c.config.resolve import make_config
from a2c.envs.make import make_vec_env
from a2c.trainers.rollout import RolloutCollector


def _setup(**overrides):
    cfg = make_config({"n_envs": 4, "n_steps": 5, "total_steps": 2000, **overrides})
    env = make_vec_env(cfg.env_id, cfg.n_envs)
    model = build_actor_critic(4, 2, cfg.hidden_sizes, seed=0)
    return cfg, model, RolloutCollector(env, model, cfg.n_steps, seed=0)


def test_update_traces_once_and_changes_weights():
    cfg, model, collector = _setup()
    update = make_update(model, make_optimizer(cfg), cfg)
    before = [w.numpy().copy() for w in model.trainable_variables]
    for _ in range(4):
        metrics = update(collector.collect()[0])
    assert update.fast and update.function.experimental_get_tracing_count() == 1
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_variables))
    assert set(metrics) >= {
        "policy_loss",
        "value_loss",
        "entropy",
        "total_loss",
        "explained_variance",
        "grad_norm",
        "learning_rate",
    }
    assert all(np.isfinite(float(v)) for v in metrics.values())


def test_global_norm_clipping():
    # With plain SGD(lr=1) the step is exactly the (clipped) gradient.
    cfg, model, collector = _setup(max_grad_norm=0.01)
    batch = collector.collect()[0]
    with tf.GradientTape() as tape:
        total, _ = compute_loss(model, tf.nest.map_structure(tf.constant, batch), cfg)
    raw = tape.gradient(total, model.trainable_variables)
    raw_norm = float(tf.linalg.global_norm(raw))
    assert raw_norm > 0.01
    before = [w.numpy().copy() for w in model.trainable_variables]
    metrics = make_update(model, keras.optimizers.SGD(1.0), cfg)(batch)
    assert float(metrics["grad_norm"]) == pytest.approx(raw_norm, rel=1e-5)
    steps = [b - w.numpy() for b, w in zip(before, model.trainable_variables)]
    assert np.sqrt(sum(np.sum(s**2) for s in steps)) == pytest.approx(0.01, rel=1e-4)
    # Global, not per tensor: the step keeps the gradient's direction.
    for s, g in zip(steps, raw):
        np.testing.assert_allclose(s, g.numpy() * 0.01 / raw_norm, atol=1e-7)


def test_optimizer_choices_and_a2c_defaults():
    opt = make_optimizer(make_config({}))
    assert isinstance(opt, RMSpropEpsOutside) and opt.rho == 0.99 and opt.epsilon == 1e-5
    assert isinstance(make_optimizer(make_config({"optimizer": "adam"})), keras.optimizers.Adam)
    keras_rms = make_optimizer(make_config({"optimizer": "rmsprop_keras"}))
    assert type(keras_rms) is keras.optimizers.RMSprop and keras_rms.rho == 0.99


def test_rmsprop_eps_outside_sqrt_first_step():
    # v = (1 - rho) g^2 ; w -= lr g / (sqrt(v) + eps)   (PyTorch's form)
    w = tf.Variable([1.0, 1.0], dtype=tf.float64)
    g = np.array([1e-3, -2e-4])
    RMSpropEpsOutside(0.1, rho=0.99, epsilon=1e-5).apply_gradients([(tf.constant(g), w)])
    expected = 1.0 - 0.1 * g / (np.sqrt(0.01 * g**2) + 1e-5)
    np.testing.assert_allclose(w.numpy(), expected, rtol=1e-6)  # Keras keeps lr in float32


def test_linear_schedule_decays_to_zero():
    cfg, model, collector = _setup(lr_schedule="linear", total_steps=200)  # 10 updates
    update = make_update(model, make_optimizer(cfg), cfg)
    rates = [float(update(collector.collect()[0])["learning_rate"]) for _ in range(cfg.n_updates)]
    assert rates[0] == pytest.approx(cfg.lr)
    assert rates[-1] == pytest.approx(cfg.lr / cfg.n_updates, rel=1e-4)
    assert all(a > b for a, b in zip(rates, rates[1:]))


def test_action_sampling_is_seeded_and_follows_the_policy():
    model = build_actor_critic(4, 2)
    obs = np.zeros((8, 4), np.float32)
    a1, _ = make_act(model, 8, seed=5)
    a2, _ = make_act(model, 8, seed=5)
    draws1 = np.array([a1(obs) for _ in range(50)])
    assert np.array_equal(draws1, np.array([a2(obs) for _ in range(50)]))
    assert 0.35 < draws1.mean() < 0.65  # near-uniform initial policy
    model.get_layer("policy_logits").bias.assign([-20.0, 20.0])
    assert np.all(a1(obs) == 1)


def test_rmsprop_tf_is_tensorflow_1s_rmsprop():
    """eps inside the square root and the average started at ones (the zoo's RMSpropTFLike)."""
    from a2c.agent.optim import RMSpropTFLike

    cfg = make_config({"optimizer": "rmsprop_tf", "lr": 1e-2})
    optimizer = make_optimizer(cfg)
    assert isinstance(optimizer, RMSpropTFLike)
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 2)).astype(np.float32)
    var = keras.Variable(w.copy())
    avg = np.ones_like(w, np.float64)
    ref = w.astype(np.float64)
    for _ in range(5):
        g = rng.normal(scale=1e-3, size=w.shape).astype(np.float32)
        optimizer.apply_gradients([(tf.constant(g), var)])
        avg = 0.99 * avg + 0.01 * np.float64(g) ** 2
        ref -= 1e-2 * g / np.sqrt(avg + 1e-5)
    np.testing.assert_allclose(var.numpy(), ref, rtol=1e-5, atol=1e-7)
