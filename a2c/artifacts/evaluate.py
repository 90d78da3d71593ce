"""Greedy (or sampled) evaluation, one environment and one seed per episode.

A vector env would restart short episodes while long ones are still running and so
over-sample them; here each episode has its own env, created with its own seed and
run to its end, and all episodes advance in lock-step so the policy is called once
per step for the whole set (fixed batch size: one trace).

``a2c evaluate PATH`` ([`a2c.artifacts.loading`][a2c.artifacts.loading]) runs it on a policy loaded from any saved
artifact. Which policy evaluations play is the config's ``eval_policy``: greedy, or sampled (Atari's:
greedy argmax play is degenerate there) with each episode's draws seeded from its own seed
([`a2c.agent.policy.seeded_sampler`][a2c.agent.policy.seeded_sampler]) and the greedy score reported beside it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from a2c.agent.batch import Policy
from a2c.envs.make import make_env, play_on
from a2c.envs.spaces import encode_observations, env_action, obs_row, set_obs_row, stack_obs

# Evaluation seeds start here; training seeds (seed .. seed + n_envs - 1) stay below it.
EVAL_SEED_BASE = 1_000_000

# What a bare model file is evaluated on when nothing names its environment.
DEFAULT_ENV = "CartPole-v1"


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
            "mean_return": self.mean,
            "std_return": self.std,
            "min_return": float(np.min(self.returns)),
            "max_return": float(np.max(self.returns)),
            "mean_length": float(np.mean(self.lengths)),
            "episodes": len(self.returns),
        }

    def to_dict(self) -> dict:
        return {**self.summary(), **asdict(self)}


def final_eval_fields(final: EvalResult | None, greedy: EvalResult | None = None) -> dict[str, Any]:
    """The summary.json fields of a run's final evaluation (None/0 when it was skipped); ``greedy``: the
    greedy score played beside a sampled evaluation on the same seeds."""
    beside = {"eval_greedy_mean_return": greedy.mean, "eval_greedy_std_return": greedy.std} if greedy else {}
    return {
        "eval_mean_return": final.mean if final else None,
        "eval_std_return": final.std if final else None,
        "eval_min_return": min(final.returns) if final else None,
        "eval_max_return": max(final.returns) if final else None,
        "eval_episodes": len(final.returns) if final else 0,
        "eval_seeds": [final.seeds[0], final.seeds[-1]] if final else None,
        **beside,
    }


def evaluate_policy(
    policy: Policy, env_id: str, episodes: int, seed: int = EVAL_SEED_BASE, env_kwargs: dict[str, Any] | None = None
) -> EvalResult:
    """Run ``episodes`` full episodes (whole games for Atari, across lost lives); episode k
    is reset with seed ``seed + k``. A stateful policy (a recurrent one,
    [`a2c.agent.policy.RecurrentPolicy`][a2c.agent.policy.RecurrentPolicy]) is ``reset()`` first: each episode starts
    from a zero state."""
    reset = getattr(policy, "reset", None)
    if callable(reset):
        reset()
    seeds = [seed + k for k in range(episodes)]
    envs = [make_env(env_id, env_kwargs=env_kwargs)[0] for _ in range(episodes)]
    obs_space, action_space = envs[0].observation_space, envs[0].action_space
    try:
        obs = stack_obs(
            [obs_row(encode_observations([env.reset(seed=s)[0]], obs_space), 0) for env, s in zip(envs, seeds)]
        )
        returns = np.zeros(episodes)
        lengths = np.zeros(episodes, np.int64)
        running = np.ones(episodes, bool)
        while running.any():
            actions = np.asarray(policy(obs))
            for k in np.flatnonzero(running):
                o, r, terminated, truncated, info = envs[k].step(env_action(actions[k], action_space))
                returns[k] += float(r)
                lengths[k] += 1
                o, over, tally = play_on(envs[k], o, terminated, truncated, info)
                if over:
                    running[k] = False
                    if tally is not None:  # the game's own tally (its reset steps included)
                        returns[k], lengths[k] = float(tally["r"]), int(tally["l"])
                set_obs_row(obs, int(k), obs_row(encode_observations([o], obs_space), 0))
    finally:
        for env in envs:
            env.close()
    return EvalResult(returns.tolist(), lengths.tolist(), seeds)
