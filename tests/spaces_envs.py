"""Environments whose action spaces a2c must refuse, and identity tasks for the action spaces
it supports (imported by conftest; the CLI tests reach them as ``tests.spaces_envs:A2CTest/...``,
gymnasium's module-prefixed ids)."""

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


class TupleActionEnv(_ActionSpaceEnv):
    action_space = spaces.Tuple((spaces.Discrete(3), spaces.Discrete(2)))


class EmptyMultiDiscreteEnv(_ActionSpaceEnv):
    action_space = spaces.MultiDiscrete([])


for _name, _cls in (
    ("UnboundedBox", UnboundedBoxEnv),
    ("TupleAction", TupleActionEnv),
    ("EmptyMultiDiscrete", EmptyMultiDiscreteEnv),
):
    if f"A2CTest/{_name}-v0" not in gym.registry:
        gym.register(f"A2CTest/{_name}-v0", entry_point=_cls, max_episode_steps=10)


class ContinuousIdentityEnv(gym.Env):
    """Observation uniform in [-1, 1]; reward -|action - observation|; 10-step episodes
    (a time limit). The optimal greedy return is 0; actions are clipped to [-1, 1]."""

    observation_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._x = self.np_random.uniform(-1.0, 1.0, (1,)).astype(np.float32)
        return self._x, {}

    def step(self, action):
        reward = -float(np.abs(np.asarray(action, np.float64) - self._x).sum())
        self._x = self.np_random.uniform(-1.0, 1.0, (1,)).astype(np.float32)
        return self._x, reward, False, False, {}


if "A2CTest/ContinuousIdentity-v0" not in gym.registry:
    gym.register("A2CTest/ContinuousIdentity-v0", entry_point=ContinuousIdentityEnv, max_episode_steps=10)


class _SubActionIdentityEnv(gym.Env):
    """The observation is the optimal action (as floats); reward: the fraction of sub-actions
    equal to it; 10-step episodes (a time limit), so the optimal return is 10."""

    def _draw(self):
        raise NotImplementedError

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._x = self._draw()
        return self._x.astype(np.float32), {}

    def step(self, action):
        reward = float(np.mean(np.asarray(action) == self._x))
        self._x = self._draw()
        return self._x.astype(np.float32), reward, False, False, {}


class MultiDiscreteIdentityEnv(_SubActionIdentityEnv):
    """MultiDiscrete([3, 2, 4]): a random policy scores about 10 * 0.36."""

    nvec = (3, 2, 4)
    observation_space = spaces.Box(0.0, 3.0, (3,), np.float32)
    action_space = spaces.MultiDiscrete(nvec)

    def _draw(self):
        return np.array([self.np_random.integers(n) for n in self.nvec])


class MultiBinaryIdentityEnv(_SubActionIdentityEnv):
    """MultiBinary(4): a random policy scores about 5."""

    observation_space = spaces.Box(0.0, 1.0, (4,), np.float32)
    action_space = spaces.MultiBinary(4)

    def _draw(self):
        return self.np_random.integers(0, 2, 4)


for _name, _cls in (
    ("MultiDiscreteIdentity", MultiDiscreteIdentityEnv),
    ("MultiBinaryIdentity", MultiBinaryIdentityEnv),
):
    if f"A2CTest/{_name}-v0" not in gym.registry:
        gym.register(f"A2CTest/{_name}-v0", entry_point=_cls, max_episode_steps=10)


class DictObsEnv(gym.Env):
    """Dict observations: a uint8 image (10x10x3, all dark or all bright) and a 2-vector; the
    right action (Discrete(2)) is vec[0] > 0, flipped when the image is bright, so both keys
    matter. Reward 1 for the right action; 10-step episodes (optimal 10, random 5)."""

    observation_space = spaces.Dict(
        {
            "image": spaces.Box(0, 255, (10, 10, 3), np.uint8),
            "vec": spaces.Box(-1.0, 1.0, (2,), np.float32),
        }
    )
    action_space = spaces.Discrete(2)

    def _draw(self):
        bright = bool(self.np_random.integers(2))
        low = 200 if bright else 0
        image = self.np_random.integers(low, low + 56, (10, 10, 3)).astype(np.uint8)
        vec = self.np_random.uniform(-1.0, 1.0, 2).astype(np.float32)
        self._target = int((vec[0] > 0) != bright)
        return {"image": image, "vec": vec}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._draw(), {}

    def step(self, action):
        reward = float(int(action) == self._target)
        return self._draw(), reward, False, False, {}


class TupleObsEnv(gym.Env):
    """Tuple observations (a 2-vector, a Discrete(3)): the right action (Discrete(2)) is vec[0] > 0,
    flipped when the Discrete part is 2. Reward 1 for it; 10-step episodes."""

    observation_space = spaces.Tuple((spaces.Box(-1.0, 1.0, (2,), np.float32), spaces.Discrete(3)))
    action_space = spaces.Discrete(2)

    def _draw(self):
        vec = self.np_random.uniform(-1.0, 1.0, 2).astype(np.float32)
        flag = int(self.np_random.integers(3))
        self._target = int((vec[0] > 0) != (flag == 2))
        return (vec, flag)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._draw(), {}

    def step(self, action):
        reward = float(int(action) == self._target)
        return self._draw(), reward, False, False, {}


class DictOfTupleEnv(_ActionSpaceEnv):
    observation_space = spaces.Dict({"pos": spaces.Box(-1.0, 1.0, (2,)), "bag": spaces.Tuple((spaces.Discrete(2),))})
    action_space = spaces.Discrete(2)


class SequenceObsEnv(_ActionSpaceEnv):
    observation_space = spaces.Sequence(spaces.Discrete(3))
    action_space = spaces.Discrete(2)


for _name, _cls in (
    ("DictObs", DictObsEnv),
    ("TupleObs", TupleObsEnv),
    ("DictOfTuple", DictOfTupleEnv),
    ("SequenceObs", SequenceObsEnv),
):
    if f"A2CTest/{_name}-v0" not in gym.registry:
        gym.register(f"A2CTest/{_name}-v0", entry_point=_cls, max_episode_steps=10)
