"""Running reward normalisation: rewards divided by the running std of the discounted return.

What RL Baselines3 Zoo's A2C runs get from ``VecNormalize(norm_reward=True)``: the
critic of a trunk shared with the policy learns returns of order one whatever the
environment's reward scale, without a per-environment constant. Each env keeps a
discounted running return ``g = gamma * g + r`` (zeroed when its episode ends); the
mean and variance of every ``g`` seen so far are tracked (Chan et al.'s parallel
update), and each reward is divided by ``sqrt(var + eps)`` and clipped to
``[-clip, clip]``. As in VecNormalize the mean is tracked but not subtracted: shifting
rewards would change which episodes are better.

Host-side numpy on the rollout batch, so it works for any collector; the statistics
are JSON-able state that checkpoints carry, so a resumed run normalises exactly as an
uninterrupted one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from a2c.envs.state import decode, encode

if TYPE_CHECKING:
    from a2c.agent.batch import Rollout


def merge_moments(mean: Any, var: Any, count: Any, batch_mean: Any, batch_var: Any, n: Any) -> tuple[Any, Any, Any]:
    """Statistics of ``count`` samples (``mean``, ``var``) merged with ``n`` more whose mean and
    variance are ``batch_mean`` and ``batch_var`` (Chan et al.'s parallel update). Arithmetic only,
    so numpy arrays and TensorFlow tensors both work: one definition for the reward normaliser here
    and the model's observation normalisation layer
    ([`a2c.agent.model.ObsNormalization`][a2c.agent.model.ObsNormalization]), on the host and in the
    fused loop's graph."""
    delta, total = batch_mean - mean, count + n
    return mean + delta * n / total, (var * count + batch_var * n + delta * delta * count * n / total) / total, total


class RunningMeanStd:
    """Mean and variance of a stream of scalars, updated a batch at a time (float64)."""

    def __init__(self) -> None:
        self.mean = 0.0
        self.var = 1.0
        self.count = 1e-4  # as SB3: the first batch dominates without dividing by zero

    def update(self, x: np.ndarray) -> None:
        if x.size == 0:
            return
        x = np.asarray(x, np.float64).reshape(-1)
        mean, var, count = merge_moments(self.mean, self.var, self.count, x.mean(), x.var(), x.size)
        self.mean, self.var, self.count = float(mean), float(var), float(count)

    def state(self) -> dict[str, float]:
        return {"mean": self.mean, "var": self.var, "count": self.count}

    def load_state(self, state: dict[str, float]) -> None:
        self.mean, self.var, self.count = float(state["mean"]), float(state["var"]), float(state["count"])


class ReturnNormalizer:
    """Scales each batch's rewards by the running std of the discounted return.

    Only real transitions (``valid``) update the statistics and the running returns;
    the reward of an autoreset step is zero and stays zero.
    """

    def __init__(self, num_envs: int, gamma: float, clip: float = 10.0, eps: float = 1e-8) -> None:
        self.gamma, self.clip, self.eps = gamma, clip, eps
        self.returns = np.zeros(num_envs, np.float64)
        self.stats = RunningMeanStd()

    def __call__(self, batch: Rollout) -> Rollout:
        scaled = np.empty_like(batch.rewards)
        done = np.logical_or(batch.terminated > 0, batch.truncated > 0)
        for t in range(batch.rewards.shape[0]):
            valid = batch.valid[t] > 0
            self.returns = np.where(valid, self.returns * self.gamma + batch.rewards[t], self.returns)
            self.stats.update(self.returns[valid])
            scale = np.sqrt(self.stats.var + self.eps)
            scaled[t] = np.clip(batch.rewards[t] / scale, -self.clip, self.clip)
            self.returns = np.where(valid & done[t], 0.0, self.returns)
        return batch._replace(rewards=scaled.astype(np.float32))

    def state(self) -> dict[str, Any]:
        return {"returns": encode(self.returns), **self.stats.state()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.returns = decode(state["returns"])
        self.stats.load_state(state)
