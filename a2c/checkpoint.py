"""Checkpoints that let a run stop (Ctrl-C, SIGTERM, a crash) and continue exactly.

A checkpoint is a ``tf.train.Checkpoint`` in ``RUN_DIR/checkpoints/ckpt-<update>``,
managed by a ``tf.train.CheckpointManager`` that keeps the newest ``keep_checkpoints``.
It holds everything the next update depends on:

* the model's weights (keyed by variable path) and the optimizer (``iterations``,
  which also drives the linear learning-rate schedule, and its RMSprop/Adam slots);
* the action sampler's ``tf.random.Generator`` state;
* as JSON in a ``PythonState`` (:class:`HostState`): the loop's counters and timers,
  the last-100-episodes window, the byte size of every log file (so a resume can cut
  the logs back to exactly this point), the rollout collector's carried observation
  and ``prev_done``, and a snapshot of the vector env (:func:`snapshot_env`).

Why a checkpoint is never half-written or corrupt when picked: TensorFlow writes the
data into ``ckpt-N_temp/`` and only then merges/renames it to ``ckpt-N.index`` and
``ckpt-N.data-*``; the manager's index file ``checkpoint`` (the only place
``latest_checkpoint`` comes from) is updated after that, by write-then-rename
(``file_io.atomic_write_string_to_file``), and before old checkpoints are deleted.
A crash mid-save therefore leaves the index naming the previous, complete checkpoint;
the orphaned files are removed on resume (:meth:`RunCheckpoint.remove_orphans`).

Why the check for non-finite numbers sits where it does: :class:`FiniteGuard` records
the first bad update inside the compiled update (no device-to-host copy per update);
the host reads that flag only where it reads numbers anyway (log, evaluation,
checkpoint), and :meth:`RunCheckpoint.save` additionally refuses non-finite weights,
so a diverged model never replaces the last good checkpoint.
"""

from __future__ import annotations

import base64
import enum
import json
import re
import shutil
import signal
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf

from a2c.errors import A2CError, RunDirError

CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_NAME = "ckpt"
HOST_STATE_FORMAT = 1


class NonFiniteError(A2CError, FloatingPointError):
    """A loss, a gradient or a weight became NaN or infinite; training stopped."""


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on SIGINT/SIGTERM (or a KeyboardInterrupt); says how to resume.

    A KeyboardInterrupt so that callers that do not know it (a notebook, ``except
    Exception`` blocks) still treat it as an interruption, not an error.
    """

    def __init__(self, message: str, *, signum: int, run_dir: Path, checkpoint_update: int | None) -> None:
        super().__init__(message)
        self.signum = signum
        self.run_dir = run_dir
        self.checkpoint_update = checkpoint_update

    @property
    def exit_code(self) -> int:
        """The shell's convention for death by a signal: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + int(self.signum)


# ----------------------------------------------------------------------------------------
# Finite checks inside the compiled update.

class FiniteGuard:
    """Remember, on the device, the first update whose metrics (losses, entropy, gradient
    norm, ...) were not all finite, and their values.

    The compiled update calls :meth:`record` (graph code) on its metrics. Non-finite
    gradients show up as a non-finite ``grad_norm`` (the global norm of all of them),
    so checking the metrics covers losses and gradients. Reading the flag costs a
    device-to-host copy, so :meth:`check` is called only where the loop reads numbers
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
        first = tf.logical_and(tf.logical_not(tf.reduce_all(tf.math.is_finite(values))),
                               tf.equal(self.first_bad, 0))
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
            parts = [f"train/{name} = {value}" for name, value in zip(self.names, values)
                     if not np.isfinite(value)]
            raise NonFiniteError(f"update {bad}: non-finite {', '.join(parts)}")


# ----------------------------------------------------------------------------------------
# Environment snapshots.
#
# Gymnasium has no get/set-state API, so the env's state is taken from its objects'
# attributes: every wrapper layer, the base vector env and, for a SyncVectorEnv, each
# sub-env's wrapper stack. Plain data (numbers, arrays, numpy Generators, deques, ...)
# is saved; configuration (spaces, specs, metadata, functions, enums) is skipped; any
# other object (a Box2D world, a pygame surface) cannot be saved, and the snapshot
# lists it as ``opaque``.

_SKIPPED_ATTRS = frozenset({"spec", "metadata", "_metadata", "render_mode", "env_fns", "_saved_kwargs",
                            "_ezpickle_args", "_ezpickle_kwargs", "_cached_spec"})
EnvLike = gym.Env | gym.vector.VectorEnv


class _Opaque(Exception):
    """A value that is not plain data."""


def _is_env(value: Any) -> bool:
    return isinstance(value, (gym.Env, gym.vector.VectorEnv))


def _is_env_list(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(_is_env(v) for v in value)


def _is_config(name: str, value: Any) -> bool:
    return (name in _SKIPPED_ATTRS or callable(value)
            or isinstance(value, (gym.spaces.Space, gym.envs.registration.EnvSpec, enum.Enum)))


def env_layers(env: EnvLike, path: str = "env") -> Iterator[tuple[str, Any]]:
    """Every object of an env stack with a stable path: ``env``, ``env.env``,
    ``env.env.envs[0]``, ``env.env.envs[0].env``, ..."""
    yield path, env
    for name, value in vars(env).items():
        if _is_env(value):
            yield from env_layers(value, f"{path}.{name}")
        elif _is_env_list(value):
            for i, sub in enumerate(value):
                yield from env_layers(sub, f"{path}.{name}[{i}]")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def encode(value: Any) -> Any:
    """Plain data -> JSON-able, bit-exact (arrays as raw bytes); raise _Opaque otherwise."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise _Opaque
        return {"ndarray": [value.dtype.str, list(value.shape), _b64(np.ascontiguousarray(value).tobytes())]}
    if isinstance(value, np.generic):
        if value.dtype.hasobject:
            raise _Opaque
        return {"scalar": [value.dtype.str, _b64(value.tobytes())]}
    if isinstance(value, np.random.Generator):
        return {"rng": encode(value.bit_generator.state)}
    if isinstance(value, deque):
        return {"deque": [encode(v) for v in value], "maxlen": value.maxlen}
    if isinstance(value, tuple):
        return {"tuple": [encode(v) for v in value]}
    if isinstance(value, list):
        return {"list": [encode(v) for v in value]}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"dict": {k: encode(v) for k, v in value.items()}}
    raise _Opaque


def decode(data: Any) -> Any:
    """Inverse of :func:`encode`."""
    if not isinstance(data, dict):
        return data
    if "ndarray" in data:
        dtype, shape, raw = data["ndarray"]
        return np.frombuffer(base64.b64decode(raw), dtype=np.dtype(dtype)).reshape(shape).copy()
    if "scalar" in data:
        dtype, raw = data["scalar"]
        return np.frombuffer(base64.b64decode(raw), dtype=np.dtype(dtype))[0]
    if "rng" in data:
        state = decode(data["rng"])
        bit_generator = getattr(np.random, state["bit_generator"])()
        bit_generator.state = state
        return np.random.Generator(bit_generator)
    if "deque" in data:
        return deque((decode(v) for v in data["deque"]), maxlen=data["maxlen"])
    if "tuple" in data:
        return tuple(decode(v) for v in data["tuple"])
    if "list" in data:
        return [decode(v) for v in data["list"]]
    if "dict" in data:
        return {k: decode(v) for k, v in data["dict"].items()}
    raise ValueError(f"not an encoded value: {sorted(data)}")


def snapshot_env(env: EnvLike) -> dict[str, Any]:
    """The state of a vector env stack as JSON-able data.

    ``opaque`` lists the attributes that could not be captured; if it is not empty the
    env cannot be restored exactly (see :func:`restore_env`).
    """
    layers: dict[str, Any] = {}
    opaque: list[str] = []
    for path, obj in env_layers(env):
        attrs: dict[str, Any] = {}
        for name, value in vars(obj).items():
            if _is_env(value) or _is_env_list(value) or _is_config(name, value):
                continue
            try:
                attrs[name] = encode(value)
            except _Opaque:
                opaque.append(f"{path}.{name} ({type(value).__name__})")
        layers[path] = {"type": type(obj).__qualname__, "attrs": attrs}
    return {"layers": layers, "opaque": opaque}


def _assign(obj: Any, name: str, value: Any) -> None:
    """Set an attribute, in place where possible: the env may hold other references to
    the same array or Generator, and those must see the restored value too."""
    current = getattr(obj, name, None)
    if isinstance(current, np.random.Generator) and isinstance(value, np.random.Generator):
        current.bit_generator.state = value.bit_generator.state
    elif (isinstance(current, np.ndarray) and isinstance(value, np.ndarray) and current.flags.writeable
          and current.shape == value.shape and current.dtype == value.dtype):
        current[...] = value
    elif isinstance(current, deque) and isinstance(value, deque) and current.maxlen == value.maxlen:
        current.clear()
        current.extend(value)
    else:
        setattr(obj, name, value)


def restore_env(env: EnvLike, snapshot: dict[str, Any]) -> None:
    """Put a freshly made (and reset) env stack back into the snapshot's state.

    Only the plain-data attributes are restored; when the snapshot lists opaque ones
    the caller must reset the episodes in progress (:func:`restart_episodes`).
    """
    layers = dict(env_layers(env))
    saved = snapshot["layers"]
    mismatch = sorted(set(layers) ^ set(saved)) or [
        p for p in saved if type(layers[p]).__qualname__ != saved[p]["type"]]
    if mismatch:
        raise RunDirError(f"the checkpoint's environment does not match this one (at {mismatch[0]})")
    for path, layer in saved.items():
        for name, data in layer["attrs"].items():
            _assign(layers[path], name, decode(data))


# ----------------------------------------------------------------------------------------
# The checkpoint itself.

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

    def __init__(self, run_dir: Path, model: keras.Model, optimizer: keras.optimizers.Optimizer,
                 sampler: tf.random.Generator, keep: int) -> None:
        self.directory = Path(run_dir) / CHECKPOINT_DIR
        self.host = HostState()
        self.checkpoint = tf.train.Checkpoint(
            # Keras 3 models are not tracked by tf.train.Checkpoint: list the weights.
            model_weights={v.path: v for v in model.weights},
            optimizer=optimizer, sampler=sampler, host=self.host)
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(self.directory), max_to_keep=keep,
                                                  checkpoint_name=CHECKPOINT_NAME)
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
        bad = [v.path for v in self._variables if not np.all(np.isfinite(np.asarray(v)))]
        if bad:
            raise NonFiniteError(f"update {update}: non-finite values in {', '.join(bad[:3])}")
        self.host.value = {"format": HOST_STATE_FORMAT, **host_state}
        return self.manager.save(checkpoint_number=update)

    def restore(self) -> dict[str, Any]:
        """Load the newest checkpoint into the model, optimizer and sampler; return the
        host state."""
        path = self.latest
        if path is None or not Path(path + ".index").is_file():
            raise RunDirError(f"{self.directory} holds no complete checkpoint to resume from")
        self.remove_orphans(checkpoint_update(path))
        self.checkpoint.restore(path).assert_existing_objects_matched()
        if self.host.value.get("format") != HOST_STATE_FORMAT:
            raise RunDirError(f"{path} was written by an incompatible version of a2c")
        return self.host.value

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


# ----------------------------------------------------------------------------------------
# Signals.

class StopSignals:
    """SIGINT/SIGTERM handling for the training loop.

    While ``deferred`` (the update loop) the first signal is only recorded: the loop
    looks at it after each update, the one point where weights, optimizer, RNGs, env
    and logs agree, saves a checkpoint there and stops. Stopping mid-rollout instead
    would leave the env some steps ahead of any state worth saving. A second signal
    raises KeyboardInterrupt at once (the user insists), and so does any signal once
    ``deferred`` is off (after the final checkpoint, nothing can be lost).

    Handlers can only be installed from the main thread; elsewhere this does nothing
    and Ctrl-C behaves as usual.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self.deferred = True
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous.clear()

    def request(self, signum: int) -> None:
        """Ask the loop to stop after the current update (as the first signal does)."""
        if self.signum is None:
            self.signum = signum

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = self.signum is None
        self.request(signum)
        if not (self.deferred and first):
            raise KeyboardInterrupt(signal.Signals(signum).name)
