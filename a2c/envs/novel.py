"""Partially observed classic-control tasks: the velocities removed ("NoVel"), as RL Baselines3
Zoo's recurrent benchmarks do, so that a policy needs memory to act well.

* ``CartPoleNoVel-v1``: CartPole-v1 observing (cart position, pole angle), its obs[[0, 2]];
* ``PendulumNoVel-v1``: Pendulum-v1 observing (cos theta, sin theta), its obs[[0, 1]].

Same dynamics, rewards and time limits as the full tasks. The ids are registered the first
time one is looked up ([`register_novel`][a2c.envs.novel.register_novel], from
[`a2c.envs.make.env_spec`][a2c.envs.make.env_spec]).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.envs.classic_control import CartPoleEnv, PendulumEnv

#: id -> (full task's class, observed indices, max_episode_steps, reward_threshold)
NOVEL_ENVS: dict[str, tuple[type[gym.Env], tuple[int, ...], int, float | None]] = {
    "CartPoleNoVel-v1": (CartPoleEnv, (0, 2), 500, 475.0),
    "PendulumNoVel-v1": (PendulumEnv, (0, 1), 200, None),
}


class NoVelocity(gym.ObservationWrapper):
    """Keep only the observation features ``keep`` (the positions) of a Box-observation env."""

    def __init__(self, env: gym.Env, keep: tuple[int, ...]) -> None:
        super().__init__(env)
        box = env.observation_space
        assert isinstance(box, spaces.Box)
        self.keep = np.asarray(keep)
        self.observation_space = spaces.Box(box.low[self.keep], box.high[self.keep], dtype=np.float32)

    def observation(self, observation: Any) -> np.ndarray:
        return np.asarray(observation, np.float32)[self.keep]


def make_novel(env_id: str, **kwargs: Any) -> gym.Env:
    """The entry point of a NoVel id: its full task's env with the velocities dropped."""
    cls, keep, _, _ = NOVEL_ENVS[env_id]
    return NoVelocity(cls(**kwargs), keep)


def _cartpole(**kwargs: Any) -> gym.Env:
    return make_novel("CartPoleNoVel-v1", **kwargs)


def _pendulum(**kwargs: Any) -> gym.Env:
    return make_novel("PendulumNoVel-v1", **kwargs)


_ENTRY_POINTS = {"CartPoleNoVel-v1": _cartpole, "PendulumNoVel-v1": _pendulum}


def is_novel(env_id: str) -> bool:
    return env_id in NOVEL_ENVS


def register_novel() -> None:
    """Register the NoVel ids with gymnasium (once)."""
    for env_id, (_, _, steps, threshold) in NOVEL_ENVS.items():
        if env_id not in gym.registry:
            gym.register(
                id=env_id, entry_point=_ENTRY_POINTS[env_id], max_episode_steps=steps, reward_threshold=threshold
            )
