"""Pendulum-v1 as pure batched TensorFlow functions (continuous actions).

Port of ``gymnasium.envs.classic_control.pendulum.PendulumEnv`` (default ``g=10``).
Gymnasium's state is float64 (numpy); the torque arrives as float32, is clipped to
+-2 and enters the float64 physics; only the observation is cast to float32.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar, NamedTuple

import tensorflow as tf

from a2c.envs.tf_envs.base import TFEnv

MAX_SPEED = 8.0
MAX_TORQUE = 2.0
DT = 0.05
G, M, L = 10.0, 1.0, 1.0
RESET_HIGH = (math.pi, 1.0)  # theta and its rate start uniform in [-high, high)


class PendulumState(NamedTuple):
    """Batched Pendulum state; every field has shape ``[n_envs]``."""

    theta: tf.Tensor
    theta_dot: tf.Tensor
    steps: tf.Tensor  # int32 steps taken in the current episode


def angle_normalize(x: tf.Tensor) -> tf.Tensor:
    """Gymnasium's ``((x + pi) % (2 pi)) - pi`` (Python's float modulo is a floor modulo)."""
    return tf.math.floormod(x + math.pi, 2.0 * math.pi) - math.pi


@dataclasses.dataclass(frozen=True)
class Pendulum(TFEnv):
    """Pendulum-v1: swing the pole up and hold it with a torque in [-2, 2].

    Reward ``-(angle^2 + 0.1 theta_dot^2 + 0.001 u^2)`` per step; never terminates,
    truncates at ``max_episode_steps``.
    """

    env_id: str = dataclasses.field(default="Pendulum-v1", init=False)
    obs_dim: int = dataclasses.field(default=3, init=False)
    n_actions: int = dataclasses.field(default=1, init=False)  # action dimensions
    max_episode_steps: int = 200
    dtype: tf.DType = tf.float32

    state_type: ClassVar[type] = PendulumState
    reset_noise_dim: ClassVar[int] = 2
    obs_low: ClassVar[tuple[float, ...]] = (-1.0, -1.0, -MAX_SPEED)
    obs_high: ClassVar[tuple[float, ...]] = (1.0, 1.0, MAX_SPEED)
    action_low: ClassVar[tuple[float, ...]] = (-MAX_TORQUE,)
    action_high: ClassVar[tuple[float, ...]] = (MAX_TORQUE,)

    def _sample_physics(self, key: tf.Tensor, n_envs: int | tf.Tensor) -> tuple[tf.Tensor, ...]:
        # One draw of two numbers per env, scaled as np_random.uniform(-high, high) does.
        u = self._uniform(key, [n_envs, 2], 0.0, 1.0)
        high = tf.constant(RESET_HIGH, self.dtype)
        state = -high + 2.0 * high * u
        return state[:, 0], state[:, 1]

    def _dynamics(
        self, state: PendulumState, action: tf.Tensor, key: tf.Tensor
    ) -> tuple[PendulumState, tf.Tensor, tf.Tensor]:
        del key  # deterministic dynamics
        # gymnasium: u = clip(u, -2, 2)[0] is a float32 scalar, and numpy 2 keeps its products
        # with Python floats in float32; they then meet the float64 state.
        u = tf.clip_by_value(tf.cast(action[:, 0], tf.float32), -MAX_TORQUE, MAX_TORQUE)
        u_cost = tf.cast(0.001 * (u * u), self.dtype)
        u_accel = tf.cast(3.0 / (M * L**2) * u, self.dtype)
        th, thdot = state.theta, state.theta_dot
        costs = angle_normalize(th) ** 2 + 0.1 * thdot**2 + u_cost
        new_thdot = thdot + (3.0 * G / (2.0 * L) * tf.sin(th) + u_accel) * DT
        new_thdot = tf.clip_by_value(new_thdot, -MAX_SPEED, MAX_SPEED)
        new_th = th + new_thdot * DT
        return PendulumState(new_th, new_thdot, state.steps), -costs, tf.zeros_like(th, tf.bool)

    def observe(self, state: PendulumState) -> tf.Tensor:
        return tf.stack([tf.cos(state.theta), tf.sin(state.theta), state.theta_dot], axis=1)
