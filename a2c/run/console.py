"""What a training run shows while it runs: a progress bar on a terminal, plain lines elsewhere.

A tqdm bar redraws itself with carriage returns, which a log file, ``| tee``, CI or a
notebook cell turns into one huge line or nothing at all; there a line per evaluation
and at least every [`LINE_SECONDS`][a2c.run.console.LINE_SECONDS] seconds says how the run is doing instead.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm.auto import tqdm

LINE_SECONDS = 30.0


class Display:
    """Progress of one run in env steps; ``mode`` is "bar", "lines" or "off"."""

    def __init__(self, total: int, initial: int, mode: str, *, stream: TextIO | None = None) -> None:
        self.total, self.mode = total, mode
        self.stream = stream if stream is not None else sys.stdout
        self.steps = initial
        self.last_return: float | None = None
        self.last_eval: float | None = None
        self.eval_label = "greedy eval"  # the run's eval_policy (the driver sets it)
        self.steps_per_second: float | None = None
        self._last_line = time.monotonic()
        self._bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, disable=mode != "bar")

    @staticmethod
    def choose(progress: bool, quiet: bool) -> str:
        """A bar on a terminal, lines when stderr is not one, nothing when asked for none."""
        if quiet or not progress:
            return "off"
        return "bar" if sys.stderr.isatty() else "lines"

    def advance(self, steps: int) -> None:
        self.steps += steps
        self._bar.update(steps)
        if self.mode == "lines" and time.monotonic() - self._last_line >= LINE_SECONDS:
            self._line()

    def metrics(self, episode_return: float | None, steps_per_second: float) -> None:
        """The latest training return and throughput (shown on the bar, or on the next line)."""
        self.last_return, self.steps_per_second = episode_return, steps_per_second
        if episode_return is not None:
            self._bar.set_postfix(ret=f"{episode_return:.1f}", sps=f"{steps_per_second:.0f}", refresh=False)

    def evaluated(self, mean_return: float) -> None:
        self.last_eval = mean_return
        if self.mode == "lines":
            self._line()

    def _line(self) -> None:
        parts = [f"step {self.steps:,}/{self.total:,} ({100 * self.steps / max(self.total, 1):.0f}%)"]
        if self.last_return is not None:
            parts.append(f"return {self.last_return:.1f}")
        if self.last_eval is not None:
            parts.append(f"{self.eval_label} {self.last_eval:.1f}")
        if self.steps_per_second is not None:
            parts.append(f"{self.steps_per_second:,.0f} steps/s")
        print(", ".join(parts), file=self.stream, flush=True)
        self._last_line = time.monotonic()

    def close(self) -> None:
        self._bar.close()
