"""What the run driver counts, saved in every checkpoint so that a resumed run continues
its step count, its logs' numbers and its evaluation schedule."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class RecentEpisodes:
    """Return and length means over the most recent finished episodes, at least ``size``.

    Episodes arrive in chunks (one per episode from the standard trainer, one per
    compiled call from the fused one, which only sees sums); the window holds the
    newest chunks that together cover at least ``size`` episodes (exactly ``size``
    for one-episode chunks).
    """

    def __init__(self, size: int = 100, chunks: list[list[float]] | None = None) -> None:
        self.size = size
        self.chunks: deque[tuple[float, float, float]] = deque()
        self.episodes = 0.0
        for chunk in chunks or []:
            self.add(*chunk)

    def add(self, episodes: float, return_sum: float, length_sum: float) -> None:
        if episodes <= 0:
            return
        self.chunks.append((episodes, return_sum, length_sum))
        self.episodes += episodes
        while self.episodes - self.chunks[0][0] >= self.size:
            self.episodes -= self.chunks.popleft()[0]

    def _mean(self, i: int) -> float | None:
        return float(np.sum([c[i] for c in self.chunks]) / self.episodes) if self.chunks else None

    def return_mean(self) -> float | None:
        return self._mean(1)

    def length_mean(self) -> float | None:
        return self._mean(2)


@dataclass
class Progress:
    """What the loop counts; saved in every checkpoint so that a resumed run continues
    its step count, its logs' numbers and its evaluation schedule."""

    update: int = 0  # updates completed (logged, evaluated, and checkpointed if due)
    global_step: int = 0
    episodes: int = 0
    train_seconds: float = 0.0  # the training clock: see a2c.run.driver's docstring
    warmup_seconds: float = 0.0
    warmup_steps: int = 0
    next_eval: int | None = None
    recent: RecentEpisodes = field(default_factory=RecentEpisodes)
    resumed_at: list[int] = field(default_factory=list)  # the update each resumed session started from

    @property
    def steps_per_second(self) -> float:
        """Throughput without the warm-up."""
        return (self.global_step - self.warmup_steps) / max(self.train_seconds - self.warmup_seconds, 1e-9)

    def metrics_row(
        self, update: int, recent: RecentEpisodes, episodes: int, metrics: Mapping[str, Any]
    ) -> dict[str, Any]:
        """A metrics.csv row at this point: one layout for a single run and each population
        member (``recent``/``episodes``: the run's or the member's own)."""
        ret, length = recent.return_mean(), recent.length_mean()
        return {
            "global_step": self.global_step,
            "update": update,
            "rollout/ep_return_mean": "" if ret is None else ret,
            "rollout/ep_length_mean": "" if length is None else length,
            "rollout/episodes": episodes,
            **{(k if "/" in k else f"train/{k}"): float(v) for k, v in metrics.items()},  # "workers/..." as is
            "time/steps_per_second": self.steps_per_second,
            "time/elapsed_seconds": self.train_seconds,
        }

    def eval_row(self, eval_summary: Mapping[str, Any]) -> dict[str, Any]:
        """An evaluations.csv row at this point, with the training clock."""
        return {
            "global_step": self.global_step,
            "time/elapsed_seconds": self.train_seconds,
            **{f"eval/{k}": v for k, v in eval_summary.items()},
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "recent": [list(c) for c in self.recent.chunks], "resumed_at": list(self.resumed_at)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Progress:
        return cls(**{**d, "recent": RecentEpisodes(chunks=d["recent"])})
