"""The JAX baseline of benchmarks/bench_jax.py trains what fused mode trains: its CartPole
steps as gymnasium's, its loss and gradients are our learner's at the same weights, its
optimizer is our RMSprop, and one jitted update runs. Skipped without the ``jax`` extra."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

jax = pytest.importorskip("jax")
pytest.importorskip("optax")

import jax.numpy as jnp  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH_DIR))
import bench_jax as bj  # noqa: E402


@pytest.fixture(autouse=True)
def jax_flags(monkeypatch):
    """JAX's XLA gets the flags the benchmark gives its JAX workers, not the YNNPACK fusions that
    a2c.common.tf_setup adds for TensorFlow's (jaxlib's XLA refuses some of them); XLA reads its flags
    when JAX first compiles, in one of these tests."""
    monkeypatch.setenv("XLA_FLAGS", bj.jax_env(0)["XLA_FLAGS"])


#: XLA without its expensive optimisations: these tests check results, not speed, and compile in half the time.
QUICK_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def test_cartpole_matches_gymnasium_step_for_step():
    from gymnasium.envs.classic_control.cartpole import CartPoleEnv

    env = CartPoleEnv()
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    dynamics = jax.jit(bj.cartpole_dynamics)
    terminations = 0
    for _ in range(300):
        state = np.asarray(env.state, np.float64)
        action = int(rng.integers(2))
        ours, terminated = dynamics(bj.CartPoleState(*state.astype(np.float32), jnp.int32(0)), action)
        obs, _, gym_terminated, _, _ = env.step(action)
        np.testing.assert_allclose(np.asarray(bj.cartpole_observe(ours)), obs, rtol=1e-5, atol=1e-6)
        assert bool(terminated) == gym_terminated
        if gym_terminated:
            terminations += 1
            env.reset(seed=int(rng.integers(1000)))
    assert terminations >= 5  # the termination test was exercised, not only the physics


def test_step_truncates_at_500_and_resets_in_the_same_step():
    step = jax.jit(bj.cartpole_step)
    key = jax.random.PRNGKey(0)
    s = bj.CartPoleState(*[jnp.float32(0.01)] * 4, jnp.int32(bj.MAX_EPISODE_STEPS - 1))
    out = step(s, 1, key)
    assert bool(out.truncated) and not bool(out.terminated)
    assert int(out.state.steps) == 0 and np.all(np.abs(np.asarray(out.obs)) <= bj.RESET_BOUND)
    stepped, _ = bj.cartpole_dynamics(s, 1)
    np.testing.assert_allclose(np.asarray(out.final_obs), np.asarray(bj.cartpole_observe(stepped)), rtol=1e-6)
    leaning = bj.CartPoleState(jnp.float32(0.0), jnp.float32(0.0), jnp.float32(0.3), jnp.float32(1.0), jnp.int32(7))
    out = step(leaning, 0, key)
    assert bool(out.terminated) and not bool(out.truncated) and int(out.state.steps) == 0


def test_optimizer_is_clip_then_rmsprop_eps_outside_with_linear_decay():
    hp = {"lr": 4e-3, "lr_schedule": "linear", "n_updates": 10, "max_grad_norm": 0.5, "rms_rho": 0.99}
    hp["optimizer_eps"] = 1e-5
    tx = bj.make_optimizer(hp)
    w = {"a": jnp.zeros(3)}
    state = tx.init(w)
    v = np.zeros(3)
    for k, g in enumerate([np.array([3.0, -4.0, 1e-4]), np.array([0.1, 0.2, -0.05])]):
        updates, state = tx.update({"a": jnp.asarray(g, jnp.float32)}, state, w)
        clipped = g * min(1.0, 0.5 / np.linalg.norm(g))
        v = 0.99 * v + 0.01 * clipped**2
        lr = 4e-3 * (1 - k / 10)  # Keras' PolynomialDecay to 0 at the update count before this one
        np.testing.assert_allclose(np.asarray(updates["a"]), -lr * clipped / (np.sqrt(v) + 1e-5), rtol=1e-5)


def test_loss_and_gradients_equal_our_learners_at_the_same_weights():
    import tensorflow as tf

    from a2c.agent.batch import Rollout
    from a2c.agent.learner import compute_loss
    from a2c.agent.model import model_for
    from a2c.config.resolve import make_fused_config
    from a2c.envs.make import env_spaces

    cfg = make_fused_config({"env_id": "CartPole-v1", "n_envs": 4, "total_steps": 1000, "gae_lambda": 0.9})
    hp = bj.preset_hparams(4, 1000) | {"gae_lambda": 0.9}
    model = model_for(cfg, *env_spaces("CartPole-v1"))
    layers = {v.path: np.asarray(v.numpy()) for v in model.trainable_variables}
    trunk = sorted({p.split("/")[0] for p in layers if p.startswith("trunk_")})
    params = {
        "trunk": [{"w": layers[f"{t}/kernel"], "b": layers[f"{t}/bias"]} for t in trunk],
        "pi": {"w": layers["policy_logits/kernel"], "b": layers["policy_logits/bias"]},
        "v": {"w": layers["value/kernel"], "b": layers["value/bias"]},
    }
    rng = np.random.default_rng(1)
    t, n = cfg.n_steps, cfg.n_envs
    obs = rng.normal(0, 0.5, (t + 1, n, 4)).astype(np.float32)
    terminated = (rng.random((t, n)) < 0.2).astype(np.float32)
    # As a rollout has them: each env truncates at most once (n_steps <= the time limit), and
    # final_obs[t] is obs[t + 1] where step t ended no episode.
    truncated = np.zeros((t, n), np.float32)
    truncated[rng.integers(0, t, n), np.arange(n)] = rng.random(n) < 0.75
    final_obs = obs[1:].copy()
    ended = np.nonzero(np.maximum(terminated, truncated))
    final_obs[ended] = rng.normal(0, 0.5, (len(ended[0]), 4)).astype(np.float32)
    truncation_obs = np.zeros((n, 4), np.float32)
    truncation_obs[np.nonzero(truncated)[1]] = final_obs[np.nonzero(truncated)]
    actions = rng.integers(0, 2, (t, n)).astype(np.int32)
    rewards = np.ones((t, n), np.float32)
    batch = Rollout(obs, actions, rewards, terminated, truncated, np.ones((t, n), np.float32))
    with tf.GradientTape() as tape:
        total, _ = compute_loss(model, batch, cfg, truncation_obs=tf.constant(truncation_obs))
    tf_grads = {
        v.path: g.numpy()
        for v, g in zip(model.trainable_variables, tape.gradient(total, model.trainable_variables), strict=True)
    }
    jbatch = {"obs": obs[:-1], "last_obs": obs[-1], "truncation_obs": truncation_obs}
    jbatch |= {"actions": actions, "rewards": rewards}
    jbatch |= {"terminated": terminated, "truncated": truncated}
    (jtotal, _), jgrads = jax.value_and_grad(bj.a2c_loss, has_aux=True)(params, jbatch, hp)
    assert math.isclose(float(jtotal), float(total), rel_tol=1e-5, abs_tol=1e-6)
    for i, name in enumerate(trunk):
        np.testing.assert_allclose(jgrads["trunk"][i]["w"], tf_grads[f"{name}/kernel"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(jgrads["pi"]["w"], tf_grads["policy_logits/kernel"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(jgrads["v"]["b"], tf_grads["value/bias"], rtol=1e-4, atol=1e-6)


def test_one_jitted_update_runs_and_learns_something():
    hp = bj.preset_hparams(8, 8 * 5 * 10)
    _, (init, update) = bj.make_train(hp)
    key = jax.random.PRNGKey(0)
    carry = jax.jit(init).lower(key).compile(QUICK_COMPILE)(key)
    new, stats = jax.jit(update).lower(carry).compile(QUICK_COMPILE)(carry)
    assert np.isfinite(float(stats["loss"]))
    moved = jax.tree_util.tree_map(lambda a, b: float(jnp.abs(a - b).max()), carry[0], new[0])
    assert all(d > 0 for d in jax.tree_util.tree_leaves(moved))
    assert new[2].steps.shape == (8,) and int(new[2].steps.max()) == 5  # five steps of every env, none ended yet
