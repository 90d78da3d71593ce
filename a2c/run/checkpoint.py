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

Damaged checkpoints (a file cut short by a full disk or a killed copy, bytes changed on the way):
[`RunCheckpoint.restore`][a2c.run.checkpoint.RunCheckpoint.restore] reads every tensor of a checkpoint back before
using it (TensorFlow checks each one's CRC32C), newest first, and resumes from the newest intact one. The damaged
newer ones are moved aside into ``checkpoints/damaged/`` (never deleted: a resumed run would otherwise write its own
``ckpt-N`` over them) and the index is rewritten to name what is left; the driver says so in one line,
with the updates that are trained again ([`Recovery`][a2c.run.checkpoint.Recovery]). When none is intact, a
[`RunDirError`][a2c.common.errors.RunDirError] says so and nothing is moved. An index file that cannot be read is
rebuilt from the checkpoints on disk.

(About 300 lines: saving, restoring and recovering from damage all read and write the manager's index;
split, two modules would have to agree on it.)
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from a2c.common.errors import NonFiniteError, RunDirError, WriteError
from a2c.common.files import atomic_write_text, write_failure

CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_NAME = "ckpt"
INDEX_FILE = "checkpoint"  # tf.train.CheckpointManager's index of the checkpoints it keeps
DAMAGED_DIR = "damaged"
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
        self.keep = keep
        self.index_copy: Path | None = None
        if (self.directory / INDEX_FILE).is_file() and read_index(self.directory) is None:
            # TensorFlow's manager cannot start on an index it cannot parse: keep it aside (restore() rebuilds
            # the index from the checkpoints on disk and says so).
            self.index_copy = self.directory / DAMAGED_DIR / f"{INDEX_FILE}.{time.strftime('%Y%m%d-%H%M%S')}"
            self.index_copy.parent.mkdir(exist_ok=True)
            (self.directory / INDEX_FILE).replace(self.index_copy)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, str(self.directory), max_to_keep=keep, checkpoint_name=CHECKPOINT_NAME
        )
        self._variables = [*model.weights, *optimizer.variables]
        self.recovery: Recovery | None = None  # set by restore()

    @property
    def latest(self) -> str | None:
        return self.manager.latest_checkpoint

    @staticmethod
    def latest_update(run_dir: Path) -> int | None:
        """The update of the run's newest checkpoint (named by the index, or on disk when the index
        cannot be read), without building a model or reading the checkpoint's data."""
        listed, _ = listed_checkpoints(Path(run_dir) / CHECKPOINT_DIR)
        return checkpoint_update(listed[-1]) if listed else None

    def save(self, update: int, host_state: dict[str, Any]) -> str:
        """Write ``ckpt-<update>``, refusing non-finite weights (the last good one stays)."""
        self._set_host(update, host_state)
        try:
            return self.manager.save(checkpoint_number=update)
        except (OSError, tf.errors.OpError) as e:  # a full disk: TensorFlow left the index and older files alone
            kept = self.manager.latest_checkpoint
            then = (
                f"{Path(kept).name} is intact: resume from it once there is room"
                if kept
                else "no earlier checkpoint was saved"
            )
            raise WriteError(
                f"cannot write checkpoint {CHECKPOINT_NAME}-{update} in {self.directory} ({write_failure(e)}); {then}"
            ) from None

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
        """Load the newest intact checkpoint into the model, optimizer and ``extra``; return the
        host state. Damaged newer checkpoints are moved aside first (``self.recovery`` says which)."""
        listed, index_readable = listed_checkpoints(self.directory)
        if not listed:
            raise RunDirError(f"{self.directory} holds no complete checkpoint to resume from")
        damaged: list[tuple[str, str]] = []
        for path in reversed(listed):
            problem = checkpoint_problem(path)
            if problem is None:
                break
            damaged.append((path, problem))
        else:
            what = "; ".join(f"{Path(p).name}: {problem}" for p, problem in damaged)
            kept = f"; the unreadable index was moved to {self.index_copy}" if self.index_copy else ""
            raise RunDirError(
                f"no intact checkpoint in {self.directory} to resume from ({what}); nothing was deleted{kept}"
            )
        if index_readable:
            self.remove_orphans(checkpoint_update(listed[-1]))
        self.recovery = Recovery(checkpoint_update(path), index_readable=index_readable, index_copy=self.index_copy)
        if damaged or not index_readable:
            for bad, problem in damaged:
                self.recovery.damaged.append((checkpoint_update(bad), problem, self._move_aside(bad, problem)))
            self._rewrite_index(listed[: len(listed) - len(damaged)])
        self.checkpoint.restore(path).assert_existing_objects_matched()
        return self._host_value(path)

    def warn_recovery(self, step: int, batch_size: int) -> None:
        """After [`restore`][a2c.run.checkpoint.RunCheckpoint.restore]: the one-line warning when it skipped
        damaged checkpoints or rebuilt the index (``step``: the restored global step). Said even when
        quiet: the run trains steps again."""
        note = self.recovery.message(step, batch_size) if self.recovery is not None else None
        if note:
            print(f"a2c train: warning: {note}", file=sys.stderr)

    def _move_aside(self, path: str, problem: str) -> Path:
        """Move checkpoint ``path``'s files into ``damaged/<name>/`` with a note of what is wrong."""
        name = Path(path).name
        target = self.directory / DAMAGED_DIR / name
        n = 1
        while target.exists():
            n += 1
            target = self.directory / DAMAGED_DIR / f"{name}.{n}"
        target.mkdir(parents=True)
        for item in self.directory.glob(f"{name}.*"):
            if re.fullmatch(rf"{re.escape(name)}\.(index|data-.*)", item.name):
                item.replace(target / item.name)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        atomic_write_text(target / "DAMAGED.txt", f"{stamp}: moved here by a2c train --resume: {problem}\n")
        return target

    def _rewrite_index(self, kept: list[str]) -> None:
        """Point the manager's index at ``kept`` (oldest first) and reload the manager, keeping the
        creation times by which it deletes the oldest."""
        state = read_index(self.directory)
        times = {}
        if state is not None:
            times = {
                Path(p).name: t for p, t in zip(state.all_model_checkpoint_paths, state.all_model_checkpoint_timestamps)
            }
        stamps = [times.get(Path(p).name) or Path(p + ".index").stat().st_mtime for p in kept]
        oldest = min(stamps) - 1.0
        preserved = state.last_preserved_timestamp if state and state.last_preserved_timestamp < oldest else oldest
        lines = [f'model_checkpoint_path: "{Path(kept[-1]).name}"']
        lines += [f'all_model_checkpoint_paths: "{Path(p).name}"' for p in kept]
        lines += [f"all_model_checkpoint_timestamps: {t!r}" for t in stamps]
        lines.append(f"last_preserved_timestamp: {preserved!r}")
        atomic_write_text(self.directory / INDEX_FILE, "\n".join(lines) + "\n")
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, str(self.directory), max_to_keep=self.keep, checkpoint_name=CHECKPOINT_NAME
        )

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


@dataclass
class Recovery:
    """What [`RunCheckpoint.restore`][a2c.run.checkpoint.RunCheckpoint.restore] found: the update it resumed from,
    whether the index could be read, and the damaged newer checkpoints, newest first, as (update, what is
    wrong, where their files were moved)."""

    update: int
    index_readable: bool = True
    damaged: list[tuple[int, str, Path]] = field(default_factory=list)
    index_copy: Path | None = None  # where an unreadable index was moved

    def message(self, step: int, batch_size: int) -> str | None:
        """One line for the user, or None when the newest checkpoint was used as it was;
        ``step`` is the restored checkpoint's global step."""
        if not self.damaged and self.index_readable:
            return None
        parts = []
        if not self.index_readable:
            moved = f", the unreadable one moved to {self.index_copy}" if self.index_copy else ""
            parts.append(f"the checkpoint index was rebuilt from the checkpoints on disk{moved}")
        for update, problem, moved_to in self.damaged:
            parts.append(
                f"checkpoint {CHECKPOINT_NAME}-{update} is damaged ({problem}); its files were moved to {moved_to}"
            )
        text = "; ".join(parts) + f"; resuming from {CHECKPOINT_NAME}-{self.update} (update {self.update}, step {step})"
        if self.damaged:
            newest = self.damaged[0][0]
            again = step + (newest - self.update) * batch_size
            text += f": updates {self.update + 1}-{newest} (steps {step}-{again}) are trained again"
        return text


def read_index(directory: Path) -> Any:
    """The manager's index (a ``CheckpointState``) or None when it is missing or cannot be parsed."""
    if not (directory / INDEX_FILE).is_file():
        return None
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")  # TensorFlow logs a parse error as a warning and returns None
    try:
        return tf.train.get_checkpoint_state(str(directory))
    except Exception:  # undecodable bytes
        return None
    finally:
        logger.setLevel(level)


def listed_checkpoints(directory: Path) -> tuple[list[str], bool]:
    """The checkpoints to resume from, oldest first, and whether the index named them: those of the
    index, or (index missing or unreadable) every ``ckpt-N.index`` on disk."""
    state = read_index(directory)
    if state is not None and state.all_model_checkpoint_paths:
        return [str(directory / Path(p).name) for p in state.all_model_checkpoint_paths], True
    found = []
    for item in directory.glob(f"{CHECKPOINT_NAME}-*.index") if directory.is_dir() else []:
        m = re.fullmatch(rf"{CHECKPOINT_NAME}-(\d+)\.index", item.name)
        if m:
            found.append(int(m.group(1)))
    return [str(directory / f"{CHECKPOINT_NAME}-{n}") for n in sorted(found)], False


def checkpoint_problem(path: str) -> str | None:
    """None when every tensor of checkpoint ``path`` reads back whole (TensorFlow checks each one's
    CRC32C), else what is wrong, in a few words."""
    if not Path(path + ".index").is_file():
        return "its .index file is missing"
    try:
        reader = tf.train.load_checkpoint(path)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except Exception as e:  # IndexError for a cut file, DataLossError, NotFoundError, ...
        detail = " ".join(str(e).replace(str(Path(path).parent) + "/", "").split()) or type(e).__name__
        if isinstance(e, IndexError) or "less bytes" in detail:
            return f"a file is cut short: {detail}"
        if "Checksum does not match" in detail:
            return "its data does not match its checksums"
        return detail[:200]
    return None


def checkpoint_update(path: str) -> int:
    """``.../ckpt-120`` -> 120."""
    return int(path.rsplit("-", 1)[1])
