"""MountainCar-v0 as pure batched TensorFlow functions.

Port of ``gymnasium.envs.classic_control.mountain_car.MountainCarEnv`` (default
``goal_velocity=0``). Gymnasium's state is float64 (``math.cos`` on numpy float64
scalars); only the observation is cast to float32.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import tensorflow as tf

from a2c.envs.tf_envs.base import TFEnv

MIN_POSITION = -1.2
MAX_POSITION = 0.6
MAX_SPEED = 0.07
GOAL_POSITION = 0.5
GOAL_VELOCITY = 0.0
FORCE = 0.001
GRAVITY = 0.0025
RESET_LOW, RESET_HIGH = -0.6, -0.4  # initial position; velocity starts at 0


class MountainCarState(NamedTuple):
    """Batched MountainCar state; every field has shape ``[n_envs]``."""

    position: tf.Tensor
    velocity: tf.Tensor
    steps: tf.Tensor  # int32 steps taken in the current episode


class MountainCarTrack:
    """What MountainCar-v0 and MountainCarContinuous-v0 share: the track, its state,
    the reset (a position drawn in [-0.6, -0.4], at rest) and the observation."""

    state_type: ClassVar[type] = MountainCarState
    reset_noise_dim: ClassVar[int] = 1
    obs_low: ClassVar[tuple[float, ...]] = (MIN_POSITION, -MAX_SPEED)
    obs_high: ClassVar[tuple[float, ...]] = (MAX_POSITION, MAX_SPEED)

    if TYPE_CHECKING:  # from TFEnv, which every env built on this track also derives from

        def _uniform(self, key: tf.Tensor, shape: Any, low: float, high: float) -> tf.Tensor: ...

    def _sample_physics(self, key: tf.Tensor, n_envs: int | tf.Tensor) -> tuple[tf.Tensor, ...]:
        position = self._uniform(key, [n_envs], RESET_LOW, RESET_HIGH)
        return position, tf.zeros_like(position)

    def observe(self, state: MountainCarState) -> tf.Tensor:
        return tf.stack([state.position, state.velocity], axis=1)


@dataclasses.dataclass(frozen=True)
class MountainCar(MountainCarTrack, TFEnv):
    """MountainCar-v0: accelerate left/none/right (0/1/2) to reach the flag at x=0.5.

    Reward is -1 every step; terminates at ``position >= 0.5`` with non-negative
    velocity, truncates at ``max_episode_steps`` (which random play always hits).
    """

    env_id: str = dataclasses.field(default="MountainCar-v0", init=False)
    obs_dim: int = dataclasses.field(default=2, init=False)
    n_actions: int = dataclasses.field(default=3, init=False)
    max_episode_steps: int = 200
    dtype: tf.DType = tf.float32

    def _dynamics(
        self, state: MountainCarState, action: tf.Tensor, key: tf.Tensor
    ) -> tuple[MountainCarState, tf.Tensor, tf.Tensor]:
        del key  # deterministic dynamics
        push = tf.cast(action - 1, self.dtype) * FORCE
        velocity = state.velocity + (push + tf.cos(3.0 * state.position) * (-GRAVITY))
        velocity = tf.clip_by_value(velocity, -MAX_SPEED, MAX_SPEED)
        position = tf.clip_by_value(state.position + velocity, MIN_POSITION, MAX_POSITION)
        # Inelastic left wall: hitting it kills the (leftward) velocity.
        at_wall = (position == MIN_POSITION) & (velocity < 0)
        velocity = tf.where(at_wall, tf.zeros_like(velocity), velocity)

        terminated = (position >= GOAL_POSITION) & (velocity >= GOAL_VELOCITY)
        reward = -tf.ones_like(position)
        return MountainCarState(position, velocity, state.steps), reward, terminated
