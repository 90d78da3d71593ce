"""Greedy (or sampled) evaluation, one environment and one seed per episode.

A vector env would restart short episodes while long ones are still running and so
over-sample them; here each episode has its own env, created with its own seed and
run to its end, and all episodes advance in lock-step so the policy is called once
per step for the whole set (fixed batch size: one trace).

``a2c evaluate PATH`` (:func:`evaluate_path`) loads a run directory's model, a
``.keras`` file or a SavedModel directory (:func:`a2c.loading.load_model_any`), checks
that it fits the environment, runs :func:`evaluate_policy` greedily or with seeded
sampling, and can record the first episode as a GIF (:func:`a2c.gif.record_gif`).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from a2c.envs import encode_observations, make_env
from a2c.errors import ConfigError

# Evaluation seeds start here; training seeds (seed .. seed + n_envs - 1) stay below it.
EVAL_SEED_BASE = 1_000_000

Policy = Callable[[np.ndarray], np.ndarray]  # (episodes, *obs_shape) -> (episodes,) actions


@dataclass
class EvalResult:
    returns: list[float]
    lengths: list[int]
    seeds: list[int]

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        return float(np.std(self.returns))

    def summary(self) -> dict[str, float | int]:
        return {
            "mean_return": self.mean, "std_return": self.std,
            "min_return": float(np.min(self.returns)), "max_return": float(np.max(self.returns)),
            "mean_length": float(np.mean(self.lengths)), "episodes": len(self.returns),
        }

    def to_dict(self) -> dict:
        return {**self.summary(), **asdict(self)}


def final_eval_fields(final: EvalResult | None) -> dict[str, Any]:
    """The summary.json fields of a run's final evaluation (None/0 when it was skipped)."""
    return {
        "eval_mean_return": final.mean if final else None,
        "eval_std_return": final.std if final else None,
        "eval_min_return": min(final.returns) if final else None,
        "eval_max_return": max(final.returns) if final else None,
        "eval_episodes": len(final.returns) if final else 0,
        "eval_seeds": [final.seeds[0], final.seeds[-1]] if final else None,
    }


def evaluate_policy(policy: Policy, env_id: str, episodes: int, seed: int = EVAL_SEED_BASE) -> EvalResult:
    """Run ``episodes`` full episodes; episode k is reset with seed ``seed + k``."""
    seeds = [seed + k for k in range(episodes)]
    envs = [make_env(env_id)[0] for _ in range(episodes)]
    obs_space = envs[0].observation_space
    try:
        obs = np.stack([encode_observations([env.reset(seed=s)[0]], obs_space)[0]
                        for env, s in zip(envs, seeds)])
        returns = np.zeros(episodes)
        lengths = np.zeros(episodes, np.int64)
        running = np.ones(episodes, bool)
        while running.any():
            actions = np.asarray(policy(obs))
            for k in np.flatnonzero(running):
                o, r, terminated, truncated, _ = envs[k].step(int(actions[k]))
                obs[k] = encode_observations([o], obs_space)[0]
                returns[k] += float(r)
                lengths[k] += 1
                running[k] = not (terminated or truncated)
    finally:
        for env in envs:
            env.close()
    return EvalResult(returns.tolist(), lengths.tolist(), seeds)


# ----------------------------------------------------------------------------------------
# ``a2c evaluate PATH``: a run directory, a .keras file or a SavedModel directory.

DEFAULT_ENV = "CartPole-v1"


def evaluate_path(path: str | Path, env_id: str | None = None, *, episodes: int = 100,
                  seed: int = EVAL_SEED_BASE, sample: bool = False,
                  gif: str | Path | None = None) -> tuple[EvalResult, dict]:
    """Evaluate the model at ``path`` (see :func:`load_model_any`) on ``env_id``.

    ``env_id`` defaults to the run's config.toml, then the export's metadata, then
    CartPole-v1; the model's sizes are checked against the environment first. Returns
    the result and a dict describing what was evaluated (``model``, ``format``,
    ``env_id``, ``env_source``, ``policy``, ``seed`` and, with ``gif``, the GIF's episode).
    """
    if episodes < 1:
        raise ConfigError(f"--episodes must be at least 1, got {episodes}")
    if gif is not None and Path(gif).suffix.lower() != ".gif":
        raise ConfigError(f"--gif must name a .gif file, got {gif}")
    from a2c.gif import record_gif
    from a2c.loading import check_model_fits_env, load_model_any

    loaded = load_model_any(path)
    if env_id:
        source = "--env"
    elif loaded.env_id:
        env_id, source = loaded.env_id, ("run config" if loaded.run_dir else "export metadata")
    else:
        env_id, source = DEFAULT_ENV, "default"
    check_model_fits_env(loaded, env_id)
    result = evaluate_policy(loaded.policy(episodes, sample, seed), env_id, episodes, seed)
    info: dict = {"model": str(loaded.path), "format": loaded.kind, "env_id": env_id, "env_source": source,
                  "policy": "sample" if sample else "greedy", "seed": seed}
    if gif is not None:
        info["gif"] = str(gif)
        info.update(record_gif(loaded.policy(1, sample, seed), env_id, seed, gif))
    return result, info


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="PATH", help="a run directory, a .keras file or a SavedModel directory")
    parser.add_argument("--env", default=None, metavar="ENV_ID",
                        help="environment (default: the run's config.toml when PATH is or lies in a run "
                             f"directory, else the export's metadata, else {DEFAULT_ENV})")
    parser.add_argument("--episodes", type=int, default=100, metavar="N", help="episodes (default: 100)")
    parser.add_argument("--seed", type=int, default=EVAL_SEED_BASE, metavar="S",
                        help=f"episode k is reset with seed S+k (default: {EVAL_SEED_BASE})")
    parser.add_argument("--sample", action="store_true",
                        help="sample actions from the policy (seeded per episode) instead of the greedy action")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--gif", metavar="FILE", default=None,
                        help="record the first episode (seed S) as an animated GIF")


def run_evaluate(args: argparse.Namespace) -> int:
    result, info = evaluate_path(args.path, args.env, episodes=args.episodes, seed=args.seed,
                                 sample=args.sample, gif=args.gif)
    if args.json:
        print(json.dumps({**info, **result.to_dict()}, indent=2))
        return 0
    s = result.summary()
    print(f"model: {info['model']} ({info['format']}); environment: {info['env_id']} ({info['env_source']})")
    print(f"{info['policy']} policy, {s['episodes']} episodes, seeds {result.seeds[0]}..{result.seeds[-1]}")
    print(f"return: {s['mean_return']:.2f} +/- {s['std_return']:.2f} "
          f"(min {s['min_return']:.2f}, max {s['max_return']:.2f}); mean length {s['mean_length']:.1f}")
    if "gif" in info:
        print(f"wrote {info['gif']}: episode with seed {info['gif_seed']}, return {info['gif_return']:.2f}, "
              f"{info['gif_frames']} frames")
    return 0
