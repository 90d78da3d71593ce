"""Generalised advantage estimation as a pure function of tensors.

Written with TF ops so that it runs eagerly, inside the learner's ``tf.function``
and inside an XLA-compiled loop alike. The backward recursion is unrolled when the
number of steps is known and small (A2C's n_steps is 5 to a few dozen) and a reverse
``tf.scan`` otherwise: both do the same float operations in the same order, but a
scan is a while loop with tensor arrays, which in the fused trainer's XLA-compiled
program compiles slower than the five unrolled steps (results/tuning.md).
"""

from __future__ import annotations

import tensorflow as tf

#: Longest static time axis that [`gae`][a2c.agent.returns.gae] unrolls; longer or unknown ones use tf.scan.
MAX_UNROLL = 32


def _as(x: object, dtype: tf.DType) -> tf.Tensor:
    """Cast without a float32 detour (``tf.cast(0.9, tf.float64)`` rounds 0.9 to float32 first)."""
    if isinstance(x, (tf.Tensor, tf.Variable)):
        return tf.cast(x, dtype)
    return tf.convert_to_tensor(x, dtype=dtype) if isinstance(x, (int, float)) else tf.cast(x, dtype)


def gae(
    rewards: tf.Tensor,
    values: tf.Tensor,
    next_values: tf.Tensor,
    terminated: tf.Tensor,
    done: tf.Tensor,
    gamma: float | tf.Tensor,
    gae_lambda: float | tf.Tensor,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Return ``(advantages, returns)`` for time-major (T, n_envs) tensors.

    ``next_values[t]`` is V of the observation that followed step t, i.e. the
    episode's final observation when step t ended it. Termination removes the
    bootstrap (there is no future); truncation by a time limit keeps it,
    ``r + gamma * V(final obs)``. Either ends the trace, so no advantage leaks
    across an episode boundary:

        delta_t = r_t + gamma * (1 - terminated_t) * V(s'_t) - V(s_t)
        A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1}

    ``gae_lambda = 1`` gives the n-step return minus V(s_t).
    """
    values = tf.convert_to_tensor(values)
    dtype = values.dtype
    rewards = _as(rewards, dtype)
    not_terminal = 1.0 - _as(terminated, dtype)
    not_done = 1.0 - _as(done, dtype)
    gamma = _as(gamma, dtype)
    decay = gamma * _as(gae_lambda, dtype) * not_done
    deltas = rewards + gamma * not_terminal * _as(next_values, dtype) - values

    steps = values.shape[0]
    if steps is not None and steps <= MAX_UNROLL:
        carry = tf.zeros_like(values[0])
        backward_order = []
        for t in reversed(range(steps)):
            carry = deltas[t] + decay[t] * carry
            backward_order.append(carry)
        advantages = tf.stack(backward_order[::-1])
    else:

        def backward(carry: tf.Tensor, elems: tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor:
            delta, k = elems
            return delta + k * carry

        advantages = tf.scan(backward, (deltas, decay), initializer=tf.zeros_like(values[0]), reverse=True)
    return advantages, advantages + values
