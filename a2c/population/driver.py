"""A population run directory: [`a2c.population.loop.PopulationLoop`][a2c.population.loop.PopulationLoop] driven in
lock-step, with each member's files laid out as a single run's.

``a2c train --fused --seeds 0-63 [--sweep lr=...]`` calls [`train_population`][a2c.population.driver.train_population];
``a2c train --resume RUN`` on a population run calls [`resume_population`][a2c.population.driver.resume_population]. The
schedule (calls that end on evaluation steps, a metrics row every ``log_every``
updates, greedy evaluations every ``eval_every`` steps, checkpoints every
``checkpoint_every`` updates, at the end and on Ctrl-C/SIGTERM) is the single-run
driver's ([`a2c.run.driver`][a2c.run.driver]), written again here for members that all advance together
and are evaluated in one compiled call; the checkpoint is the same
[`RunCheckpoint`][a2c.run.checkpoint.RunCheckpoint], so a stopped population resumes exactly.
(~320 lines: the schedule, the files and resume belong together, as in [`a2c.run.driver`][a2c.run.driver].)
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
import tomli_w

from a2c.agent.learner import UPDATE_METRICS
from a2c.artifacts.evaluate import EVAL_SEED_BASE, EvalResult, final_eval_fields
from a2c.artifacts.saving import MODEL_FILE, save_model
from a2c.common.errors import ConfigError, EnvError, NonFiniteError, RunDirError
from a2c.common.files import atomic_write_json, atomic_write_text
from a2c.common.tf_setup import configure_tensorflow
from a2c.config.resolve import make_config
from a2c.config.schema import Config
from a2c.envs.tf_envs import TFEnv
from a2c.population.loop import PopulationLoop, eval_physics
from a2c.population.members import MEMBERS_DIR, POPULATION_FILE, member_configs, member_dir
from a2c.population.report import (
    POPULATION_CURVES,
    POPULATION_TABLE,
    SOLVED_AT,
    plot_population,
    population_groups,
    population_table,
)
from a2c.run.checkpoint import RunCheckpoint
from a2c.run.logger import RunLogger, rewind_logs
from a2c.run.progress import Progress, RecentEpisodes
from a2c.run.run_dir import prepare_run_dir, resume_command
from a2c.run.schedule import run_schedule
from a2c.run.signals import StopSignals, TrainingInterrupted
from a2c.trainers.fused import check_rollout_length, ported_env

Callback = Callable[[int, int], None]  # (update, global_step) after each call


def population_env(env_id: str) -> TFEnv:
    """The port a population trains on, or EnvError: populations are discrete-action only
    (their greedy evaluation and stacked sampling assume a categorical policy)."""
    env = ported_env(env_id)
    if env.continuous:
        raise EnvError(
            f"population training (--seeds/--sweep) supports discrete-action environments; "
            f"{env_id} has Box actions (train its seeds one by one with a2c train --fused)"
        )
    return env


class PopulationRun:
    """One population run directory: the loop above, lock-step for all members, and
    each member's files in ``members/<k>/`` in the layout of a single run (metrics.csv,
    evaluations.csv, tb/, config.toml, model.keras, summary.json), so that ``a2c
    evaluate``, ``a2c export`` and ``a2c plot`` take a member's directory as a run.

    The top level holds config.toml (the shared config), population.json (seeds, sweep,
    the members' seeds and values), checkpoints/ (all members at once, the
    [`RunCheckpoint`][a2c.run.checkpoint.RunCheckpoint] a single run uses), summary.json and
    population.md (per member and per swept setting: mean, std, min, fraction solved)
    and population_curves.png. Evaluations run every member in one compiled call
    ([`PopulationLoop.evaluate`][a2c.population.loop.PopulationLoop.evaluate]), from the initial states of gymnasium's
    episodes seeded ``EVAL_SEED_BASE + k``.
    """

    def __init__(
        self,
        base: Config,
        spec: dict[str, Any],
        run_dir: str | Path,
        *,
        quiet: bool = False,
        callback: Callback | None = None,
    ) -> None:
        self.base, self.spec, self.run_dir, self.quiet = base, spec, Path(run_dir), quiet
        self.callback = callback  # (update, global_step) after each call; KeyboardInterrupt stops as Ctrl-C
        self.members = member_configs(base, spec["seeds"], spec["sweep"])
        self.swept = tuple(spec["sweep"])
        self.env = population_env(base.env_id)
        self.loop = PopulationLoop(self.members, self.swept, self.env)
        self.progress = Progress(next_eval=base.eval_every if base.eval_every > 0 else None)
        self.recent = [RecentEpisodes() for _ in self.members]
        self.checkpoints = RunCheckpoint(
            self.run_dir,
            self.loop.model,
            self.loop.optimizer,
            base.keep_checkpoints,
            {
                "member_weights": list(self.loop.weights),
                "member_rngs": list(self.loop.rngs),
                "population_state": tf.nest.flatten(self.loop.state),
            },
        )
        self.saved_update: int | None = None
        self.loggers: list[RunLogger] = []
        self.episodes = np.zeros(len(self.members), np.int64)  # finished episodes per member

    def member_dir(self, k: int) -> Path:
        return member_dir(self.run_dir, k)

    # -- checkpoints ----------------------------------------------------------------------
    def restore(self) -> None:
        host = self.checkpoints.restore()
        self.progress = Progress.from_dict(host["progress"])
        self.checkpoints.warn_recovery(self.progress.global_step, self.base.batch_size)
        self.progress.resumed_at.append(self.progress.update)
        self.recent = [RecentEpisodes(chunks=c) for c in host["recent"]]
        self.episodes = np.array(host["episodes"], np.int64)
        self.saved_update = self.progress.update
        for k, sizes in enumerate(host["logs"]):
            rewind_logs(self.member_dir(k), sizes)

    def save_checkpoint(self) -> None:
        p = self.progress
        if self.saved_update == p.update:
            return
        self.checkpoints.save(
            p.update,
            {
                "progress": p.to_dict(),
                "recent": [[list(c) for c in r.chunks] for r in self.recent],
                "episodes": self.episodes.tolist(),
                "logs": [logger.file_sizes() for logger in self.loggers],
            },
        )
        self.saved_update = p.update

    # -- the loop -------------------------------------------------------------------------
    def run(self, new: bool) -> dict[str, Any]:
        for k, member in enumerate(self.members):
            self.member_dir(k).mkdir(parents=True, exist_ok=True)
            self.loggers.append(RunLogger(self.member_dir(k), member.to_dict() if new else None))
        self.stop = StopSignals()
        try:
            with self.stop:
                self._loop()
                self.stop.deferred = False
                return self._finish()
        finally:
            for logger in self.loggers:
                logger.close()

    def _check_finite(self, out: dict[str, np.ndarray], first: int, last: int) -> None:
        bad = ~(np.isfinite(out["total_loss"]) & np.isfinite(out["grad_norm"]))
        if bad.any():
            names = ", ".join(str(k) for k in np.flatnonzero(bad)[:8])
            note = (
                "no checkpoint had been saved yet"
                if self.saved_update is None
                else f"the last good checkpoint (update {self.saved_update}) is kept"
            )
            raise NonFiniteError(
                f"non-finite loss or gradient in updates {first}-{last} of member(s) {names}; "
                f"training stopped, {note}. Try a lower --lr (or drop it from the sweep)"
            )

    def _loop(self) -> None:
        cfg, p = self.base, self.progress
        compile_seconds = self.loop.compile() if p.update < cfg.n_updates else None
        self._physics = eval_physics(self.env, cfg.eval_episodes, EVAL_SEED_BASE) if p.next_eval else None
        run_schedule(cfg, p, self, cfg.fused_updates_per_call, compile_seconds)

    # -- what happens at each point of the schedule (a2c.run.schedule.Scheduled) --------------
    def advance(self, updates: int) -> dict[str, np.ndarray]:
        """``updates`` updates of every member in one compiled call."""
        p = self.progress
        out = {name: v.numpy() for name, v in self.loop.run(tf.constant(updates, tf.int32)).items()}
        self._check_finite(out, p.update + 1, p.update + updates)
        for recent, e, rs, ls in zip(self.recent, out["episodes"], out["return_sum"], out["length_sum"]):
            recent.add(float(e), float(rs), float(ls))
        self.episodes += out["episodes"].astype(np.int64)
        p.episodes = int(self.episodes.sum())
        return out

    def log(self, update: int, out: dict[str, np.ndarray]) -> None:
        self._log_rows(update, out)

    def evaluate(self) -> None:
        """Every member greedily, in one compiled call."""
        assert self._physics is not None  # the schedule evaluates only when p.next_eval was set
        self._evaluate(self._physics)

    def after_call(self, update: int, out: dict[str, np.ndarray]) -> None:
        if self.callback is not None:
            self.callback(update, self.progress.global_step)

    def interrupted(self) -> TrainingInterrupted:
        assert self.stop.signum is not None  # the schedule asks only once a stop was requested
        name = signal.Signals(self.stop.signum or signal.SIGINT).name
        return TrainingInterrupted(
            f"stopped by {name}; checkpoint at update {self.saved_update} of {self.base.n_updates}. "
            f"Continue with: {resume_command(self.run_dir)}",
            signum=self.stop.signum,
            run_dir=self.run_dir,
            checkpoint_update=self.saved_update,
        )

    def _say(self, text: str) -> None:
        if not self.quiet:
            print(text, flush=True)

    def _log_rows(self, update: int, out: dict[str, np.ndarray]) -> None:
        p = self.progress
        returns = []
        for k, logger in enumerate(self.loggers):
            ret = self.recent[k].return_mean()
            if ret is not None:
                returns.append(ret)
            # time/steps_per_second is per member (all members: x P).
            logger.log_metrics(
                p.metrics_row(
                    update, self.recent[k], int(self.episodes[k]), {name: out[name][k] for name in UPDATE_METRICS}
                )
            )
        if returns:
            self._say(
                f"step {p.global_step:,}/{self.base.n_updates * self.base.batch_size:,} per member, "
                f"{len(self.members)} members: return (last 100) mean {np.mean(returns):.1f}, "
                f"min {np.min(returns):.1f}; {p.steps_per_second * len(self.members):,.0f} steps/s"
            )

    def _evaluate(self, physics: np.ndarray) -> list[Any]:
        """Greedy episodes of every member from ``physics``; logged to each member's evaluations.csv."""
        p = self.progress
        returns, lengths = self.loop.evaluate(physics)
        seeds = [EVAL_SEED_BASE + i for i in range(physics.shape[0])]
        results = [EvalResult(r.tolist(), [int(x) for x in n], seeds) for r, n in zip(returns, lengths)]
        for logger, result in zip(self.loggers, results):
            logger.log_eval(p.eval_row(result.summary()))
        threshold = SOLVED_AT.get(self.base.env_id)
        means = np.array([r.mean for r in results])
        solved = f", {np.mean(means >= threshold):.0%} >= {threshold:g}" if threshold is not None else ""
        self._say(
            f"greedy evaluation ({physics.shape[0]} episodes) at step {p.global_step:,}: mean over members "
            f"{means.mean():.1f}, min {means.min():.1f}{solved}"
        )
        return results

    def _finish(self) -> dict[str, Any]:
        """Every member's model.keras and summary.json; the population's summary, table and plot."""
        cfg, p, model = self.base, self.progress, self.loop.model
        finals: list[Any] = [None] * len(self.members)
        if cfg.final_eval_episodes > 0:
            finals = self._evaluate(eval_physics(self.env, cfg.final_eval_episodes, EVAL_SEED_BASE))
        rows = []
        for k, member in enumerate(self.members):
            model.set_weights(self.loop.member_weights(k))
            save_model(model, self.member_dir(k) / MODEL_FILE)
            row = {
                "member": k,
                "seed": member.seed,
                **{name: getattr(member, name) for name in self.swept},
                **final_eval_fields(finals[k]),
                "train_return_mean_last100": self.recent[k].return_mean(),
            }
            atomic_write_json(
                self.member_dir(k) / "summary.json",
                {
                    "env_id": cfg.env_id,
                    "trainer": "population",
                    "population_run": str(self.run_dir),
                    "total_steps": p.global_step,
                    "updates": cfg.n_updates,
                    "train_seconds": p.train_seconds,
                    "steps_per_second": p.steps_per_second,
                    "warmup_seconds": p.warmup_seconds,
                    "episodes": int(self.episodes[k]),
                    **row,
                },
            )
            rows.append(row)
            self.loggers[k].close()
        summary = {
            "env_id": cfg.env_id,
            "trainer": "population",
            "members": len(self.members),
            "seeds": self.spec["seeds"],
            "sweep": self.spec["sweep"],
            "executor": "xla" if cfg.fused_xla else "graph",
            "total_steps_per_member": p.global_step,
            "total_steps": p.global_step * len(self.members),
            "updates": cfg.n_updates,
            "train_seconds": p.train_seconds,
            "warmup_seconds": p.warmup_seconds,
            "compile_seconds": p.warmup_seconds,
            "steps_per_second": p.steps_per_second * len(self.members),
            "resumed_at_updates": p.resumed_at,
            "solved_at": SOLVED_AT.get(cfg.env_id),
            "groups": population_groups(rows, self.swept, SOLVED_AT.get(cfg.env_id)),
            "member_results": rows,
            "traces": self.loop.traces,
            "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "python": sys.version.split()[0]},
        }
        atomic_write_json(self.run_dir / "summary.json", summary)
        atomic_write_text(self.run_dir / POPULATION_TABLE, population_table(summary, self.swept))
        plot_population(self.run_dir, len(self.members))
        return summary


def train_population(
    base: Config,
    seeds: Sequence[int],
    sweep: dict[str, list[Any]],
    *,
    overwrite: bool = False,
    quiet: bool = False,
    callback: Callback | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Train every member of ``seeds`` x ``sweep`` on ``base`` (a fused config) in a new
    run directory; returns (run directory, population summary). ``callback``: as for
    [`a2c.run.train.train`][a2c.run.train.train] (stopping raises
    [`TrainingInterrupted`][a2c.run.signals.TrainingInterrupted] once the checkpoint is written; continue with
    [`resume_population`][a2c.population.driver.resume_population])."""
    base.validate()
    if base.normalize_obs:
        raise ConfigError(
            "normalize_obs is not supported by population training (--seeds/--sweep): the members' statistics "
            "would be stacked but never updated; train the seeds one by one with a2c train --fused"
        )
    configure_tensorflow(base)
    spec: dict[str, Any] = {"seeds": list(seeds), "sweep": {k: list(v) for k, v in sweep.items()}}
    env = population_env(base.env_id)  # EnvError before anything is written
    for member in member_configs(base, spec["seeds"], spec["sweep"]):
        check_rollout_length(member, env)  # ConfigError, as the loop would give, before anything is written
    if not base.run_dir:  # runs/<env>__pop<P>__<time>, not the base seed's single-run name
        size = len(member_configs(base, spec["seeds"], spec["sweep"]))
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        base = dataclasses.replace(base, run_dir=str(Path("runs") / f"{base.env_id}__pop{size}__{stamp}"))
    run_dir = prepare_run_dir(base, overwrite)
    # --overwrite of a population run: prepare_run_dir removes a single run's files only.
    shutil.rmtree(run_dir / MEMBERS_DIR, ignore_errors=True)
    for name in (POPULATION_FILE, POPULATION_TABLE, POPULATION_CURVES):
        (run_dir / name).unlink(missing_ok=True)
    run = PopulationRun(base, spec, run_dir, quiet=quiet, callback=callback)
    atomic_write_text(run_dir / "config.toml", tomli_w.dumps({**base.to_dict(), "run_dir": str(run_dir)}))
    members = [
        {"member": k, "seed": m.seed, **{n: getattr(m, n) for n in run.swept}} for k, m in enumerate(run.members)
    ]
    atomic_write_json(run_dir / POPULATION_FILE, {**spec, "members": members})
    for k, member in enumerate(run.members):
        run.member_dir(k).mkdir(parents=True, exist_ok=True)
        atomic_write_text(
            run.member_dir(k) / "config.toml", tomli_w.dumps({**member.to_dict(), "run_dir": str(run.member_dir(k))})
        )
    return run_dir, run.run(new=True)


def resume_population(
    run_dir: str | Path, *, quiet: bool = False, callback: Callback | None = None
) -> tuple[Path, dict[str, Any]]:
    """Continue a population run from its newest checkpoint (``a2c train --resume``)."""
    run_dir = Path(run_dir)
    spec = json.loads((run_dir / POPULATION_FILE).read_text())
    base = make_config({"run_dir": str(run_dir)}, run_dir / "config.toml")
    configure_tensorflow(base)
    if (run_dir / "summary.json").is_file():
        raise RunDirError(f"the population run in {run_dir} has finished (it has a summary.json); nothing to resume")
    run = PopulationRun(base, {"seeds": spec["seeds"], "sweep": spec["sweep"]}, run_dir, quiet=quiet, callback=callback)
    run.restore()
    return run_dir, run.run(new=False)
