"""The run driver: one loop around any trainer, owning everything a run writes.

config -> trainer (envs, model, optimizer) -> run directory ([`a2c.run.run_dir`][a2c.run.run_dir]) ->
[advance -> log -> periodic eval -> checkpoint]* -> (keep_best: the best periodic
evaluation's weights, [`a2c.run.best`][a2c.run.best]) -> model.keras + SavedModel -> final evaluation
-> summary.json

A [`Trainer`][a2c.trainers.base.Trainer] supplies only its step: ``advance(k)`` performs ``k`` updates and
returns their metrics and the episodes that finished. The standard trainer
([`a2c.trainers.standard`][a2c.trainers.standard]) does one update per call, the fused one
([`a2c.trainers.fused`][a2c.trainers.fused]) many inside one compiled call; the driver decides how many so that calls
end on evaluation steps, and it does the rest the same way for both: the run directory,
metrics rows every ``log_every`` updates, evaluations every ``eval_every`` steps
([`a2c.run.evaluation`][a2c.run.evaluation]), checkpoints and exact resume
([`a2c.run.checkpoint`][a2c.run.checkpoint], the counters of [`a2c.run.progress`][a2c.run.progress]),
Ctrl-C/SIGTERM ([`a2c.run.signals`][a2c.run.signals]), the progress bar, the final files.
[`a2c.run.train.train`][a2c.run.train.train] and [`a2c.run.train.resume`][a2c.run.train.resume] start it.

When each of those happens is [`a2c.run.schedule`][a2c.run.schedule]'s, shared with the population driver
([`a2c.population.driver`][a2c.population.driver]); the clock (``train_seconds``, ``warmup_seconds``) is kept
there too, and ``steps_per_second`` leaves the warm-up out.

(About 300 lines: the driver loop with every file a run writes (the trainer protocol
it calls is [`a2c.trainers.base`][a2c.trainers.base]); split, the order of the final files would be read in two places.)
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from a2c.artifacts.evaluate import EVAL_SEED_BASE, EvalResult, final_eval_fields
from a2c.artifacts.export import SAVED_MODEL_DIR, export_saved_model
from a2c.artifacts.saving import MODEL_FILE, save_model
from a2c.common.errors import NonFiniteError, WriteError
from a2c.common.files import atomic_write_json, write_failure
from a2c.config.schema import Config
from a2c.run.best import LAST_MODEL_FILE, SELECTION_SEED_BASE, BestWeights
from a2c.run.callbacks import CallbackLike, as_callback, float_metrics
from a2c.run.checkpoint import RunCheckpoint
from a2c.run.console import Display
from a2c.run.evaluation import RunEvaluation, eval_columns, eval_summary
from a2c.run.logger import RunLogger, rewind_logs
from a2c.run.progress import Progress
from a2c.run.run_dir import CURVES_FILE, resume_command
from a2c.run.schedule import run_schedule
from a2c.run.signals import StopSignals, TrainingInterrupted
from a2c.trainers.base import StepOutput, Trainer


@dataclass
class TrainResult:
    run_dir: Path
    model: keras.Model
    summary: dict


class RunDriver:
    """One process's share of a run: restore when resuming, run the calls still to do,
    then write the final files."""

    def __init__(
        self, cfg: Config, run_dir: Path, trainer: Trainer, *, quiet: bool = False, callback: CallbackLike = None
    ) -> None:
        self.cfg, self.run_dir, self.trainer, self.quiet = cfg, run_dir, trainer, quiet
        self.callback = as_callback(callback)
        self.target = cfg.n_updates  # the update this session trains to (run() may set another)
        self.model = trainer.model
        # keep_best (a2c.run.best): the best periodic evaluation's weights, checkpointed with the rest;
        # its periodic evaluations play their own seeds, never the final evaluation's.
        self.best = BestWeights(trainer.model) if cfg.keep_best else None
        self.periodic_seed = SELECTION_SEED_BASE if cfg.keep_best else EVAL_SEED_BASE
        extra = {**trainer.checkpoint_objects(), **({"best_weights": self.best} if self.best else {})}
        self.checkpoints = RunCheckpoint(run_dir, trainer.model, trainer.optimizer, cfg.keep_checkpoints, extra)
        self.periodic = RunEvaluation(self.model, cfg, cfg.eval_episodes)
        self.progress = Progress(next_eval=cfg.eval_every if cfg.eval_every > 0 else None)
        self.saved_update: int | None = None  # the update of the newest checkpoint on disk
        self.stop = StopSignals()
        self.logger: RunLogger | None = None
        self.rows_logged = 0

    # -- checkpoints ----------------------------------------------------------------------

    def restore(self, prefix: str | Path | None = None) -> None:
        """Load the newest checkpoint and put the trainer and the logs back to that point;
        or, with ``prefix``, a state saved elsewhere (a saved agent: this run's logs start
        empty, its counters go on from the saved ones)."""
        host = self.checkpoints.restore() if prefix is None else self.checkpoints.read(prefix)
        self.progress = Progress.from_dict(host["progress"])
        self.checkpoints.warn_recovery(self.progress.global_step, self.cfg.batch_size)
        self.progress.resumed_at.append(self.progress.update)
        if self.best is not None:
            self.best.load_state(host.get("best"))
        for warning in self.trainer.load_state(host["trainer"]):
            if not self.quiet:
                print(f"a2c train: warning: {self.cfg.env_id}: {warning}", file=sys.stderr)
        if prefix is None:
            self.saved_update = self.progress.update
            rewind_logs(self.run_dir, host["logs"])

    def write_state(self, prefix: str | Path) -> None:
        """Write the whole training state to ``prefix`` (see [`restore`][a2c.run.driver.RunDriver.restore])."""
        self.checkpoints.write(prefix, self.progress.update, self.host_state({}))

    def save_checkpoint(self) -> None:
        """Checkpoint the state after update ``progress.update`` (at most once per update).

        The finite check comes first: a diverged model must not replace the last good
        checkpoint.
        """
        p = self.progress
        if self.saved_update == p.update:
            return
        self.trainer.check_finite()
        assert self.logger is not None  # run() opens it before the first update
        self.checkpoints.save(p.update, self.host_state(self.logger.file_sizes()))  # sizes: flushes the logs first
        self.saved_update = p.update
        if self.callback is not None:
            self.callback.on_checkpoint(p.update, p.global_step)

    def host_state(self, log_sizes: dict[str, int]) -> dict[str, Any]:
        """What a checkpoint holds besides the TensorFlow objects (JSON)."""
        return {
            "progress": self.progress.to_dict(),
            "logs": log_sizes,
            "trainer": self.trainer.state(),
            **({"best": self.best.state()} if self.best is not None else {}),
        }

    # -- the run --------------------------------------------------------------------------

    def run(self, hparams: dict[str, Any] | None, *, target: int | None = None, keep_open: bool = False) -> TrainResult:
        """Train to update ``target`` (default: the config's budget), then write the final files.

        ``keep_open``: leave the trainer (its envs, its compiled calls) open and the model
        at its last weights, so that another ``run`` with a later ``target`` continues
        exactly where this one ended (the object API's repeated ``learn``).
        """
        self.target = self.cfg.n_updates if target is None else target
        finished = False
        try:
            self.trainer.start(self.progress.update)
            self.logger = RunLogger(self.run_dir, hparams, self.trainer.metric_columns, eval_columns(self.cfg))
            if self.callback is not None:
                self.callback.on_training_start(self.cfg, self.run_dir, self.model)
            with self.stop:
                self._loop()
                self.stop.deferred = False  # all is checkpointed: from here a signal stops at once
                if self.stop.signum is not None:
                    raise self._interrupted()
                result = self._finish(keep_open)
            finished = True
            if self.callback is not None:
                self.callback.on_training_end(result.summary)
            return result
        except NonFiniteError as e:
            if self.saved_update is None:
                note = "no checkpoint had been saved yet"
            else:
                note = f"the last good checkpoint (update {self.saved_update}) is kept"
            raise NonFiniteError(
                f"{e}; training stopped, {note}. Try a lower --lr or check the environment's rewards"
            ) from None
        except KeyboardInterrupt as e:
            interrupted = e if isinstance(e, TrainingInterrupted) else self._interrupted()
            if self.logger is not None:
                self.logger.close()  # flushes what the curves are drawn from
                self._write_curves()
            raise interrupted from None
        finally:
            if not (keep_open and finished):  # a failed or stopped session is not continued in this process
                self.trainer.close()
            if self.logger is not None:
                self.logger.close()  # flushes; a no-op if _finish closed it

    def _interrupted(self) -> TrainingInterrupted:
        """The exception that ends a stopped run, saying how to continue it."""
        cfg, p = self.cfg, self.progress
        signum = self.stop.signum or signal.SIGINT
        name = signal.Signals(signum).name
        if self.saved_update is None:
            message = (
                f"stopped by {name} at update {p.update} of {self.target}, before any checkpoint was "
                "saved; start it again with --overwrite"
            )
        elif self.saved_update == p.update == self.target:
            message = (
                f"stopped by {name} after training ({p.global_step} steps), before the final files were "
                f"written; finish with: {resume_command(self.run_dir)}"
            )
        else:
            at = f"update {self.saved_update} of {self.target}"
            if self.saved_update == p.update:
                budget = cfg.total_steps if self.target == cfg.n_updates else self.target * cfg.batch_size
                at += f" (step {p.global_step} of {budget})"
            message = f"stopped by {name}; checkpoint at {at}. Continue with: {resume_command(self.run_dir)}"
        return TrainingInterrupted(message, signum=signum, run_dir=self.run_dir, checkpoint_update=self.saved_update)

    def _log_row(self, update: int, metrics: Mapping[str, Any], display: Display) -> None:
        p = self.progress
        self.rows_logged += 1
        assert self.logger is not None  # run() opens it before the first update
        self.logger.log_metrics(p.metrics_row(update, p.recent, p.episodes, metrics))
        display.metrics(p.recent.return_mean(), p.steps_per_second)

    def _evaluate(
        self, evaluation: RunEvaluation, seed: int = EVAL_SEED_BASE, *, log: bool = True
    ) -> tuple[EvalResult, EvalResult | None]:
        """An evaluation as ``eval_policy`` says (and the greedy one beside a sampled one), logged with the
        training clock at its step."""
        result, greedy = evaluation.play(seed)
        if log:
            assert self.logger is not None  # run() opens it before the first update
            self.logger.log_eval(self.progress.eval_row(eval_summary(result, greedy)))
        return result, greedy

    def _loop(self) -> None:
        cfg, p = self.cfg, self.progress
        self.display = Display(self.target * cfg.batch_size, p.global_step, Display.choose(cfg.progress, self.quiet))
        self.display.eval_label = f"{cfg.eval_policy} eval"
        try:
            compile_seconds = self.trainer.compile() if p.update < self.target else None
            run_schedule(cfg, p, self, self.trainer.updates_per_call, compile_seconds, self.target)
        finally:
            self.display.close()

    # -- what happens at each point of the schedule (a2c.run.schedule.Scheduled) --------------

    def advance(self, updates: int) -> StepOutput:
        """Collection, returns, loss and gradient steps: the trainer's."""
        p = self.progress
        out = self.trainer.advance(updates)
        for chunk in out.episodes:
            p.episodes += int(chunk[0])
            p.recent.add(*chunk)
        self.display.advance(updates * self.cfg.batch_size)
        return out

    def log(self, update: int, out: StepOutput) -> None:
        self.trainer.check_finite()  # the metrics are read here anyway
        self._log_row(update, out.metrics, self.display)

    def evaluate(self) -> bool | None:
        """As ``eval_policy`` says, one env and one seed per episode; the callback's answer."""
        self.trainer.check_finite()
        result, _ = self._evaluate(self.periodic, self.periodic_seed)
        if self.best is not None:
            self.best.offer(result.mean, self.progress.global_step)
        self.display.evaluated(result.mean)
        return self.callback.on_evaluation(self.progress.global_step, result) if self.callback is not None else None

    def after_call(self, update: int, out: StepOutput) -> bool | None:
        if self.callback is None:
            return None
        return self.callback.on_update(update, self.progress.global_step, float_metrics(out.metrics))

    def interrupted(self) -> TrainingInterrupted:
        return self._interrupted()

    def _finish(self, keep_open: bool = False) -> TrainResult:
        """Write model.keras, the SavedModel, the final evaluation and summary.json
        (``keep_open``: then put the last weights back, for training to go on)."""
        cfg, run_dir, model, p = self.cfg, self.run_dir, self.model, self.progress
        self.trainer.check_finite()
        last_weights = model.get_weights() if keep_open and self.best is not None else None
        # One compiled evaluation reads the model's variables: it scores the last weights and then the kept ones.
        evaluation = RunEvaluation(model, cfg, cfg.final_eval_episodes) if cfg.final_eval_episodes > 0 else None
        try:  # each file is written atomically: a full disk leaves the previous ones as they were
            kept = self._keep_best(evaluation)
            save_model(model, run_dir / MODEL_FILE)
            export_saved_model(model, run_dir / SAVED_MODEL_DIR, env_id=cfg.env_id, source=run_dir / MODEL_FILE)
        except (OSError, tf.errors.OpError) as e:
            raise WriteError(
                f"cannot write the model files in {run_dir} ({write_failure(e)}); training is checkpointed: "
                f"finish with {resume_command(run_dir)} once there is room"
            ) from None
        final: EvalResult | None = None
        final_greedy: EvalResult | None = None
        if evaluation is not None:
            final, final_greedy = self._evaluate(evaluation)
        assert self.logger is not None  # run() opens it before the first update
        self.logger.close()
        summary = {
            "env_id": cfg.env_id,
            "seed": cfg.seed,
            "trainer": self.trainer.name,
            "total_steps": p.global_step,
            "updates": p.update,
            "train_seconds": p.train_seconds,
            "steps_per_second": p.steps_per_second,
            "warmup_seconds": p.warmup_seconds,
            "episodes": p.episodes,
            "train_return_mean_last100": p.recent.return_mean(),
            "eval_policy": cfg.eval_policy,
            **final_eval_fields(final, final_greedy),
            **kept,
            "resumed_at_updates": p.resumed_at,
            **self.trainer.summary(),
            "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "python": sys.version.split()[0]},
        }
        atomic_write_json(run_dir / "summary.json", summary)
        self._write_curves()
        if last_weights is not None:
            model.set_weights(last_weights)
        return TrainResult(run_dir, model, summary)

    def _keep_best(self, evaluation: RunEvaluation | None) -> dict[str, Any]:
        """With keep_best: save the last weights (last_model.keras) and score them with ``evaluation``
        (the final evaluation's; None: no final evaluation), then give the model the best
        periodic evaluation's; return the summary fields that say so."""
        if self.best is None:
            return {}
        cfg, p = self.cfg, self.progress
        fields: dict[str, Any] = {"model_selection": "last weights (no periodic evaluation ran)"}
        if self.best.step is None:
            return fields
        save_model(self.model, self.run_dir / LAST_MODEL_FILE)
        last = self._evaluate(evaluation, log=False)[0] if evaluation is not None else None
        self.best.restore()
        return {
            "model_selection": "best periodic evaluation",
            "model_step": self.best.step,
            "selection_mean_return": self.best.mean_return,
            "selection_episodes": cfg.eval_episodes,
            "selection_seeds": [self.periodic_seed, self.periodic_seed + cfg.eval_episodes - 1],
            "last_model_step": p.global_step,
            "last_model_eval_mean_return": last.mean if last else None,
            "last_model_eval_std_return": last.std if last else None,
        }

    def _write_curves(self) -> None:
        """The run's learning curves as a PNG in the run directory, at the end and when
        stopped, so that every run leaves a picture (nothing to draw before the first row)."""
        if self.rows_logged or self.progress.resumed_at:
            from a2c.analysis.plotting import plot_runs

            plot_runs([self.run_dir], out=self.run_dir / CURVES_FILE)
