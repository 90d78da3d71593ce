"""What a trainer is, as the run driver ([`a2c.run.driver`][a2c.run.driver]) sees it.

A [`Trainer`][a2c.trainers.base.Trainer] supplies only its step: ``advance(k)`` performs ``k`` updates and
returns their metrics and the episodes that finished ([`StepOutput`][a2c.trainers.base.StepOutput]). The standard
trainer ([`a2c.trainers.standard`][a2c.trainers.standard]) does one update per call, the fused one
([`a2c.trainers.fused`][a2c.trainers.fused]) many inside one compiled call, A3C ([`a2c.trainers.a3c`][a2c.trainers.a3c])
applies worker gradients as they arrive.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol

import keras


class StepOutput(NamedTuple):
    """What one [`Trainer.advance`][a2c.trainers.base.Trainer.advance] call returns."""

    metrics: Mapping[str, Any]  # learner.UPDATE_METRICS of the call (scalars or 0-d tensors)
    episodes: list[tuple[float, float, float]]  # finished episodes: (count, return sum, length sum) chunks


class Trainer(Protocol):
    """An algorithm's step, as the driver sees it."""

    name: str  # "standard", "fused" (summary.json's ``trainer``)
    model: keras.Model
    optimizer: keras.optimizers.Optimizer
    updates_per_call: int  # the most updates one advance() performs
    metric_columns: tuple[str, ...]  # metrics.csv columns of its own (its metrics' keys with a "/")

    def compile(self) -> float | None:
        """Compile before the first call and return the seconds taken; None when the
        first call compiles (its time then counts as warm-up)."""

    def advance(self, updates: int) -> StepOutput: ...

    def start(self, updates_done: int) -> None:
        """Called once before the loop, with the updates already done (resume)."""

    def check_finite(self) -> None:
        """Raise NonFiniteError if an update since the start was not finite."""

    def checkpoint_objects(self) -> dict[str, Any]:
        """TensorFlow objects a checkpoint must hold besides the model and optimizer."""

    def state(self) -> dict[str, Any]:
        """JSON-able host state for a checkpoint."""

    def load_state(self, state: dict[str, Any]) -> list[str]:
        """Restore [`state`][a2c.trainers.base.Trainer.state]; return warnings about what could not be restored
        exactly."""

    def summary(self) -> dict[str, Any]:
        """Extra fields of summary.json."""

    def close(self) -> None: ...
