"""The training entry points that the command line and the notebook call, and the
standard trainer.

:func:`train` starts a run in a new run directory and :func:`resume` continues one
from its newest checkpoint, exactly where it stopped; both hand a trainer to the run
driver (:mod:`a2c.run`), which owns the loop, the logs, evaluation, checkpoints and
the final files. ``cfg.fused`` picks the fused trainer (:mod:`a2c.fused`); otherwise
it is :class:`StandardTrainer`:

    collector.collect()  ->  update(batch)  [-> collector.set_weights(...)]

one compiled update per rollout, the rollouts coming from a
:class:`~a2c.rollout.Collector` (by default the local :class:`~a2c.rollout.RolloutCollector`
over a gymnasium vector env).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dataclasses

import tomli_w

from a2c.checkpoint import RunCheckpoint
from a2c.config import Config, load_toml, make_config
from a2c.distributions import distribution_for
from a2c.envs import make_vec_env
from a2c.errors import RunDirError
from a2c.files import atomic_write_text
from a2c.fused import FusedTrainer
from a2c.guard import FiniteGuard
from a2c.learner import UPDATE_METRICS, make_optimizer, make_update
from a2c.model import model_for, obs_norm_of
from a2c.normalize import ReturnNormalizer
from a2c.rollout import Collector, CollectorReport, RolloutCollector
from a2c.run import Callback, RunDriver, StepOutput, Trainer, TrainResult
from a2c.run_dir import prepare_run_dir
from a2c.tf_setup import configure_tensorflow

__all__ = ["StandardTrainer", "TrainResult", "resume", "train", "train_fused", "trainer_for"]


class StandardTrainer:
    """Rollouts from a collector, one XLA-compiled update on each (the A2C paper's loop).

    Without ``collector``, a local :class:`RolloutCollector` steps ``cfg.n_envs`` envs
    in this process with the learner's own model. A collector that does not share the
    model gets the weights before the first rollout and after every update.
    """

    name = "standard"
    updates_per_call = 1

    def __init__(self, cfg: Config, collector: Collector | None = None) -> None:
        self.cfg = cfg
        # EnvError: nothing written
        env = make_vec_env(cfg.env_id, cfg.n_envs, cfg.atari_vector) if collector is None else None
        try:
            obs_space = env.single_observation_space if env is not None else collector.observation_space
            action_space = env.single_action_space if env is not None else collector.action_space
            distribution_for(cfg.env_id, action_space)
            self.model = model_for(cfg, obs_space, action_space)
            self.optimizer = make_optimizer(cfg)
            self.guard = FiniteGuard(UPDATE_METRICS)
            self.update = make_update(self.model, self.optimizer, cfg, self.guard)
            self.collector: Collector = (collector if collector is not None
                                         else RolloutCollector(env, self.model, cfg.n_steps, cfg.seed))
        except BaseException:
            (env or collector).close()
            raise
        if (self.collector.num_envs, self.collector.n_steps) != (cfg.n_envs, cfg.n_steps):
            self.collector.close()
            raise ValueError(f"the collector gathers {self.collector.n_steps} steps x {self.collector.num_envs} "
                             f"envs; the config says {cfg.n_steps} x {cfg.n_envs}")
        self.reward_norm = ReturnNormalizer(cfg.n_envs, cfg.gamma) if cfg.normalize_reward else None
        self.obs_norm = obs_norm_of(self.model)
        self.report = self.collector if isinstance(self.collector, CollectorReport) else None
        self.metric_columns = self.report.metric_columns if self.report is not None else ()

    def _push_weights(self) -> None:
        if not self.collector.shares_model:
            self.collector.set_weights(self.model.get_weights())

    def compile(self) -> None:
        return None  # the first update compiles; its time counts as warm-up

    def start(self, updates_done: int) -> None:
        self.guard.start(updates_done)
        self._push_weights()

    def advance(self, updates: int) -> StepOutput:
        assert updates == 1, "the standard trainer does one update per call"
        # COLLECT: n_steps x n_envs transitions with the current policy.
        batch, finished = self.collector.collect()
        if self.reward_norm is not None:
            batch = self.reward_norm(batch)  # the episode returns in `finished` stay unscaled
        if self.obs_norm is not None:
            # Each observation once (obs[T] opens the next batch); the update then sees
            # the batch through the statistics that include it, as VecNormalize's would.
            self.obs_norm.update(batch.obs[:-1])
        # UPDATE: returns, advantages, loss, gradient step (one compiled call).
        metrics = self.update(batch)
        self._push_weights()
        if self.report is not None:
            metrics = {**metrics, **self.report.metrics()}
        return StepOutput(metrics, [(1.0, r, float(n)) for r, n in zip(finished.returns, finished.lengths)])

    def check_finite(self) -> None:
        self.guard.check()

    def checkpoint_objects(self) -> dict[str, Any]:
        return {}

    def state(self) -> dict[str, Any]:
        state = {"collector": self.collector.state()}
        if self.reward_norm is not None:
            state["reward_norm"] = self.reward_norm.state()
        return state

    def load_state(self, state: dict[str, Any]) -> list[str]:
        if self.reward_norm is not None:
            self.reward_norm.load_state(state["reward_norm"])
        return self.collector.load_state(state["collector"])

    def summary(self) -> dict[str, Any]:
        return self.report.summary() if self.report is not None else {}

    def close(self) -> None:
        self.collector.close()


def trainer_for(cfg: Config) -> Trainer:
    """The trainer ``cfg`` asks for: fused (``cfg.fused``), A3C on Ray workers
    (``cfg.async_updates``), or standard, with its rollouts from Ray workers when
    ``cfg.workers`` (:mod:`a2c.ray_workers`; Ray is imported only then)."""
    if cfg.fused:
        return FusedTrainer(cfg)
    if cfg.workers and cfg.async_updates:
        from a2c.a3c import A3CTrainer

        return A3CTrainer(cfg)
    if cfg.workers:
        from a2c.ray_workers import RayCollector

        return StandardTrainer(cfg, RayCollector(cfg))
    return StandardTrainer(cfg)


def train(cfg: Config, *, overwrite: bool = False, quiet: bool = False, callback: Callback | None = None,
          collector: Collector | None = None) -> TrainResult:
    """Train an agent as ``cfg`` says in a new run directory; return the model.

    ``collector`` replaces the standard trainer's local rollout collector; the run owns
    it from then on and closes it when it ends or fails.
    ``callback(update, global_step)`` runs after each trainer call; raising
    KeyboardInterrupt there stops training as Ctrl-C does. Stopping raises
    :class:`~a2c.signals.TrainingInterrupted` once the checkpoint is written
    (continue with :func:`resume`). The trainer is built first, so an unknown
    environment or unsupported space fails before anything is written.
    """
    if collector is not None and cfg.fused:
        collector.close()
        raise ValueError("the fused trainer collects its own rollouts; it takes no collector")
    cfg.validate()
    configure_tensorflow(cfg)
    trainer = trainer_for(cfg) if collector is None else StandardTrainer(cfg, collector)
    try:
        run_dir = prepare_run_dir(cfg, overwrite)
        cfg_dict = {**cfg.to_dict(), "run_dir": str(run_dir)}
        atomic_write_text(run_dir / "config.toml", tomli_w.dumps(cfg_dict))
        driver = RunDriver(cfg, run_dir, trainer, quiet=quiet, callback=callback)
    except BaseException:
        trainer.close()
        raise
    return driver.run(hparams=cfg_dict)


def resume(run_dir: str | Path, *, quiet: bool = False, progress: bool | None = None,
           callback: Callback | None = None, collector: Collector | None = None,
           ray_address: str | None = None) -> TrainResult:
    """Continue the run in ``run_dir`` from its newest checkpoint, with the run's own
    config.toml, up to its step budget; then write the model, final evaluation and
    summary as :func:`train` does. Only the cosmetic ``progress`` and, for a run on Ray
    workers, the cluster (``ray_address``) may be changed: anything else would make the
    result differ from an uninterrupted run.
    ``collector``: as for :func:`train` (its state is restored from the checkpoint).
    """
    run_dir = Path(run_dir)
    config_path = run_dir / "config.toml"
    if not config_path.is_file():
        raise RunDirError(f"{run_dir} is not a run directory (it has no config.toml)")
    if (run_dir / "summary.json").is_file():
        raise RunDirError(f"the run in {run_dir} has finished (it has a summary.json); nothing to resume")
    if RunCheckpoint.latest_update(run_dir) is None:
        raise RunDirError(f"{run_dir} has no checkpoint to resume from; start it again with --overwrite")
    # Atari runs saved before atari_vector existed were trained on (and snapshot) the gymnasium stack.
    legacy = {} if "atari_vector" in load_toml(config_path) else {"atari_vector": "gymnasium"}
    cfg = make_config({"run_dir": str(run_dir), "progress": progress, "ray_address": ray_address,
                       **legacy}, config_path)
    configure_tensorflow(cfg)
    trainer = trainer_for(cfg) if collector is None else StandardTrainer(cfg, collector)
    try:
        driver = RunDriver(cfg, run_dir, trainer, quiet=quiet, callback=callback)
        driver.restore()
    except BaseException:
        trainer.close()
        raise
    return driver.run(hparams=None)


def train_fused(cfg: Config, *, overwrite: bool = False, quiet: bool = False,
                callback: Callback | None = None) -> TrainResult:
    """:func:`train` with the fused trainer (:mod:`a2c.fused`): ``cfg.fused`` is set."""
    return train(dataclasses.replace(cfg, fused=True), overwrite=overwrite, quiet=quiet, callback=callback)
