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
from typing import Any, Protocol

from a2c.config.schema import Config
from a2c.run.progress import Progress
from a2c.run.signals import StopSignals


class Scheduled(Protocol):
    """What a driver does at each point of the schedule."""

    stop: StopSignals

    def advance(self, updates: int) -> Any:
        """One call of ``updates`` updates; counts its episodes; returns what [`log`][a2c.run.schedule.Scheduled.log]
        needs."""

    def log(self, update: int, out: Any) -> None: ...

    def evaluate(self) -> bool | None:
        """A periodic evaluation; False stops training cleanly (a callback asked)."""

    def after_call(self, update: int, out: Any) -> bool | None:
        """After each call's bookkeeping: the user's callback. False stops training cleanly;
        a KeyboardInterrupt stops it as Ctrl-C does."""

    def save_checkpoint(self) -> None: ...

    def interrupted(self) -> BaseException:
        """The exception that ends a run stopped by a signal (after its checkpoint)."""


def updates_this_call(cfg: Config, p: Progress, per_call: int, target: int | None = None) -> int:
    """As many as a call takes, but ending at the last update and at evaluation steps."""
    k = min(per_call, (cfg.n_updates if target is None else target) - p.update)
    if p.next_eval is not None:
        k = min(k, max(math.ceil((p.next_eval - p.global_step) / cfg.batch_size), 1))
    return k


def run_schedule(
    cfg: Config,
    p: Progress,
    runner: Scheduled,
    per_call: int,
    compile_seconds: float | None,
    target: int | None = None,
) -> None:
    """Advance ``runner`` to update ``target`` (default ``cfg.n_updates``): a metrics row
    every ``log_every`` updates and at the end, an evaluation every ``eval_every`` steps, a
    checkpoint every ``checkpoint_every`` updates, at the end and when a signal (or a
    KeyboardInterrupt from a callback) asks to stop, which then raises
    ``runner.interrupted()``. A callback's False (from ``evaluate`` or ``after_call``)
    ends the schedule early, checkpointed, as if the budget were spent."""
    target = cfg.n_updates if target is None else target
    if compile_seconds is not None:
        p.train_seconds += compile_seconds
        p.warmup_seconds += compile_seconds
    tick = time.perf_counter()
    first = True
    while p.update < target:
        # STEP: k updates in one call, ending on evaluation steps.
        k = updates_this_call(cfg, p, per_call, target)
        out = runner.advance(k)
        done = p.update + k
        p.global_step += k * cfg.batch_size
        if first and compile_seconds is None:
            p.warmup_seconds += time.perf_counter() - tick
            p.warmup_steps += k * cfg.batch_size
        first = False
        # LOG: when a multiple of log_every was reached, and at the end.
        if done // cfg.log_every > p.update // cfg.log_every or done == target:
            now = time.perf_counter()
            p.train_seconds += now - tick
            tick = now
            runner.log(done, out)
        # EVALUATE: off the clock.
        go_on = True
        if p.next_eval is not None and p.global_step >= p.next_eval:
            p.train_seconds += time.perf_counter() - tick
            go_on = runner.evaluate() is not False
            while p.next_eval <= p.global_step:
                p.next_eval += cfg.eval_every
            tick = time.perf_counter()
        due = (
            cfg.checkpoint_every > 0 and done // cfg.checkpoint_every > p.update // cfg.checkpoint_every
        ) or done == target
        p.update = done
        # CALLBACK: the user's; False stops cleanly, KeyboardInterrupt as Ctrl-C.
        try:
            go_on = runner.after_call(done, out) is not False and go_on
        except KeyboardInterrupt:
            runner.stop.request(signal.SIGINT)
        # CHECKPOINT: every checkpoint_every updates, at the end, and when asked to stop.
        if due or not go_on or runner.stop.signum is not None:
            p.train_seconds += time.perf_counter() - tick
            runner.save_checkpoint()
            tick = time.perf_counter()
        if runner.stop.signum is not None:
            raise runner.interrupted()
        if not go_on:
            break
    p.train_seconds += time.perf_counter() - tick
