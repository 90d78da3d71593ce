"""CartPole-v1 as pure batched TensorFlow functions.

Port of ``gymnasium.envs.classic_control.cartpole.CartPoleEnv`` (default
``sutton_barto_reward=False``, explicit Euler). Gymnasium keeps the state in float64
and only casts the observation to float32; use ``dtype=tf.float64`` for bit-level
agreement. The arithmetic keeps gymnasium's operation order so float64 results match
to the last bit where TensorFlow's sin/cos do.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar, NamedTuple

import tensorflow as tf

from a2c.envs.tf_envs.base import TFEnv

GRAVITY = 9.8
MASS_CART = 1.0
MASS_POLE = 0.1
TOTAL_MASS = MASS_POLE + MASS_CART
HALF_LENGTH = 0.5  # gymnasium's ``length`` is half the pole's length
POLEMASS_LENGTH = MASS_POLE * HALF_LENGTH
FORCE_MAG = 10.0
TAU = 0.02  # seconds per step
THETA_THRESHOLD = 12 * 2 * math.pi / 360  # 12 degrees
X_THRESHOLD = 2.4
RESET_BOUND = 0.05  # every state variable starts in U[-0.05, 0.05)


class CartPoleState(NamedTuple):
    """Batched CartPole state; every field has shape ``[n_envs]``."""

    x: tf.Tensor
    x_dot: tf.Tensor
    theta: tf.Tensor
    theta_dot: tf.Tensor
    steps: tf.Tensor  # int32 steps taken in the current episode


@dataclasses.dataclass(frozen=True)
class CartPole(TFEnv):
    """CartPole-v1: push a cart left/right (actions 0/1) to keep a pole upright.

    Reward is +1 on every step including the terminating one; the episode terminates
    when ``|x| > 2.4`` or ``|theta| > 12°`` and truncates at ``max_episode_steps``.
    """

    env_id: str = dataclasses.field(default="CartPole-v1", init=False)
    obs_dim: int = dataclasses.field(default=4, init=False)
    n_actions: int = dataclasses.field(default=2, init=False)
    max_episode_steps: int = 500
    dtype: tf.DType = tf.float32

    state_type: ClassVar[type] = CartPoleState
    reset_noise_dim: ClassVar[int] = 4
    obs_high: ClassVar[tuple[float, ...]] = (
        X_THRESHOLD * 2,
        math.inf,
        THETA_THRESHOLD * 2,
        math.inf,
    )
    obs_low: ClassVar[tuple[float, ...]] = tuple(-h for h in obs_high)

    def _sample_physics(self, key: tf.Tensor, n_envs: int | tf.Tensor) -> tuple[tf.Tensor, ...]:
        u = self._uniform(key, [n_envs, 4], -RESET_BOUND, RESET_BOUND)
        return tuple(tf.unstack(u, num=4, axis=1))

    def _dynamics(
        self, state: CartPoleState, action: tf.Tensor, key: tf.Tensor
    ) -> tuple[CartPoleState, tf.Tensor, tf.Tensor]:
        del key  # deterministic dynamics
        force = tf.where(action == 1, tf.constant(FORCE_MAG, self.dtype), tf.constant(-FORCE_MAG, self.dtype))
        cos = tf.cos(state.theta)
        sin = tf.sin(state.theta)
        # Barto, Sutton & Anderson dynamics (see Florian 2005 for the derivation).
        temp = (force + POLEMASS_LENGTH * tf.square(state.theta_dot) * sin) / TOTAL_MASS
        theta_acc = (GRAVITY * sin - cos * temp) / (HALF_LENGTH * (4.0 / 3.0 - MASS_POLE * tf.square(cos) / TOTAL_MASS))
        x_acc = temp - POLEMASS_LENGTH * theta_acc * cos / TOTAL_MASS
        # Explicit Euler: positions advance with the *old* velocities.
        x = state.x + TAU * state.x_dot
        x_dot = state.x_dot + TAU * x_acc
        theta = state.theta + TAU * state.theta_dot
        theta_dot = state.theta_dot + TAU * theta_acc

        terminated = (x < -X_THRESHOLD) | (x > X_THRESHOLD) | (theta < -THETA_THRESHOLD) | (theta > THETA_THRESHOLD)
        reward = tf.ones_like(x)
        return CartPoleState(x, x_dot, theta, theta_dot, state.steps), reward, terminated

    def observe(self, state: CartPoleState) -> tf.Tensor:
        return tf.stack([state.x, state.x_dot, state.theta, state.theta_dot], axis=1)
