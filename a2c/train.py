"""The training orchestrator that the command line and the notebook both call.

config -> seeding -> envs -> model -> optimizer ->
[rollout -> update -> log -> periodic eval -> checkpoint]* -> save -> final evaluation ->
summary.json

:func:`train` starts a run in a new run directory; :func:`resume` continues one from
its newest checkpoint, exactly where it stopped (:mod:`a2c.checkpoint` says what a
checkpoint holds). Ctrl-C and SIGTERM stop at the end of the current update with a
checkpoint written (:class:`~a2c.checkpoint.TrainingInterrupted`); NaN or infinite
losses/gradients stop training without checkpointing the broken model
(:class:`~a2c.checkpoint.NonFiniteError`).
"""

from __future__ import annotations

import shlex
import shutil
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
import tomli_w
from tqdm.auto import tqdm

from a2c.checkpoint import (CHECKPOINT_DIR, FiniteGuard, NonFiniteError, RunCheckpoint, StopSignals,
                            TrainingInterrupted, decode, encode, restore_env, snapshot_env)
from a2c.config import Config, make_config
from a2c.envs import make_vec_env, observation_scale
from a2c.errors import RunDirError
from a2c.evaluate import EVAL_SEED_BASE, EvalResult, evaluate_policy, final_eval_fields
from a2c.export import export_saved_model
from a2c.files import atomic_write, atomic_write_json, atomic_write_text
from a2c.learner import UPDATE_METRICS, make_act, make_greedy, make_optimizer, make_update
from a2c.logger import RunLogger, rewind_logs
from a2c.model import build_actor_critic
from a2c.rollout import RolloutCollector

Callback = Callable[[int, int], None]  # (update, global_step), called after each update


@dataclass
class TrainResult:
    run_dir: Path
    model: keras.Model
    summary: dict


def configure_tensorflow(cfg: Config) -> None:
    """Seed every RNG and make ops deterministic; pin the thread count if TF allows.

    Thread counts can only be set before TensorFlow starts its runtime (a notebook or
    a test may already have), so a refusal there is not an error.
    """
    keras.utils.set_random_seed(cfg.seed)
    tf.config.experimental.enable_op_determinism()
    if cfg.num_threads > 0:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(cfg.num_threads)
            tf.config.threading.set_inter_op_parallelism_threads(cfg.num_threads)
        except RuntimeError:
            pass


def default_run_dir(cfg: Config) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{cfg.env_id}__s{cfg.seed}__{stamp}"


def prepare_run_dir(cfg: Config, overwrite: bool = False) -> Path:
    """Create the run directory, refusing to mix a new run into an old one."""
    run_dir = Path(cfg.run_dir) if cfg.run_dir else default_run_dir(cfg)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"run directory {run_dir} exists and is not a directory")
    if run_dir.is_dir() and any(run_dir.iterdir()):
        if not overwrite:
            raise RunDirError(f"run directory {run_dir} already holds a run; pass --overwrite to replace it, "
                              f"--resume {shlex.quote(str(run_dir))} to continue it, or choose another --run-dir")
        for name in ("metrics.csv", "evaluations.csv", "summary.json", "config.toml", "model.keras"):
            (run_dir / name).unlink(missing_ok=True)
        for old in (run_dir / "tb").glob("events.*"):
            old.unlink()
        shutil.rmtree(run_dir / CHECKPOINT_DIR, ignore_errors=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def save_model(model: keras.Model, path: Path) -> None:
    atomic_write(path, lambda p: model.save(p), suffix=".keras")


def resume_command(run_dir: Path) -> str:
    return f"a2c train --resume {shlex.quote(str(run_dir))}"


@dataclass
class Progress:
    """What the loop counts; saved in every checkpoint so that a resumed run continues
    its step count, its logs' numbers and its evaluation schedule."""

    update: int = 0  # updates completed (logged, evaluated, and checkpointed if due)
    global_step: int = 0
    episodes: int = 0
    train_seconds: float = 0.0  # collection, updates, logging; evaluations and checkpoints excluded
    warmup_seconds: float = 0.0  # each session's first update (tracing, XLA compilation)
    warmup_steps: int = 0
    next_eval: int | None = None
    recent_returns: deque[float] = field(default_factory=lambda: deque(maxlen=100))
    recent_lengths: deque[int] = field(default_factory=lambda: deque(maxlen=100))
    resumed_at: list[int] = field(default_factory=list)  # the update each resumed session started from

    @property
    def steps_per_second(self) -> float:
        """Throughput without the warm-up updates."""
        return (self.global_step - self.warmup_steps) / max(self.train_seconds - self.warmup_seconds, 1e-9)

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "recent_returns": list(self.recent_returns),
                "recent_lengths": list(self.recent_lengths), "resumed_at": list(self.resumed_at)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Progress":
        return cls(**{**d, "recent_returns": deque(d["recent_returns"], maxlen=100),
                      "recent_lengths": deque(d["recent_lengths"], maxlen=100)})


def train(cfg: Config, *, overwrite: bool = False, quiet: bool = False,
          callback: Callback | None = None) -> TrainResult:
    """Train an agent as ``cfg`` says in a new run directory; return the model.

    ``callback(update, global_step)`` runs after each update; raising KeyboardInterrupt
    there stops training as Ctrl-C does. Stopping raises TrainingInterrupted once the
    checkpoint is written (continue with :func:`resume`).
    """
    cfg.validate()
    configure_tensorflow(cfg)
    env = make_vec_env(cfg.env_id, cfg.n_envs)  # may raise EnvError: before anything is written
    try:
        run_dir = prepare_run_dir(cfg, overwrite)
        cfg_dict = {**cfg.to_dict(), "run_dir": str(run_dir)}
        atomic_write_text(run_dir / "config.toml", tomli_w.dumps(cfg_dict))
        session = _Session(cfg, run_dir, env, quiet=quiet, callback=callback)
    except BaseException:
        env.close()
        raise
    return session.run(hparams=cfg_dict)


def resume(run_dir: str | Path, *, quiet: bool = False, progress: bool | None = None,
           callback: Callback | None = None) -> TrainResult:
    """Continue the run in ``run_dir`` from its newest checkpoint, with the run's own
    config.toml, up to its step budget; then write the model, final evaluation and
    summary as :func:`train` does. Only the cosmetic ``progress`` may be changed:
    anything else would make the result differ from an uninterrupted run.
    """
    run_dir = Path(run_dir)
    config_path = run_dir / "config.toml"
    if not config_path.is_file():
        raise RunDirError(f"{run_dir} is not a run directory (it has no config.toml)")
    if (run_dir / "summary.json").is_file():
        raise RunDirError(f"the run in {run_dir} has finished (it has a summary.json); nothing to resume")
    if RunCheckpoint.latest_update(run_dir) is None:
        raise RunDirError(f"{run_dir} has no checkpoint to resume from; start it again with --overwrite")
    cfg = make_config({"run_dir": str(run_dir), "progress": progress}, config_path)
    configure_tensorflow(cfg)
    env = make_vec_env(cfg.env_id, cfg.n_envs)
    try:
        session = _Session(cfg, run_dir, env, quiet=quiet, callback=callback)
        session.restore()
    except BaseException:
        env.close()
        raise
    return session.run(hparams=None)


class _Session:
    """One process's share of a run: build the pieces, restore them when resuming, run
    the updates still to do, then write the final files."""

    def __init__(self, cfg: Config, run_dir: Path, env: Any, *, quiet: bool, callback: Callback | None) -> None:
        self.cfg, self.run_dir, self.env, self.quiet, self.callback = cfg, run_dir, env, quiet, callback
        self.obs_dim = int(env.single_observation_space.shape[0])
        n_actions = int(env.single_action_space.n)
        obs_scale = observation_scale(env.single_observation_space) if cfg.obs_scaling == "bounds" else None
        self.model = build_actor_critic(self.obs_dim, n_actions, cfg.hidden_sizes, cfg.activation,
                                        seed=cfg.seed, obs_scale=obs_scale)
        optimizer = make_optimizer(cfg)
        self.guard = FiniteGuard(UPDATE_METRICS)
        self.update = make_update(self.model, optimizer, cfg, self.obs_dim, self.guard)
        act, sampler = make_act(self.model, cfg.n_envs, self.obs_dim, cfg.seed)
        self.collector = RolloutCollector(env, act, cfg.n_steps, cfg.seed)
        self.greedy_periodic = make_greedy(self.model, cfg.eval_episodes, self.obs_dim)
        self.checkpoints = RunCheckpoint(run_dir, self.model, optimizer, sampler, cfg.keep_checkpoints)
        self.progress = Progress(next_eval=cfg.eval_every if cfg.eval_every > 0 else None)
        self.saved_update: int | None = None  # the update of the newest checkpoint on disk
        self.stop = StopSignals()
        self.logger: RunLogger | None = None

    # -- checkpoints ----------------------------------------------------------------------

    def restore(self) -> None:
        """Load the newest checkpoint and put env, collector and logs back to that point.

        The env and collector were just built and reset with the run's seed; the
        snapshot then overwrites their state (physics, step counters, per-env RNGs,
        episode statistics, the carried observation). An env whose state cannot be
        saved (e.g. Box2D) instead starts new episodes from its restored RNGs.
        """
        host = self.checkpoints.restore()
        self.progress = Progress.from_dict(host["progress"])
        self.progress.resumed_at.append(self.progress.update)
        self.saved_update = self.progress.update
        restore_env(self.env, host["env"])
        opaque = host["env"]["opaque"]
        if opaque:
            obs, _ = self.env.reset()  # seed=None: continues the restored per-env RNG streams
            self.collector.next_obs = np.asarray(obs, np.float32)
            self.collector.prev_done = np.zeros(self.env.num_envs, bool)
            if not self.quiet:
                print(f"a2c train: warning: {self.cfg.env_id}'s state cannot be saved ({opaque[0]}); "
                      "the episodes in progress at the checkpoint restart, so this run will not match an "
                      "uninterrupted one exactly", file=sys.stderr)
        else:
            self.collector.next_obs = decode(host["collector"]["next_obs"])
            self.collector.prev_done = decode(host["collector"]["prev_done"])
        rewind_logs(self.run_dir, host["logs"])

    def save_checkpoint(self) -> None:
        """Checkpoint the state after update ``progress.update`` (at most once per update).

        The finite check comes first: a diverged model must not replace the last good
        checkpoint.
        """
        p = self.progress
        if self.saved_update == p.update:
            return
        self.guard.check()
        self.checkpoints.save(p.update, {
            "progress": p.to_dict(),
            "logs": self.logger.file_sizes(),  # flushes the CSVs and TensorBoard first
            "collector": {"next_obs": encode(self.collector.next_obs),
                          "prev_done": encode(self.collector.prev_done)},
            "env": snapshot_env(self.env),
        })
        self.saved_update = p.update

    # -- the run --------------------------------------------------------------------------

    def run(self, hparams: dict[str, Any] | None) -> TrainResult:
        self.guard.start(self.progress.update)
        try:
            self.logger = RunLogger(self.run_dir, hparams)
            with self.stop:
                self._loop()
                self.stop.deferred = False  # all is checkpointed: from here a signal stops at once
                if self.stop.signum is not None:
                    raise self._interrupted()
                return self._finish()
        except NonFiniteError as e:
            if self.saved_update is None:
                note = "no checkpoint had been saved yet"
            else:
                note = f"the last good checkpoint (update {self.saved_update}) is kept"
            raise NonFiniteError(f"{e}; training stopped, {note}. Try a lower --lr or check the "
                                 "environment's rewards") from None
        except KeyboardInterrupt as e:
            if isinstance(e, TrainingInterrupted):
                raise
            raise self._interrupted() from None
        finally:
            self.env.close()
            if self.logger is not None:
                self.logger.close()  # flushes; a no-op if _finish closed it

    def _interrupted(self) -> TrainingInterrupted:
        """The exception that ends a stopped run, saying how to continue it."""
        cfg, p = self.cfg, self.progress
        signum = self.stop.signum or signal.SIGINT
        name = signal.Signals(signum).name
        if self.saved_update is None:
            message = (f"stopped by {name} at update {p.update} of {cfg.n_updates}, before any checkpoint was "
                       "saved; start it again with --overwrite")
        elif self.saved_update == p.update == cfg.n_updates:
            message = (f"stopped by {name} after training ({p.global_step} steps), before the final files were "
                       f"written; finish with: {resume_command(self.run_dir)}")
        else:
            at = f"update {self.saved_update} of {cfg.n_updates}"
            if self.saved_update == p.update:
                at += f" (step {p.global_step} of {cfg.total_steps})"
            message = f"stopped by {name}; checkpoint at {at}. Continue with: {resume_command(self.run_dir)}"
        return TrainingInterrupted(message, signum=signum, run_dir=self.run_dir,
                                   checkpoint_update=self.saved_update)

    def _loop(self) -> None:
        cfg, p = self.cfg, self.progress
        show = cfg.progress and not self.quiet and sys.stderr.isatty()
        bar = tqdm(total=cfg.n_updates * cfg.batch_size, initial=p.global_step, unit="step",
                   disable=not show, dynamic_ncols=True)
        try:
            tick = time.perf_counter()
            first = p.update + 1
            for update_idx in range(first, cfg.n_updates + 1):
                # COLLECT: n_steps x n_envs transitions with the current policy.
                batch, finished = self.collector.collect()
                # UPDATE: returns, advantages, loss, gradient step (one compiled call).
                metrics = self.update(batch)
                p.global_step += cfg.batch_size
                p.episodes += len(finished.returns)
                p.recent_returns.extend(finished.returns)
                p.recent_lengths.extend(finished.lengths)
                bar.update(cfg.batch_size)
                if update_idx == first:
                    p.warmup_seconds += time.perf_counter() - tick
                    p.warmup_steps += cfg.batch_size
                # LOG: every log_every updates and at the end.
                if update_idx % cfg.log_every == 0 or update_idx == cfg.n_updates:
                    self.guard.check()  # the metrics are read here anyway
                    now = time.perf_counter()
                    p.train_seconds += now - tick
                    tick = now
                    row = {
                        "global_step": p.global_step, "update": update_idx,
                        "rollout/ep_return_mean": float(np.mean(p.recent_returns)) if p.recent_returns else "",
                        "rollout/ep_length_mean": float(np.mean(p.recent_lengths)) if p.recent_lengths else "",
                        "rollout/episodes": p.episodes,
                        **{f"train/{k}": float(v) for k, v in metrics.items()},
                        "time/steps_per_second": p.steps_per_second,
                        "time/elapsed_seconds": p.train_seconds,
                    }
                    self.logger.log_metrics(row)
                    if p.recent_returns:
                        bar.set_postfix(ret=f"{np.mean(p.recent_returns):.1f}",
                                        sps=f"{p.steps_per_second:.0f}", refresh=False)
                # EVALUATE: greedy, one env and one seed per episode.
                if p.next_eval is not None and p.global_step >= p.next_eval:
                    self.guard.check()
                    p.train_seconds += time.perf_counter() - tick
                    result = evaluate_policy(self.greedy_periodic, cfg.env_id, cfg.eval_episodes, EVAL_SEED_BASE)
                    self.logger.log_eval({"global_step": p.global_step,
                                          **{f"eval/{k}": v for k, v in result.summary().items()}})
                    while p.next_eval <= p.global_step:
                        p.next_eval += cfg.eval_every
                    tick = time.perf_counter()
                p.update = update_idx
                # CHECKPOINT: every checkpoint_every updates, at the end, and when asked to stop.
                if self.callback is not None:
                    try:
                        self.callback(update_idx, p.global_step)
                    except KeyboardInterrupt:
                        self.stop.request(signal.SIGINT)
                due = (cfg.checkpoint_every > 0 and update_idx % cfg.checkpoint_every == 0) \
                    or update_idx == cfg.n_updates
                if due or self.stop.signum is not None:
                    p.train_seconds += time.perf_counter() - tick
                    self.save_checkpoint()
                    tick = time.perf_counter()
                if self.stop.signum is not None:
                    raise self._interrupted()
            p.train_seconds += time.perf_counter() - tick
        finally:
            bar.close()

    def _finish(self) -> TrainResult:
        """Write model.keras, the SavedModel, the final evaluation and summary.json."""
        cfg, run_dir, model, obs_dim, p = self.cfg, self.run_dir, self.model, self.obs_dim, self.progress
        self.guard.check()
        save_model(model, run_dir / "model.keras")
        export_saved_model(model, run_dir / "saved_model", env_id=cfg.env_id)
        final: EvalResult | None = None
        if cfg.final_eval_episodes > 0:
            greedy_final = make_greedy(model, cfg.final_eval_episodes, obs_dim)
            final = evaluate_policy(greedy_final, cfg.env_id, cfg.final_eval_episodes, EVAL_SEED_BASE)
            self.logger.log_eval({"global_step": p.global_step,
                                  **{f"eval/{k}": v for k, v in final.summary().items()}})
        self.logger.close()
        summary = {
            "env_id": cfg.env_id,
            "seed": cfg.seed,
            "total_steps": p.global_step,
            "updates": cfg.n_updates,
            "train_seconds": p.train_seconds,
            "steps_per_second": p.steps_per_second,
            "warmup_seconds": p.warmup_seconds,
            "episodes": p.episodes,
            "train_return_mean_last100": float(np.mean(p.recent_returns)) if p.recent_returns else None,
            **final_eval_fields(final),
            "resumed_at_updates": p.resumed_at,
            "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "python": sys.version.split()[0]},
        }
        atomic_write_json(run_dir / "summary.json", summary)
        return TrainResult(run_dir, model, summary)
