"""A non-finite check that lives inside the compiled update.

Reading a flag from the device costs a copy per read, so the update records the first
bad update in variables and the host reads them only where it reads numbers anyway
(log, evaluation, checkpoint).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from a2c.common.errors import NonFiniteError


class FiniteGuard:
    """Remember, on the device, the first update whose metrics (losses, entropy, gradient
    norm, ...) were not all finite, and their values.

    The compiled update calls [`record`][a2c.agent.guard.FiniteGuard.record] (graph code) on its metrics. Non-finite
    gradients show up as a non-finite ``grad_norm`` (the global norm of all of them),
    so checking the metrics covers losses and gradients. Reading the flag costs a
    device-to-host copy, so [`check`][a2c.agent.guard.FiniteGuard.check] is called only where the loop reads numbers
    anyway; in between, bad updates only accumulate in memory.
    """

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.updates = tf.Variable(0, dtype=tf.int64, trainable=False, name="guard_updates")
        self.first_bad = tf.Variable(0, dtype=tf.int64, trainable=False, name="guard_first_bad")
        self.bad_values = tf.Variable(tf.zeros([len(self.names)]), trainable=False, name="guard_bad_values")

    def record(self, metrics: dict[str, tf.Tensor]) -> None:
        """Count one update and keep its metrics if it is the first non-finite one."""
        count = self.updates.assign_add(1)
        values = tf.stack([tf.cast(metrics[k], tf.float32) for k in self.names])
        first = tf.logical_and(tf.logical_not(tf.reduce_all(tf.math.is_finite(values))), tf.equal(self.first_bad, 0))
        self.first_bad.assign(tf.where(first, count, self.first_bad))
        self.bad_values.assign(tf.where(first, values, self.bad_values))

    def start(self, updates_done: int) -> None:
        """Number the next update ``updates_done + 1`` (a resumed run continues its count)."""
        self.updates.assign(updates_done)
        self.first_bad.assign(0)

    def check(self) -> None:
        """Raise NonFiniteError naming the first bad update and its non-finite metrics."""
        bad = int(self.first_bad.numpy())
        if bad:
            values = self.bad_values.numpy()
            parts = [f"train/{name} = {value}" for name, value in zip(self.names, values) if not np.isfinite(value)]
            raise NonFiniteError(f"update {bad}: non-finite {', '.join(parts)}")
