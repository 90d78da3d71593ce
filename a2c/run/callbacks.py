"""Callbacks: the user's code, called by a run at its milestones, which may stop it cleanly.

A hook that returns ``False`` ends training at that point the way the step budget does:
the run is checkpointed and its model, SavedModel, final evaluation, summary.json and
curves are written. It is not an interruption (that is Ctrl-C, or a KeyboardInterrupt
raised in a hook, which checkpoints and raises
[`TrainingInterrupted`][a2c.run.signals.TrainingInterrupted] so that the run can be
resumed). ``None`` (a hook without ``return``) and ``True`` go on.

The hooks run in the training process between trainer calls; what they cost is on the
training clock. ``metrics`` is only read when a callback is there to see it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import keras

    from a2c.artifacts.evaluate import EvalResult
    from a2c.config.schema import Config


class Callback:
    """Base class: override the hooks you need.

    After [`on_training_start`][a2c.run.callbacks.Callback.on_training_start], ``self.cfg``,
    ``self.run_dir`` and ``self.model`` (the Keras model being trained) are set.
    """

    cfg: Config
    run_dir: Path
    model: keras.Model

    def on_training_start(self, cfg: Config, run_dir: Path, model: keras.Model) -> None:
        """Before the first update of a training session (each `learn` call, each resume)."""
        self.cfg, self.run_dir, self.model = cfg, run_dir, model

    def on_update(self, update: int, global_step: int, metrics: Mapping[str, float]) -> bool | None:
        """After each trainer call (one update for the standard trainer, up to
        ``fused_updates_per_call`` for the fused one): the call's metrics as floats
        (``policy_loss``, ``value_loss``, ``entropy``, ``total_loss``, ... as metrics.csv
        names them after ``train/``: [`UPDATE_METRICS`][a2c.agent.learner.UPDATE_METRICS])."""
        return None

    def on_evaluation(self, global_step: int, result: EvalResult) -> bool | None:
        """After each periodic greedy evaluation (``eval_every`` steps): its returns."""
        return None

    def on_checkpoint(self, update: int, global_step: int) -> None:
        """After each checkpoint is written."""

    def on_training_end(self, summary: Mapping[str, Any]) -> None:
        """After the final files are written: summary.json's fields."""


class CallbackList(Callback):
    """Several callbacks, each hook called on every one in order; training stops if any says so."""

    def __init__(self, callbacks: Iterable[Callback]) -> None:
        self.callbacks = list(callbacks)

    def on_training_start(self, cfg: Config, run_dir: Path, model: keras.Model) -> None:
        super().on_training_start(cfg, run_dir, model)
        for c in self.callbacks:
            c.on_training_start(cfg, run_dir, model)

    def on_update(self, update: int, global_step: int, metrics: Mapping[str, float]) -> bool | None:
        return _all_go_on([c.on_update(update, global_step, metrics) for c in self.callbacks])

    def on_evaluation(self, global_step: int, result: EvalResult) -> bool | None:
        return _all_go_on([c.on_evaluation(global_step, result) for c in self.callbacks])

    def on_checkpoint(self, update: int, global_step: int) -> None:
        for c in self.callbacks:
            c.on_checkpoint(update, global_step)

    def on_training_end(self, summary: Mapping[str, Any]) -> None:
        for c in self.callbacks:
            c.on_training_end(summary)


def _all_go_on(answers: list[bool | None]) -> bool:
    return all(answer is not False for answer in answers)


class StopOnReward(Callback):
    """Stop once a periodic greedy evaluation's mean return reaches ``threshold``
    (the run needs ``eval_every > 0``). ``reached_at``: the step it did, else None."""

    def __init__(self, threshold: float) -> None:
        self.threshold = float(threshold)
        self.reached_at: int | None = None

    def on_evaluation(self, global_step: int, result: EvalResult) -> bool | None:
        if result.mean >= self.threshold:
            self.reached_at = global_step
            return False
        return None


class FunctionCallback(Callback):
    """A plain function ``fn(update, global_step)`` called after each trainer call (the
    form [`a2c.run.train.train`][a2c.run.train.train] has always taken)."""

    def __init__(self, fn: Callable[[int, int], Any]) -> None:
        self.fn = fn

    def on_update(self, update: int, global_step: int, metrics: Mapping[str, float]) -> bool | None:
        self.fn(update, global_step)
        return None


CallbackLike = Callback | Iterable[Callback] | Callable[[int, int], Any] | None


def as_callback(callback: CallbackLike) -> Callback | None:
    """One [`Callback`][a2c.run.callbacks.Callback] (or None) from what users pass: a callback,
    a list of them, or a function ``fn(update, global_step)``."""
    if callback is None or isinstance(callback, Callback):
        return callback
    if isinstance(callback, Iterable):
        callbacks = list(callback)
        if not all(isinstance(c, Callback) for c in callbacks):
            raise TypeError("a list of callbacks must hold a2c.Callback objects")
        return CallbackList(callbacks)
    if callable(callback):
        return FunctionCallback(callback)
    raise TypeError(f"callback must be an a2c.Callback, a list of them or a function; got {type(callback).__name__}")


class _FloatMetrics(Mapping[str, float]):
    """A trainer call's metrics (scalars or 0-d tensors) as Python floats, read from the
    tensors only when a hook looks at them (reading one waits for the update to finish)."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self._raw = raw
        self._floats: dict[str, float] | None = None

    def _values(self) -> dict[str, float]:
        if self._floats is None:
            self._floats = {key: float(value) for key, value in self._raw.items()}
        return self._floats

    def __getitem__(self, key: str) -> float:
        return self._values()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def __repr__(self) -> str:
        return repr(self._values())


def float_metrics(metrics: Mapping[str, Any]) -> Mapping[str, float]:
    """A trainer call's metrics as floats (converted when first read)."""
    return _FloatMetrics(metrics)
