"""The training entry points that the command line, the notebook and the object API call.

[`train`][a2c.run.train.train] starts a run in a new run directory and [`resume`][a2c.run.train.resume] continues one
from its newest checkpoint, exactly where it stopped; both build the trainer that the
config asks for ([`trainer_for`][a2c.run.train.trainer_for]) and hand it to the run driver
([`a2c.run.driver`][a2c.run.driver]), which owns the loop, the logs, evaluation, checkpoints and the
final files.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import gymnasium as gym
import tomli_w

from a2c.common.errors import ConfigError, RunDirError
from a2c.common.files import atomic_write_text
from a2c.common.tf_setup import configure_tensorflow
from a2c.config.resolve import make_config
from a2c.config.schema import Config, load_toml
from a2c.run.callbacks import CallbackLike
from a2c.run.checkpoint import RunCheckpoint
from a2c.run.driver import RunDriver, TrainResult
from a2c.run.run_dir import prepare_run_dir
from a2c.trainers.base import Trainer
from a2c.trainers.fused import FusedTrainer
from a2c.trainers.rollout import Collector
from a2c.trainers.standard import StandardTrainer

__all__ = ["StandardTrainer", "TrainResult", "resume", "train", "train_fused", "trainer_for"]


def trainer_for(cfg: Config, env: gym.vector.VectorEnv | None = None) -> Trainer:
    """The trainer ``cfg`` asks for: fused (``cfg.fused``), A3C on Ray workers
    (``cfg.async_updates``), or standard, with its rollouts from Ray workers when
    ``cfg.workers`` ([`a2c.trainers.ray_workers`][a2c.trainers.ray_workers]; Ray is imported only then).
    ``env``: a prepared vector env for the standard trainer to train on (the object API's)."""
    if env is not None:
        if cfg.fused or cfg.workers:
            env.close()
            raise ConfigError("a vector env object trains in this process: drop fused and workers")
        return StandardTrainer(cfg, env=env)
    if cfg.fused:
        return FusedTrainer(cfg)
    if cfg.workers and cfg.async_updates:
        from a2c.trainers.a3c import A3CTrainer

        return A3CTrainer(cfg)
    if cfg.workers:
        from a2c.trainers.ray_workers import RayCollector

        return StandardTrainer(cfg, RayCollector(cfg))
    return StandardTrainer(cfg)


def train(
    cfg: Config,
    *,
    overwrite: bool = False,
    quiet: bool = False,
    callback: CallbackLike = None,
    collector: Collector | None = None,
) -> TrainResult:
    """Train an agent as ``cfg`` says in a new run directory; return the model.

    ``collector`` replaces the standard trainer's local rollout collector; the run owns
    it from then on and closes it when it ends or fails.
    ``callback``: an [`a2c.Callback`][a2c.run.callbacks.Callback], a list of them, or a
    function ``fn(update, global_step)`` run after each trainer call; a hook returning
    False ends training cleanly (the final files are written); raising
    KeyboardInterrupt there stops training as Ctrl-C does. Stopping raises
    [`TrainingInterrupted`][a2c.run.signals.TrainingInterrupted] once the checkpoint is written
    (continue with [`resume`][a2c.run.train.resume]). The trainer is built first, so an unknown
    environment or unsupported space fails before anything is written.
    """
    if collector is not None and cfg.fused:
        collector.close()
        raise ValueError("the fused trainer collects its own rollouts; it takes no collector")
    cfg.validate()
    configure_tensorflow(cfg)
    trainer = trainer_for(cfg) if collector is None else StandardTrainer(cfg, collector)
    driver, cfg_dict = open_run(cfg, trainer, overwrite=overwrite, quiet=quiet, callback=callback)
    return driver.run(hparams=cfg_dict)


def open_run(
    cfg: Config, trainer: Trainer, *, overwrite: bool = False, quiet: bool = False, callback: CallbackLike = None
) -> tuple[RunDriver, dict[str, Any]]:
    """Create the run directory (refusing to mix into an old run unless ``overwrite``), write its
    config.toml and hand ``trainer`` to a new driver; return the driver and the config as written.
    The trainer is closed if this fails."""
    try:
        run_dir = prepare_run_dir(cfg, overwrite)
        cfg_dict = {**cfg.to_dict(), "run_dir": str(run_dir)}
        atomic_write_text(run_dir / "config.toml", tomli_w.dumps(cfg_dict))
        return RunDriver(cfg, run_dir, trainer, quiet=quiet, callback=callback), cfg_dict
    except BaseException:
        trainer.close()
        raise


def resume(
    run_dir: str | Path,
    *,
    quiet: bool = False,
    progress: bool | None = None,
    callback: CallbackLike = None,
    collector: Collector | None = None,
    ray_address: str | None = None,
    total_steps: int | None = None,
) -> TrainResult:
    """Continue the run in ``run_dir`` from its newest checkpoint, with the run's own
    config.toml, up to its step budget; then write the model, final evaluation and
    summary as [`train`][a2c.run.train.train] does. Only the cosmetic ``progress`` and, for a run on Ray
    workers, the cluster (``ray_address``) may be changed: anything else would make the
    result differ from an uninterrupted run.
    ``total_steps``: a new budget, larger than the steps already trained; it also extends a
    finished run (its summary.json is then replaced when the new budget is reached, and a
    linear learning-rate schedule stretches to the new budget from where it stands).
    ``collector``: as for [`train`][a2c.run.train.train] (its state is restored from the checkpoint).
    """
    run_dir = Path(run_dir)
    config_path = run_dir / "config.toml"
    if not config_path.is_file():
        raise RunDirError(f"{run_dir} is not a run directory (it has no config.toml)")
    finished = (run_dir / "summary.json").is_file()
    if finished and total_steps is None:
        raise RunDirError(
            f"the run in {run_dir} has finished (it has a summary.json); to train it further, "
            "pass a larger budget: --resume RUN --total-steps N"
        )
    latest = RunCheckpoint.latest_update(run_dir)
    if latest is None:
        raise RunDirError(f"{run_dir} has no checkpoint to resume from; start it again with --overwrite")
    # Atari runs saved before atari_vector existed were trained on (and snapshot) the gymnasium stack;
    # runs saved before eval_policy existed evaluated greedily, and go on doing so; runs saved before
    # precision existed computed in float32 (the Atari settings' bfloat16 came later) and go on doing so.
    saved = load_toml(config_path)
    legacy = {} if "atari_vector" in saved else {"atari_vector": "gymnasium"}
    legacy |= {} if "eval_policy" in saved else {"eval_policy": "greedy"}
    legacy |= {} if "precision" in saved else {"precision": "float32"}
    cfg = make_config(
        {"run_dir": str(run_dir), "progress": progress, "ray_address": ray_address, **legacy}, config_path
    )
    if total_steps is not None:
        done = latest * cfg.batch_size
        if total_steps <= done:
            raise ConfigError(f"--total-steps {total_steps} is not more than the {done} steps the run has trained")
        cfg = dataclasses.replace(cfg, total_steps=int(total_steps)).validate()
        atomic_write_text(config_path, tomli_w.dumps({**saved, "total_steps": cfg.total_steps}))
        if finished:  # it describes an end that is no longer the run's; written again at the new end
            (run_dir / "summary.json").unlink()
    configure_tensorflow(cfg)
    trainer = trainer_for(cfg) if collector is None else StandardTrainer(cfg, collector)
    try:
        driver = RunDriver(cfg, run_dir, trainer, quiet=quiet, callback=callback)
        driver.restore()
    except BaseException:
        trainer.close()
        raise
    return driver.run(hparams=None)


def train_fused(
    cfg: Config, *, overwrite: bool = False, quiet: bool = False, callback: CallbackLike = None
) -> TrainResult:
    """[`train`][a2c.run.train.train] with the fused trainer ([`a2c.trainers.fused`][a2c.trainers.fused]): ``cfg.fused``
    is set."""
    return train(dataclasses.replace(cfg, fused=True), overwrite=overwrite, quiet=quiet, callback=callback)
