"""Checkpoints that let a run stop (Ctrl-C, SIGTERM, a crash) and continue exactly.

A checkpoint is a ``tf.train.Checkpoint`` in ``RUN_DIR/checkpoints/ckpt-<update>``,
managed by a ``tf.train.CheckpointManager`` that keeps the newest ``keep_checkpoints``.
It holds everything the next update depends on:

* the model's weights (keyed by variable path) and the optimizer (``iterations``,
  which also drives the linear learning-rate schedule, and its RMSprop/Adam slots);
* the trainer's own TensorFlow state (the fused loop's env state and generator);
* as JSON in a ``PythonState`` ([`HostState`][a2c.run.checkpoint.HostState]): the run driver's counters, timers
  and recent-episodes window, the byte size of every log file (so a resume can cut
  the logs back to exactly this point), and the trainer's host state (the standard
  trainer's collector: carried observation, sampler state and an env snapshot,
  [`a2c.envs.state`][a2c.envs.state]).

Why a checkpoint is never half-written or corrupt when picked: TensorFlow writes the
data into ``ckpt-N_temp/`` and only then merges/renames it to ``ckpt-N.index`` and
``ckpt-N.data-*``; the manager's index file ``checkpoint`` (the only place
``latest_checkpoint`` comes from) is updated after that, by write-then-rename
(``file_io.atomic_write_string_to_file``), and before old checkpoints are deleted.
A crash mid-save therefore leaves the index naming the previous, complete checkpoint;
the orphaned files are removed on resume
([`RunCheckpoint.remove_orphans`][a2c.run.checkpoint.RunCheckpoint.remove_orphans]).
[`RunCheckpoint.save`][a2c.run.checkpoint.RunCheckpoint.save] refuses non-finite weights, so a diverged model never
replaces the last good checkpoint.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from a2c.common.errors import NonFiniteError, RunDirError

CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_NAME = "ckpt"
HOST_STATE_FORMAT = 2


class HostState(tf.train.experimental.PythonState):
    """Python-side state (a JSON-able dict) stored inside the TensorFlow checkpoint, so
    that weights and counters can never come from two different saves."""

    def __init__(self) -> None:
        self.value: dict[str, Any] = {}

    def serialize(self) -> bytes:
        return json.dumps(self.value, separators=(",", ":")).encode()

    def deserialize(self, string_value: bytes) -> None:
        self.value = json.loads(string_value)


class RunCheckpoint:
    """The run's CheckpointManager plus the checks around it."""

    def __init__(
        self,
        run_dir: Path,
        model: keras.Model,
        optimizer: keras.optimizers.Optimizer,
        keep: int,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.directory = Path(run_dir) / CHECKPOINT_DIR
        self.host = HostState()
        self.checkpoint = tf.train.Checkpoint(
            # Keras 3 models are not tracked by tf.train.Checkpoint: list the weights.
            model_weights={v.path: v for v in model.weights},
            optimizer=optimizer,
            host=self.host,
            **(extra or {}),
        )
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, str(self.directory), max_to_keep=keep, checkpoint_name=CHECKPOINT_NAME
        )
        self._variables = [*model.weights, *optimizer.variables]

    @property
    def latest(self) -> str | None:
        return self.manager.latest_checkpoint

    @staticmethod
    def latest_update(run_dir: Path) -> int | None:
        """The update of the run's newest complete checkpoint, without building a model."""
        path = tf.train.latest_checkpoint(str(Path(run_dir) / CHECKPOINT_DIR))
        return checkpoint_update(path) if path else None

    def save(self, update: int, host_state: dict[str, Any]) -> str:
        """Write ``ckpt-<update>``, refusing non-finite weights (the last good one stays)."""
        self._set_host(update, host_state)
        return self.manager.save(checkpoint_number=update)

    def write(self, prefix: str | Path, update: int, host_state: dict[str, Any]) -> str:
        """Write the same state to ``prefix`` (``prefix.index``, ``prefix.data-*``) outside the
        run's managed checkpoints: a saved agent ([`a2c.api.agent.A2C.save`][a2c.api.agent.A2C.save])."""
        self._set_host(update, host_state)
        return self.checkpoint.write(str(prefix))

    def read(self, prefix: str | Path) -> dict[str, Any]:
        """Load a state written by [`write`][a2c.run.checkpoint.RunCheckpoint.write]; return its host state."""
        self.checkpoint.read(str(prefix)).assert_existing_objects_matched()
        return self._host_value(str(prefix))

    def _set_host(self, update: int, host_state: dict[str, Any]) -> None:
        bad = [v.path for v in self._variables if not np.all(np.isfinite(np.asarray(v)))]
        if bad:
            raise NonFiniteError(f"update {update}: non-finite values in {', '.join(bad[:3])}")
        self.host.value = {"format": HOST_STATE_FORMAT, **host_state}

    def _host_value(self, path: str) -> dict[str, Any]:
        if self.host.value.get("format") != HOST_STATE_FORMAT:
            raise RunDirError(f"{path} was written by an incompatible version of a2c")
        return self.host.value

    def restore(self) -> dict[str, Any]:
        """Load the newest checkpoint into the model, optimizer and ``extra``; return the
        host state."""
        path = self.latest
        if path is None or not Path(path + ".index").is_file():
            raise RunDirError(f"{self.directory} holds no complete checkpoint to resume from")
        self.remove_orphans(checkpoint_update(path))
        self.checkpoint.restore(path).assert_existing_objects_matched()
        return self._host_value(path)

    def remove_orphans(self, latest_update: int) -> None:
        """Delete what a crash mid-save left behind: ``*_temp`` folders, the index's
        temporary copies, and checkpoints newer than the index's latest (never listed,
        so never read)."""
        for item in self.directory.iterdir():
            if item.is_dir() and item.name.endswith("_temp"):
                shutil.rmtree(item, ignore_errors=True)
                continue
            if item.is_file() and item.name.startswith("checkpoint.tmp"):
                item.unlink(missing_ok=True)
                continue
            m = re.match(rf"{CHECKPOINT_NAME}-(\d+)\.(index|data-.*)$", item.name)
            if m and int(m.group(1)) > latest_update:
                item.unlink(missing_ok=True)


def checkpoint_update(path: str) -> int:
    """``.../ckpt-120`` -> 120."""
    return int(path.rsplit("-", 1)[1])
