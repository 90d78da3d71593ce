"""Stopping training cleanly on SIGINT/SIGTERM, and the exception that says how to resume."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any


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

    def __enter__(self) -> StopSignals:
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
