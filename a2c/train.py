"""The training orchestrator that the command line and the notebook both call.

config -> seeding -> envs -> model -> optimizer -> [rollout -> update -> log]* ->
save -> final evaluation -> summary.json
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
import tomli_w
from tqdm.auto import tqdm

from a2c.config import Config
from a2c.envs import make_vec_env
from a2c.errors import RunDirError
from a2c.evaluate import EVAL_SEED_BASE, EvalResult, evaluate_policy
from a2c.files import atomic_write, atomic_write_json, atomic_write_text
from a2c.learner import make_act, make_greedy, make_optimizer, make_update
from a2c.logger import RunLogger
from a2c.model import build_actor_critic
from a2c.rollout import RolloutCollector


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
            raise RunDirError(f"run directory {run_dir} already holds a run; "
                              "pass --overwrite to replace it or choose another --run-dir")
        for name in ("metrics.csv", "evaluations.csv", "summary.json", "config.toml", "model.keras"):
            (run_dir / name).unlink(missing_ok=True)
        for old in (run_dir / "tb").glob("events.*"):
            old.unlink()
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def save_model(model: keras.Model, path: Path) -> None:
    atomic_write(path, lambda p: model.save(p), suffix=".keras")


def train(cfg: Config, *, overwrite: bool = False, quiet: bool = False) -> TrainResult:
    """Train an agent as ``cfg`` says and write the run directory; return the model."""
    cfg.validate()
    configure_tensorflow(cfg)
    env = make_vec_env(cfg.env_id, cfg.n_envs)  # may raise EnvError: before anything is written
    run_dir = prepare_run_dir(cfg, overwrite)
    cfg_dict = {**cfg.to_dict(), "run_dir": str(run_dir)}
    atomic_write_text(run_dir / "config.toml", tomli_w.dumps(cfg_dict))

    obs_dim = int(env.single_observation_space.shape[0])
    n_actions = int(env.single_action_space.n)
    model = build_actor_critic(obs_dim, n_actions, cfg.hidden_sizes, cfg.activation, seed=cfg.seed)
    optimizer = make_optimizer(cfg)
    update = make_update(model, optimizer, cfg, obs_dim)
    act, _ = make_act(model, cfg.n_envs, obs_dim, cfg.seed)
    collector = RolloutCollector(env, act, cfg.n_steps, cfg.seed)
    greedy_periodic = make_greedy(model, cfg.eval_episodes, obs_dim)
    logger = RunLogger(run_dir, cfg_dict)

    recent_returns: deque[float] = deque(maxlen=100)
    recent_lengths: deque[int] = deque(maxlen=100)
    episodes = 0
    global_step = 0
    train_seconds = 0.0
    next_eval = cfg.eval_every if cfg.eval_every > 0 else None
    show = cfg.progress and not quiet and sys.stderr.isatty()
    bar = tqdm(total=cfg.n_updates * cfg.batch_size, unit="step", disable=not show, dynamic_ncols=True)
    try:
        tick = time.perf_counter()
        for update_idx in range(1, cfg.n_updates + 1):
            # COLLECT: n_steps x n_envs transitions with the current policy.
            batch, finished = collector.collect()
            # UPDATE: returns, advantages, loss, gradient step (one compiled call).
            metrics = update(batch)
            global_step += cfg.batch_size
            episodes += len(finished.returns)
            recent_returns.extend(finished.returns)
            recent_lengths.extend(finished.lengths)
            bar.update(cfg.batch_size)
            # LOG: every log_every updates and at the end.
            if update_idx % cfg.log_every == 0 or update_idx == cfg.n_updates:
                train_seconds += time.perf_counter() - tick
                tick = time.perf_counter()
                row = {
                    "global_step": global_step, "update": update_idx,
                    "rollout/ep_return_mean": float(np.mean(recent_returns)) if recent_returns else "",
                    "rollout/ep_length_mean": float(np.mean(recent_lengths)) if recent_lengths else "",
                    "rollout/episodes": episodes,
                    **{f"train/{k}": float(v) for k, v in metrics.items()},
                    "time/steps_per_second": global_step / max(train_seconds, 1e-9),
                    "time/elapsed_seconds": train_seconds,
                }
                logger.log_metrics(row)
                if recent_returns:
                    bar.set_postfix(ret=f"{np.mean(recent_returns):.1f}",
                                    sps=f"{row['time/steps_per_second']:.0f}", refresh=False)
            # EVALUATE: greedy, one env and one seed per episode.
            if next_eval is not None and global_step >= next_eval:
                train_seconds += time.perf_counter() - tick
                result = evaluate_policy(greedy_periodic, cfg.env_id, cfg.eval_episodes, EVAL_SEED_BASE)
                logger.log_eval({"global_step": global_step,
                                 **{f"eval/{k}": v for k, v in result.summary().items()}})
                while next_eval <= global_step:
                    next_eval += cfg.eval_every
                tick = time.perf_counter()
        train_seconds += time.perf_counter() - tick
    finally:
        bar.close()
        env.close()

    save_model(model, run_dir / "model.keras")
    final: EvalResult | None = None
    if cfg.final_eval_episodes > 0:
        greedy_final = make_greedy(model, cfg.final_eval_episodes, obs_dim)
        final = evaluate_policy(greedy_final, cfg.env_id, cfg.final_eval_episodes, EVAL_SEED_BASE)
        logger.log_eval({"global_step": global_step, **{f"eval/{k}": v for k, v in final.summary().items()}})
    logger.close()
    summary = {
        "env_id": cfg.env_id,
        "seed": cfg.seed,
        "total_steps": global_step,
        "updates": cfg.n_updates,
        "train_seconds": train_seconds,
        "steps_per_second": global_step / max(train_seconds, 1e-9),
        "episodes": episodes,
        "train_return_mean_last100": float(np.mean(recent_returns)) if recent_returns else None,
        "eval_mean_return": final.mean if final else None,
        "eval_std_return": final.std if final else None,
        "eval_min_return": min(final.returns) if final else None,
        "eval_max_return": max(final.returns) if final else None,
        "eval_episodes": len(final.returns) if final else 0,
        "eval_seeds": [final.seeds[0], final.seeds[-1]] if final else None,
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "python": sys.version.split()[0]},
    }
    atomic_write_json(run_dir / "summary.json", summary)
    return TrainResult(run_dir, model, summary)
