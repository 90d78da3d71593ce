"""Acrobot-v1 as pure batched TensorFlow functions.

Port of ``gymnasium.envs.classic_control.acrobot.AcrobotEnv``: one RK4 step of
``dt = 0.2`` on the "book" dynamics (``book_or_nips="nips"`` is also supported),
angles wrapped to [-pi, pi], velocities clipped, optional uniform torque noise (0 by
default, as in gymnasium).

Dtype subtlety copied from gymnasium: the reset state is drawn in float64 and then
*rounded to float32*, but every step after that integrates in float64 (``np.append``
of the float32 state with a Python-float torque promotes it). So with
``dtype=tf.float64`` the port rounds its reset state to float32 as well.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar, NamedTuple

import tensorflow as tf

from a2c.envs.tf_envs.base import TFEnv, batch_size

DT = 0.2
LINK_LENGTH_1 = 1.0
LINK_MASS_1 = 1.0
LINK_MASS_2 = 1.0
LINK_COM_POS_1 = 0.5
LINK_COM_POS_2 = 0.5
LINK_MOI = 1.0
GRAVITY = 9.8
MAX_VEL_1 = 4 * math.pi
MAX_VEL_2 = 9 * math.pi
AVAIL_TORQUE = (-1.0, 0.0, 1.0)
RESET_BOUND = 0.1  # all four state variables start in U[-0.1, 0.1)

# Constant sub-expressions of the equations of motion, grouped exactly as gymnasium
# evaluates them left to right, so float64 results agree bit for bit.
_M1, _M2, _L1, _LC1, _LC2, _I1, _I2 = (
    LINK_MASS_1,
    LINK_MASS_2,
    LINK_LENGTH_1,
    LINK_COM_POS_1,
    LINK_COM_POS_2,
    LINK_MOI,
    LINK_MOI,
)
_D1_CONST = _M1 * _LC1**2
_D1_INNER = _L1**2 + _LC2**2
_D1_COS = 2 * _L1 * _LC2
_PHI2_COEF = _M2 * _LC2 * GRAVITY
_PHI1_SQ = -_M2 * _L1 * _LC2
_PHI1_CROSS = 2 * _M2 * _L1 * _LC2
_PHI1_GRAV = (_M1 * _LC1 + _M2 * _L1) * GRAVITY
_BOOK_SQ = _M2 * _L1 * _LC2
_DENOM_CONST = _M2 * _LC2**2 + _I2


class AcrobotState(NamedTuple):
    """Batched Acrobot state; every field has shape ``[n_envs]``."""

    theta1: tf.Tensor
    theta2: tf.Tensor
    dtheta1: tf.Tensor
    dtheta2: tf.Tensor
    steps: tf.Tensor  # int32 steps taken in the current episode


def _wrap(x: tf.Tensor, low: float, high: float) -> tf.Tensor:
    """Branchless version of gymnasium's ``while``-loop wrap into ``[low, high]``.

    Subtracting ``k * (high - low)`` with the smallest sufficient integer ``k`` equals
    the loop's result exactly for the k=1 case that occurs in practice.
    """
    span = high - low
    k_down = tf.math.ceil((x - high) / span)
    k_up = tf.math.ceil((low - x) / span)
    x = tf.where(x > high, x - k_down * span, x)
    return tf.where(x < low, x + k_up * span, x)


@dataclasses.dataclass(frozen=True)
class Acrobot(TFEnv):
    """Acrobot-v1: torque -1/0/+1 (actions 0/1/2) on the elbow to swing the tip up.

    Reward is -1 per step and 0 on the terminating step, which is when the tip rises
    above one link length over the pivot: ``-cos(t1) - cos(t1 + t2) > 1``.
    """

    env_id: str = dataclasses.field(default="Acrobot-v1", init=False)
    obs_dim: int = dataclasses.field(default=6, init=False)
    n_actions: int = dataclasses.field(default=3, init=False)
    max_episode_steps: int = 500
    dtype: tf.DType = tf.float32
    #: Half-width of uniform noise added to the torque; gymnasium's default is 0.
    torque_noise_max: float = 0.0
    #: "book" (gymnasium's default, the Java/book equations) or "nips" (the paper's).
    book_or_nips: str = "book"

    state_type: ClassVar[type] = AcrobotState
    reset_noise_dim: ClassVar[int] = 4
    obs_high: ClassVar[tuple[float, ...]] = (1.0, 1.0, 1.0, 1.0, MAX_VEL_1, MAX_VEL_2)
    obs_low: ClassVar[tuple[float, ...]] = tuple(-h for h in obs_high)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.book_or_nips not in ("book", "nips"):
            raise ValueError(f"book_or_nips must be 'book' or 'nips', got {self.book_or_nips!r}")

    @property
    def noise_dim(self) -> int:
        return self.reset_noise_dim + (1 if self.torque_noise_max > 0 else 0)

    def _sample_physics(self, key: tf.Tensor, n_envs: int | tf.Tensor) -> tuple[tf.Tensor, ...]:
        u = self._uniform(key, [n_envs, 4], -RESET_BOUND, RESET_BOUND)
        # Gymnasium stores the reset state as float32 (then integrates in float64).
        u = tf.cast(tf.cast(u, tf.float32), self.dtype)
        return tuple(tf.unstack(u, num=4, axis=1))

    def _derivatives(
        self,
        theta1: tf.Tensor,
        theta2: tf.Tensor,
        dtheta1: tf.Tensor,
        dtheta2: tf.Tensor,
        torque: tf.Tensor,
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        """Time derivative of (theta1, theta2, dtheta1, dtheta2) under a constant torque."""
        cos2 = tf.cos(theta2)
        sin2 = tf.sin(theta2)
        d1 = _D1_CONST + _M2 * (_D1_INNER + _D1_COS * cos2) + _I1 + _I2
        d2 = _M2 * (_LC2**2 + _L1 * _LC2 * cos2) + _I2
        phi2 = _PHI2_COEF * tf.cos(theta1 + theta2 - math.pi / 2.0)
        phi1 = (
            _PHI1_SQ * tf.square(dtheta2) * sin2
            - _PHI1_CROSS * dtheta2 * dtheta1 * sin2
            + _PHI1_GRAV * tf.cos(theta1 - math.pi / 2)
            + phi2
        )
        denom = _DENOM_CONST - tf.square(d2) / d1
        if self.book_or_nips == "nips":
            ddtheta2 = (torque + d2 / d1 * phi1 - phi2) / denom
        else:
            centripetal = _BOOK_SQ * tf.square(dtheta1) * sin2
            ddtheta2 = (torque + d2 / d1 * phi1 - centripetal - phi2) / denom
        ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
        return dtheta1, dtheta2, ddtheta1, ddtheta2

    def _dynamics(
        self, state: AcrobotState, action: tf.Tensor, key: tf.Tensor
    ) -> tuple[AcrobotState, tf.Tensor, tf.Tensor]:
        torque = tf.gather(tf.constant(AVAIL_TORQUE, self.dtype), action)
        if self.torque_noise_max > 0:
            noise = self.torque_noise_max
            torque += self._uniform(key, [batch_size(torque)], -noise, noise)

        # Classic RK4 over one interval [0, DT], in gymnasium's operation order.
        y: tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor] = tuple(state[:4])
        half = DT / 2.0

        def shifted(scale: float, k: tuple[tf.Tensor, ...]) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
            return tuple(yi + scale * ki for yi, ki in zip(y, k, strict=True))

        k1 = self._derivatives(*y, torque)
        k2 = self._derivatives(*shifted(half, k1), torque)
        k3 = self._derivatives(*shifted(half, k2), torque)
        k4 = self._derivatives(*shifted(DT, k3), torque)
        theta1, theta2, dtheta1, dtheta2 = (
            yi + DT / 6.0 * (a + 2 * b + 2 * c + d) for yi, a, b, c, d in zip(y, k1, k2, k3, k4, strict=True)
        )

        theta1 = _wrap(theta1, -math.pi, math.pi)
        theta2 = _wrap(theta2, -math.pi, math.pi)
        dtheta1 = tf.clip_by_value(dtheta1, -MAX_VEL_1, MAX_VEL_1)
        dtheta2 = tf.clip_by_value(dtheta2, -MAX_VEL_2, MAX_VEL_2)

        terminated = -tf.cos(theta1) - tf.cos(theta2 + theta1) > 1.0
        reward = tf.where(terminated, tf.zeros_like(theta1), -tf.ones_like(theta1))
        return AcrobotState(theta1, theta2, dtheta1, dtheta2, state.steps), reward, terminated

    def observe(self, state: AcrobotState) -> tf.Tensor:
        return tf.stack(
            [
                tf.cos(state.theta1),
                tf.sin(state.theta1),
                tf.cos(state.theta2),
                tf.sin(state.theta2),
                state.dtheta1,
                state.dtheta2,
            ],
            axis=1,
        )
