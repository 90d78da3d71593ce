"""MountainCarContinuous-v0 as pure batched TensorFlow functions (continuous actions).

Port of ``gymnasium.envs.classic_control.continuous_mountain_car.Continuous_MountainCarEnv``
(default ``goal_velocity=0``). Gymnasium stores its state as float32 and
(numpy 2) steps it in float32 arithmetic, except the first step after a reset, whose
state is still float64; the port does the same. The reward charges ``0.1 * action^2`` on
the action as given (unclipped), as gymnasium does; the force is the clipped action.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import tensorflow as tf

from a2c.envs.tf_envs.base import TFEnv
from a2c.envs.tf_envs.mountain_car import (
    GOAL_VELOCITY,
    MAX_POSITION,
    MAX_SPEED,
    MIN_POSITION,
    MountainCarState,
    MountainCarTrack,
)

MIN_ACTION, MAX_ACTION = -1.0, 1.0
GOAL_POSITION = 0.45
POWER = 0.0015


@dataclasses.dataclass(frozen=True)
class ContinuousMountainCar(MountainCarTrack, TFEnv):
    """MountainCarContinuous-v0: push with a force in [-1, 1] to reach the flag at x=0.45.

    Reward +100 on reaching it, minus ``0.1 * action^2`` every step; terminates at the
    flag with non-negative velocity, truncates at ``max_episode_steps``.
    """

    env_id: str = dataclasses.field(default="MountainCarContinuous-v0", init=False)
    obs_dim: int = dataclasses.field(default=2, init=False)
    n_actions: int = dataclasses.field(default=1, init=False)  # action dimensions
    max_episode_steps: int = 999
    dtype: tf.DType = tf.float32

    action_low: ClassVar[tuple[float, ...]] = (MIN_ACTION,)
    action_high: ClassVar[tuple[float, ...]] = (MAX_ACTION,)

    def _dynamics(
        self, state: MountainCarState, action: tf.Tensor, key: tf.Tensor
    ) -> tuple[MountainCarState, tf.Tensor, tf.Tensor]:
        del key  # deterministic dynamics
        f32 = tf.float32
        # gymnasium's state is a float32 array, and numpy 2 keeps float32 scalar arithmetic in
        # float32 (Python floats are weak): the update below is float32 arithmetic, with
        # math.cos in double precision rounded back to float32.
        # Right after a reset the state is still float64 (np.array([uniform, 0])): the first
        # step's cosine and position update run in float64.
        fresh = state.steps == 0
        pos64 = tf.cast(state.position, tf.float64)
        position, velocity = tf.cast(state.position, f32), tf.cast(state.velocity, f32)
        a = tf.cast(action[:, 0], f32)
        force = tf.clip_by_value(a, MIN_ACTION, MAX_ACTION)
        angle = tf.where(fresh, 3.0 * pos64, tf.cast(3.0 * position, tf.float64))
        gravity64 = 0.0025 * tf.cos(angle)
        # min(max(action, -1.0), 1.0) returns the Python float bound when it clips: the push
        # minus gravity is then double arithmetic, rounded once; otherwise float32 throughout.
        clipped = (a < MIN_ACTION) | (a > MAX_ACTION)
        delta = tf.where(
            clipped,
            tf.cast(tf.cast(force, tf.float64) * POWER - gravity64, f32),
            force * POWER - tf.cast(gravity64, f32),
        )
        velocity = velocity + delta
        velocity = tf.clip_by_value(velocity, -MAX_SPEED, MAX_SPEED)
        first = tf.cast(tf.clip_by_value(pos64 + tf.cast(velocity, tf.float64), MIN_POSITION, MAX_POSITION), f32)
        position = tf.where(fresh, first, tf.clip_by_value(position + velocity, MIN_POSITION, MAX_POSITION))
        velocity = tf.where((position == MIN_POSITION) & (velocity < 0), tf.zeros_like(velocity), velocity)
        terminated = (position >= GOAL_POSITION) & (velocity >= GOAL_VELOCITY)
        a64 = tf.cast(a, self.dtype)  # the reward is Python-float (double) arithmetic on the action
        reward = tf.where(terminated, tf.constant(100.0, self.dtype), tf.constant(0.0, self.dtype)) - a64 * a64 * 0.1
        state = MountainCarState(tf.cast(position, self.dtype), tf.cast(velocity, self.dtype), state.steps)
        return state, reward, terminated
