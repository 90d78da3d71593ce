"""The numpy types that cross the agent's boundary: a rollout batch, finished episodes, a policy.

No TensorFlow: collectors (local or remote), the learner, reward normalisation and
evaluation all speak these.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np


class Rollout(NamedTuple):
    """One batch, time-major. ``obs`` has one more step than the rest: obs[t + 1]
    is what followed step t (the final observation when step t ended an episode)."""

    obs: np.ndarray  # (T + 1, N, *obs_shape), the ObsSpec's dtype
    actions: np.ndarray  # (T, N) int32, or (T, N, action_dim) float32 unclipped for Box actions
    rewards: np.ndarray  # (T, N) float32
    terminated: np.ndarray  # (T, N) float32
    truncated: np.ndarray  # (T, N) float32
    valid: np.ndarray  # (T, N) float32, 0 for autoreset steps


class Memory(NamedTuple):
    """What a recurrent model's update needs besides the batch: the cell state each env had when
    the rollout began, and where episodes start (the state is zeroed before that step's cell)."""

    state: np.ndarray  # (N, state_size) float32, before obs[0] (not yet reset by starts[0])
    starts: np.ndarray  # (T + 1, N) float32, 1 where obs[t] is a new episode's first observation


class EpisodeStats(NamedTuple):
    returns: list[float]
    lengths: list[int]


Policy = Callable[[np.ndarray], np.ndarray]  # (episodes, *obs_shape) -> (episodes,) actions
