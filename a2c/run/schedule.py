"""When a run logs, evaluates, checkpoints and stops: one schedule for every driver.

The single-run driver ([`a2c.run.driver`][a2c.run.driver]) and the population driver
([`a2c.population.driver`][a2c.population.driver]) differ in what a call, a metrics row, an evaluation and a
checkpoint are, not in when they happen; exact resume relies on "when" depending only
on the counters a checkpoint restores ([`Progress`][a2c.run.progress.Progress]), so it is
written once, here.

The clock: ``train_seconds`` counts the calls, logging and compilation, not
evaluations or checkpoints; ``warmup_seconds`` is the compilation done up front, or
else the session's first call (tracing, XLA compilation).
"""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Callable
from typing import Any, Protocol

from a2c.config.schema import Config
from a2c.run.progress import Progress
from a2c.run.signals import StopSignals

Callback = Callable[[int, int], None]  # (update, global_step), called after each call


class Scheduled(Protocol):
    """What a driver does at each point of the schedule."""

    stop: StopSignals
    callback: Callback | None

    def advance(self, updates: int) -> Any:
        """One call of ``updates`` updates; counts its episodes; returns what [`log`][a2c.run.schedule.Scheduled.log]
        needs."""

    def log(self, update: int, out: Any) -> None: ...

    def evaluate(self) -> None: ...

    def save_checkpoint(self) -> None: ...

    def interrupted(self) -> BaseException:
        """The exception that ends a run stopped by a signal (after its checkpoint)."""


def updates_this_call(cfg: Config, p: Progress, per_call: int) -> int:
    """As many as a call takes, but ending at the last update and at evaluation steps."""
    k = min(per_call, cfg.n_updates - p.update)
    if p.next_eval is not None:
        k = min(k, max(math.ceil((p.next_eval - p.global_step) / cfg.batch_size), 1))
    return k


def run_schedule(cfg: Config, p: Progress, runner: Scheduled, per_call: int, compile_seconds: float | None) -> None:
    """Advance ``runner`` to ``cfg.n_updates``: a metrics row every ``log_every`` updates
    and at the end, an evaluation every ``eval_every`` steps, a checkpoint every
    ``checkpoint_every`` updates, at the end and when a signal (or a KeyboardInterrupt
    from the callback) asks to stop, which then raises ``runner.interrupted()``."""
    if compile_seconds is not None:
        p.train_seconds += compile_seconds
        p.warmup_seconds += compile_seconds
    tick = time.perf_counter()
    first = True
    while p.update < cfg.n_updates:
        # STEP: k updates in one call, ending on evaluation steps.
        k = updates_this_call(cfg, p, per_call)
        out = runner.advance(k)
        done = p.update + k
        p.global_step += k * cfg.batch_size
        if first and compile_seconds is None:
            p.warmup_seconds += time.perf_counter() - tick
            p.warmup_steps += k * cfg.batch_size
        first = False
        # LOG: when a multiple of log_every was reached, and at the end.
        if done // cfg.log_every > p.update // cfg.log_every or done == cfg.n_updates:
            now = time.perf_counter()
            p.train_seconds += now - tick
            tick = now
            runner.log(done, out)
        # EVALUATE: off the clock.
        if p.next_eval is not None and p.global_step >= p.next_eval:
            p.train_seconds += time.perf_counter() - tick
            runner.evaluate()
            while p.next_eval <= p.global_step:
                p.next_eval += cfg.eval_every
            tick = time.perf_counter()
        due = (
            cfg.checkpoint_every > 0 and done // cfg.checkpoint_every > p.update // cfg.checkpoint_every
        ) or done == cfg.n_updates
        p.update = done
        if runner.callback is not None:
            try:
                runner.callback(done, p.global_step)
            except KeyboardInterrupt:
                runner.stop.request(signal.SIGINT)
        # CHECKPOINT: every checkpoint_every updates, at the end, and when asked to stop.
        if due or runner.stop.signum is not None:
            p.train_seconds += time.perf_counter() - tick
            runner.save_checkpoint()
            tick = time.perf_counter()
        if runner.stop.signum is not None:
            raise runner.interrupted()
    p.train_seconds += time.perf_counter() - tick
