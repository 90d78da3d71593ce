"""Generalised advantage estimation as a pure function of tensors.

Written with TF ops (a reverse ``tf.scan``) so that it runs eagerly, inside the
learner's ``tf.function`` and inside an XLA-compiled loop alike.
"""

from __future__ import annotations

import tensorflow as tf


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

    def backward(carry: tf.Tensor, elems: tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor:
        delta, k = elems
        return delta + k * carry

    advantages = tf.scan(backward, (deltas, decay), initializer=tf.zeros_like(values[0]), reverse=True)
    return advantages, advantages + values
