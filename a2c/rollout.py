"""Collect n_steps x n_envs transitions with the current policy. No gradients here.

The env autoresets on the NEXT step (see :mod:`a2c.envs`), so the observation after
a step that ended an episode is that episode's final observation, and the step after
it is a reset step: its action is ignored and it returns the new episode's first
observation with zero reward. ``valid`` marks the real transitions; the loss ignores
the others. Truncated steps keep their bootstrap because ``obs[t + 1]`` is the final
observation the critic needs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import gymnasium as gym
import numpy as np


class Rollout(NamedTuple):
    """One batch, time-major. ``obs`` has one more step than the rest: obs[t + 1]
    is what followed step t (the final observation when step t ended an episode)."""

    obs: np.ndarray  # (T + 1, N, obs_dim) float32
    actions: np.ndarray  # (T, N) int32
    rewards: np.ndarray  # (T, N) float32
    terminated: np.ndarray  # (T, N) float32
    truncated: np.ndarray  # (T, N) float32
    valid: np.ndarray  # (T, N) float32, 0 for autoreset steps


class EpisodeStats(NamedTuple):
    returns: list[float]
    lengths: list[int]


class RolloutCollector:
    """Steps a vector env with a policy, carrying the last observation between batches."""

    def __init__(self, env: gym.vector.VectorEnv, act: Callable[[np.ndarray], np.ndarray],
                 n_steps: int, seed: int) -> None:
        self.env = env
        self.act = act
        self.n_steps = n_steps
        n, obs_dim = env.num_envs, env.single_observation_space.shape[0]
        obs, _ = env.reset(seed=seed)  # sub-env i gets seed + i
        self.next_obs = np.asarray(obs, np.float32)
        self.prev_done = np.zeros(n, bool)  # did the last step end an episode (reset pending)?
        self._obs = np.zeros((n_steps + 1, n, obs_dim), np.float32)
        self._actions = np.zeros((n_steps, n), np.int32)
        self._rewards = np.zeros((n_steps, n), np.float32)
        self._terminated = np.zeros((n_steps, n), np.float32)
        self._truncated = np.zeros((n_steps, n), np.float32)
        self._valid = np.zeros((n_steps, n), np.float32)

    def collect(self) -> tuple[Rollout, EpisodeStats]:
        """Run n_steps in every env; return the batch and the episodes that finished."""
        ep_returns: list[float] = []
        ep_lengths: list[int] = []
        obs = self.next_obs
        for t in range(self.n_steps):
            self._obs[t] = obs
            actions = self.act(obs)
            obs, rewards, terminated, truncated, infos = self.env.step(actions)
            obs = np.asarray(obs, np.float32)
            self._actions[t] = actions
            self._rewards[t] = rewards
            self._terminated[t] = terminated
            self._truncated[t] = truncated
            self._valid[t] = ~self.prev_done
            self.prev_done = np.logical_or(terminated, truncated)
            if "_episode" in infos:
                finished = infos["_episode"]
                ep_returns.extend(infos["episode"]["r"][finished].tolist())
                ep_lengths.extend(infos["episode"]["l"][finished].tolist())
        self._obs[self.n_steps] = obs
        self.next_obs = obs
        batch = Rollout(self._obs.copy(), self._actions.copy(), self._rewards.copy(),
                        self._terminated.copy(), self._truncated.copy(), self._valid.copy())
        return batch, EpisodeStats(ep_returns, ep_lengths)
