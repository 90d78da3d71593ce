"""Shared test setup: quiet TensorFlow, register small custom environments."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The maintainer scripts (make results, make results-atari) are tested too; they are not in the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from gymnasium import spaces  # noqa: E402


class IdentityEnv(gym.Env):
    """Observation is a random integer; reward 1 for answering it. Episodes last 10 steps
    (a time limit: truncation, never termination). Optimal return: 10."""

    def __init__(self, n: int = 3) -> None:
        self.observation_space = spaces.Discrete(n)
        self.action_space = spaces.Discrete(n)
        self._state = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._state = int(self.np_random.integers(self.observation_space.n))
        return self._state, {}

    def step(self, action):
        reward = float(action == self._state)
        self._state = int(self.np_random.integers(self.observation_space.n))
        return self._state, reward, False, False, {}


class ConstantRewardEnv(gym.Env):
    """Reward 1 on every step of an endless episode; only a time limit ends it.

    With truncation bootstrapped, V(s) approaches 1 / (1 - gamma) whatever the limit;
    if truncation were treated as termination V would stay far below it.
    """

    observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.array([0.5, -0.5], np.float32), {}

    def step(self, action):
        return np.array([0.5, -0.5], np.float32), 1.0, False, False, {}


class TerminateAfterEnv(gym.Env):
    """Reward 1 per step; terminates (a real end, no bootstrap) after 3 steps."""

    observation_space = spaces.Box(0.0, 10.0, (1,), np.float32)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._t = 0
        return np.array([0.0], np.float32), {}

    def step(self, action):
        self._t += 1
        return np.array([float(self._t)], np.float32), 1.0, self._t >= 3, False, {}


class FramesEnv(gym.Env):
    """uint8 (4, 4) frames whose brightness shows which of 2 actions pays; 8-step episodes.
    Exercises observations that are neither flat nor float."""

    observation_space = spaces.Box(0, 255, (4, 4), np.uint8)
    action_space = spaces.Discrete(2)

    def _frame(self) -> np.ndarray:
        return np.full((4, 4), 255 * self._target, np.uint8)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._target = int(self.np_random.integers(2))
        return self._frame(), {}

    def step(self, action):
        reward = float(action == self._target)
        self._target = int(self.np_random.integers(2))
        return self._frame(), reward, False, False, {}


gym.register("A2CTest/Frames-v0", entry_point=FramesEnv, max_episode_steps=8)
gym.register("A2CTest/Identity-v0", entry_point=IdentityEnv, max_episode_steps=10)
gym.register("A2CTest/ConstantReward-v0", entry_point=ConstantRewardEnv, max_episode_steps=4)
gym.register("A2CTest/TerminateAfter3-v0", entry_point=TerminateAfterEnv, max_episode_steps=100)
import spaces_envs  # noqa: E402,F401  registers the A2CTest/ action-space envs


@pytest.fixture(scope="session")
def shared_run_dir(tmp_path_factory: pytest.TempPathFactory):
    """One tiny CartPole run shared by the export, evaluate and plotting tests."""
    from a2c.config.resolve import make_config
    from a2c.run.train import train

    run = tmp_path_factory.getbasetemp() / "a2c_shared_run"
    train(
        make_config(
            {
                "total_steps": 2000,
                "eval_every": 1000,
                "eval_episodes": 2,
                "final_eval_episodes": 2,
                "log_every": 5,
                "progress": False,
                "seed": 0,
                "run_dir": str(run),
            }
        ),
        quiet=True,
    )
    return run


@pytest.fixture(autouse=True)
def _seed_everything():
    np.random.seed(0)
    yield


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray with 2 CPUs for a whole test module (start and stop cost seconds)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield ray
    ray.shutdown()
