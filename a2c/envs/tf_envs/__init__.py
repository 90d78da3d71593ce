"""Pure, batched TensorFlow ports of gymnasium classic-control envs.

Each port is a frozen [`TFEnv`][a2c.envs.tf_envs.base.TFEnv] dataclass with ``reset(key, n_envs)`` and
``step(state, action, key)`` that run inside a ``tf.function`` (XLA-compiled or not)
and ``tf.while_loop``, so whole rollouts compile to one program. See
[`a2c.envs.tf_envs.base`][a2c.envs.tf_envs.base] for the conventions and
[`a2c.envs.tf_envs.vector`][a2c.envs.tf_envs.vector] for gymnasium-API wrappers.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from a2c.envs.tf_envs.acrobot import Acrobot, AcrobotState
from a2c.envs.tf_envs.base import RNG_ALG, EnvState, StepResult, TFEnv, UniformNoise, make_key, split_key
from a2c.envs.tf_envs.cartpole import CartPole, CartPoleState
from a2c.envs.tf_envs.continuous_mountain_car import ContinuousMountainCar
from a2c.envs.tf_envs.mountain_car import MountainCar, MountainCarState
from a2c.envs.tf_envs.pendulum import Pendulum, PendulumState

#: The default (float32, gymnasium time limit) port of each supported gymnasium id.
PORTED_ENVS: dict[str, TFEnv] = {
    env.env_id: env for env in (CartPole(), Acrobot(), MountainCar(), Pendulum(), ContinuousMountainCar())
}


def get_tf_env(env_id: str, **overrides: Any) -> TFEnv:
    """The port of ``env_id``, optionally with fields replaced (e.g. ``dtype=tf.float64``).

    Raises ``ValueError`` naming the ported ids, so a typo or an unported env fails
    loudly instead of silently falling back to something else.
    """
    try:
        env = PORTED_ENVS[env_id]
    except KeyError:
        ported = ", ".join(sorted(PORTED_ENVS))
        raise ValueError(f"no TensorFlow port of {env_id!r}; ported envs: {ported}") from None
    return dataclasses.replace(env, **overrides) if overrides else env


__all__ = [
    "PORTED_ENVS",
    "RNG_ALG",
    "Acrobot",
    "AcrobotState",
    "CartPole",
    "CartPoleState",
    "ContinuousMountainCar",
    "EnvState",
    "MountainCar",
    "MountainCarState",
    "Pendulum",
    "PendulumState",
    "StepResult",
    "TFEnv",
    "get_tf_env",
    "UniformNoise",
    "make_key",
    "split_key",
]
