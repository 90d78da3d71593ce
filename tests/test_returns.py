import numpy as np
import pytest

from a2c.agent.returns import gae


def gae_reference(rewards, values, next_values, terminated, done, gamma, lam):
    """Slow, obviously-correct loop over time and envs."""
    T, N = rewards.shape
    adv = np.zeros((T, N))
    for n in range(N):
        running = 0.0
        for t in reversed(range(T)):
            delta = rewards[t, n] + gamma * (1 - terminated[t, n]) * next_values[t, n] - values[t, n]
            running = delta + gamma * lam * (1 - done[t, n]) * running
            adv[t, n] = running
    return adv, adv + values


@pytest.mark.parametrize("gamma,lam", [(0.99, 1.0), (0.9, 0.95), (0.5, 0.0), (1.0, 0.7)])
def test_gae_matches_reference(gamma, lam):
    rng = np.random.default_rng(1)
    T, N = 7, 5
    rewards = rng.normal(size=(T, N))
    values = rng.normal(size=(T, N))
    next_values = rng.normal(size=(T, N))
    terminated = (rng.random((T, N)) < 0.15).astype(float)
    truncated = (rng.random((T, N)) < 0.15).astype(float)
    done = np.maximum(terminated, truncated)
    adv, ret = gae(rewards, values, next_values, terminated, done, gamma, lam)
    ref_adv, ref_ret = gae_reference(rewards, values, next_values, terminated, done, gamma, lam)
    np.testing.assert_allclose(adv.numpy(), ref_adv, rtol=1e-12)
    np.testing.assert_allclose(ret.numpy(), ref_ret, rtol=1e-12)


def test_constant_value_reward_at_end_by_hand():
    # Value 0 everywhere, reward 1 only on the last (terminal) step: A_t = (gamma*lam)^(T-1-t).
    T = 4
    rewards = np.zeros((T, 1))
    rewards[-1] = 1.0
    zeros = np.zeros((T, 1))
    terminated = zeros.copy()
    terminated[-1] = 1.0
    for gamma, lam in [(0.9, 1.0), (0.9, 0.5), (1.0, 1.0)]:
        adv, _ = gae(rewards, zeros, zeros, terminated, terminated, gamma, lam)
        expected = np.array([(gamma * lam) ** (T - 1 - t) for t in range(T)])[:, None]
        np.testing.assert_allclose(adv.numpy(), expected, rtol=1e-12)


def test_lambda_one_is_n_step_return():
    # Three steps, no episode end, bootstrap from V(s_3) = 10: G_0 = 1 + g*2 + g^2*3 + g^3*10.
    g = 0.9
    rewards = np.array([[1.0], [2.0], [3.0]])
    values = np.array([[0.5], [0.25], [4.0]])
    next_values = np.array([[0.25], [4.0], [10.0]])
    zeros = np.zeros((3, 1))
    _, ret = gae(rewards, values, next_values, zeros, zeros, g, 1.0)
    assert ret.numpy()[0, 0] == pytest.approx(1 + g * 2 + g**2 * 3 + g**3 * 10)
    assert ret.numpy()[2, 0] == pytest.approx(3 + g * 10)


def test_truncation_bootstraps_and_termination_does_not():
    # One step each; next state's value is 5.
    rewards = np.array([[1.0, 1.0]])
    values = np.zeros((1, 2))
    next_values = np.full((1, 2), 5.0)
    terminated = np.array([[1.0, 0.0]])
    done = np.array([[1.0, 1.0]])  # env 0 terminated, env 1 truncated
    _, ret = gae(rewards, values, next_values, terminated, done, 0.9, 1.0)
    assert ret.numpy()[0, 0] == pytest.approx(1.0)  # no future after a real end
    assert ret.numpy()[0, 1] == pytest.approx(1.0 + 0.9 * 5.0)  # time limit: bootstrap


def test_trace_is_cut_at_episode_boundary():
    # A huge reward right after a done must not leak into the step before it.
    rewards = np.array([[1.0], [1000.0]])
    zeros = np.zeros((2, 1))
    done = np.array([[1.0], [0.0]])
    _, ret = gae(rewards, zeros, zeros, done, done, 0.99, 1.0)
    assert ret.numpy()[0, 0] == pytest.approx(1.0)


def test_gae_runs_in_float32_graph():
    import tensorflow as tf

    f = tf.function(lambda r, v, nv, te, d: gae(r, v, nv, te, d, 0.99, 0.95), jit_compile=True)
    x = tf.ones((5, 3), tf.float32)
    adv, ret = f(x, x, x, tf.zeros_like(x), tf.zeros_like(x))
    assert adv.dtype == tf.float32 and adv.shape == (5, 3)


@pytest.mark.parametrize("steps", [5, 40])  # unrolled, and tf.scan (longer than MAX_UNROLL)
def test_unrolled_and_scan_paths_agree_exactly(steps):
    import tensorflow as tf

    from a2c.agent import returns

    rng = np.random.default_rng(steps)
    args = [rng.normal(size=(steps, 3)).astype(np.float32) for _ in range(3)]
    terminated = (rng.random((steps, 3)) < 0.2).astype(np.float32)
    done = np.maximum(terminated, (rng.random((steps, 3)) < 0.2).astype(np.float32))
    static = gae(*args, terminated, done, 0.99, 0.95)
    # An unknown time axis always takes the scan path.
    dynamic = tf.function(lambda *a: gae(*a, 0.99, 0.95), input_signature=[tf.TensorSpec([None, 3], tf.float32)] * 5)(
        *args, terminated, done
    )
    assert (steps <= returns.MAX_UNROLL) == (steps == 5)
    for a, b in zip(static, dynamic):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    ref_adv, _ = gae_reference(*[x.astype(np.float64) for x in args], terminated, done, 0.99, 0.95)
    np.testing.assert_allclose(static[0].numpy(), ref_adv, rtol=1e-5, atol=1e-6)
