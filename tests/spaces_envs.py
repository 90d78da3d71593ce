"""Environments whose action spaces a2c must refuse (imported by conftest; the CLI tests
reach them as ``tests.spaces_envs:A2CTest/...``, gymnasium's module-prefixed ids)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class _ActionSpaceEnv(gym.Env):
    observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        return np.zeros(2, np.float32), 0.0, False, False, {}


class UnboundedBoxEnv(_ActionSpaceEnv):
    action_space = spaces.Box(-np.inf, np.inf, (2,), np.float32)


class MultiDiscreteEnv(_ActionSpaceEnv):
    action_space = spaces.MultiDiscrete([3, 2])


for _name, _cls in (("UnboundedBox", UnboundedBoxEnv), ("MultiDiscrete", MultiDiscreteEnv)):
    if f"A2CTest/{_name}-v0" not in gym.registry:
        gym.register(f"A2CTest/{_name}-v0", entry_point=_cls, max_episode_steps=10)
