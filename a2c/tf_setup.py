"""Import TensorFlow without its start-up chatter."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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
    # counts can still be set afterwards (a2c.train.configure_tensorflow).
    if "tensorflow" in sys.modules:
        return
    with _stderr_fd_silenced():
        import tensorflow as tf

        tf.config.list_physical_devices()
