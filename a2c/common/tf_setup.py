"""Import TensorFlow without its start-up chatter, and set it up for a run."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Protocol

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: XLA's CPU backend lowers dots, elementwise ops and reductions through YNNPACK (JAX's XLA lowers its
#: dots so by default; TensorFlow's has it behind an experimental flag): fused CartPole trains 4-5%
#: faster, a 64-member population 7% (alternated runs, issue 30; docs/fused.md). XLA reads its flags at
#: its first compilation, so setting them on import of this module (before any run) suffices. The flag
#: is process-wide: ``XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type=`` (empty) turns it off.
XLA_CPU_FLAGS = ("--xla_cpu_experimental_ynn_fusion_type=dot,eltwise,reduce",)


def add_xla_flags(flags: tuple[str, ...] = XLA_CPU_FLAGS) -> None:
    """Append ``flags`` to ``XLA_FLAGS``, each unless the user's ``XLA_FLAGS`` already sets that flag."""
    current = os.environ.get("XLA_FLAGS", "")
    missing = [f for f in flags if f.split("=", 1)[0] not in current]
    if missing:
        os.environ["XLA_FLAGS"] = " ".join([current, *missing]).strip()


add_xla_flags()


@contextlib.contextmanager
def _stderr_fd_silenced() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for a moment.

    TensorFlow's C++ runtime logs CUDA and oneDNN notices straight to fd 2 before its
    log-level variable is read; on a CPU-only machine they are noise that would bury
    the one-line messages this CLI promises.
    """
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with its C++ start-up notices silenced (CLI, notebooks)."""
    # Listing devices runs the CUDA probe but leaves the runtime unstarted, so thread
    # counts can still be set afterwards ([`configure_tensorflow`][a2c.common.tf_setup.configure_tensorflow]).
    if "tensorflow" in sys.modules:
        return
    with _stderr_fd_silenced():
        import tensorflow as tf

        tf.config.list_physical_devices()


class RunSettings(Protocol):
    """What [`configure_tensorflow`][a2c.common.tf_setup.configure_tensorflow] reads of a run's config
    ([`a2c.config.schema.Config`][a2c.config.schema.Config])."""

    seed: int
    num_threads: int


def configure_tensorflow(cfg: RunSettings) -> None:
    """Seed every RNG and make ops deterministic; pin the thread count if TF allows.

    Thread counts can only be set before TensorFlow starts its runtime (a notebook or
    a test may already have), so a refusal there is not an error.
    """
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(cfg.seed)
    tf.config.experimental.enable_op_determinism()
    if cfg.num_threads > 0:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(cfg.num_threads)
            tf.config.threading.set_inter_op_parallelism_threads(cfg.num_threads)
        except RuntimeError:
            pass
