"""Keep the weights of the best periodic evaluation (``keep_best``), as early stopping does.

On the hard tasks (LunarLanderContinuous, BipedalWalker) A2C's greedy return swings by
a hundred points from one evaluation to the next; the last weights are one draw from
that swing. With ``keep_best`` the run driver copies the weights whenever a periodic
greedy evaluation beats the best so far (what SB3's ``EvalCallback(best_model_save_path)``
and the zoo's ``--eval-freq`` keep), and at the end the run's model becomes that copy.

Two rules keep the reported number honest: the periodic evaluations of such a run play
seeds of their own ([`SELECTION_SEED_BASE`][a2c.run.best.SELECTION_SEED_BASE]), so the final evaluation never scores
the model on the episodes that chose it; and the last weights are evaluated on the same
final episodes and reported beside it.

The copy lives in TensorFlow variables that the run's checkpoint holds, with the score
and step in its host state, so a resumed run picks the same model as an uninterrupted one.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

#: Periodic evaluations of a ``keep_best`` run reset episode k with this seed + k:
#: disjoint from training seeds and from the final evaluation's (EVAL_SEED_BASE + k).
SELECTION_SEED_BASE = 2_000_000
#: The last weights of a ``keep_best`` run, beside model.keras (the kept ones).
LAST_MODEL_FILE = "last_model.keras"


class BestWeights(tf.Module):
    """A copy of a model's weights (trainable and not: observation statistics too) taken
    at its best evaluation so far."""

    def __init__(self, model: keras.Model) -> None:
        super().__init__(name="best_weights")
        self._sources = list(model.weights)
        self.copies = [
            tf.Variable(np.asarray(v), trainable=False, name=f"best_{i}") for i, v in enumerate(self._sources)
        ]
        self.mean_return: float | None = None
        self.step: int | None = None

    def offer(self, mean_return: float, step: int) -> bool:
        """Copy the current weights if ``mean_return`` beats the best so far (ties keep the
        earlier weights); return whether it did."""
        if not np.isfinite(mean_return) or (self.mean_return is not None and mean_return <= self.mean_return):
            return False
        for copy, source in zip(self.copies, self._sources):
            copy.assign(np.asarray(source))
        self.mean_return, self.step = float(mean_return), int(step)
        return True

    def restore(self) -> None:
        """Give the model the kept weights."""
        if self.step is None:
            raise RuntimeError("no evaluation has been kept yet")
        for copy, target in zip(self.copies, self._sources):
            target.assign(copy.numpy())

    def state(self) -> dict[str, Any]:
        return {"mean_return": self.mean_return, "step": self.step}

    def load_state(self, state: dict[str, Any] | None) -> None:
        state = state or {}
        self.mean_return, self.step = state.get("mean_return"), state.get("step")
