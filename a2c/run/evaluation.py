"""A run's evaluations as its ``eval_policy`` says: greedy, or sampled with the greedy score beside it.

Greedy argmax play is degenerate on Atari (a Seaquest agent that scores ~450 sampling its
actions scored exactly 100 in every greedy game), and rl-zoo3 and the published Atari scores
evaluate with sampled actions; so ``eval_policy = "sampled"`` (the Atari settings') plays the
sampled policy, episode k drawing from its own generator seeded from its seed
([`a2c.agent.policy.seeded_sampler`][a2c.agent.policy.seeded_sampler]), and then the greedy one on the same
seeds, reported beside it. Both are reproducible from the seeds and the weights alone: they touch
no training RNG, so a resumed run evaluates exactly as an uninterrupted one. Greedy runs play
exactly what they always did.
"""

from __future__ import annotations

from typing import Any

import keras

from a2c.agent.policy import make_greedy, make_sampled
from a2c.artifacts.evaluate import EvalResult, evaluate_policy
from a2c.config.schema import Config
from a2c.run.logger import EVAL_COLUMNS, GREEDY_EVAL_COLUMNS


def eval_columns(cfg: Config) -> tuple[str, ...]:
    """evaluations.csv's columns for ``cfg``: the greedy score's beside a sampled evaluation's."""
    return EVAL_COLUMNS + (GREEDY_EVAL_COLUMNS if cfg.eval_policy == "sampled" else ())


class RunEvaluation:
    """``episodes`` episodes of ``model`` on the run's env, compiled once for that batch size."""

    def __init__(self, model: keras.Model, cfg: Config, episodes: int) -> None:
        self.cfg, self.episodes = cfg, episodes
        self.greedy = make_greedy(model, episodes)
        self.sampled = make_sampled(model, episodes) if cfg.eval_policy == "sampled" else None

    def play(self, seed: int) -> tuple[EvalResult, EvalResult | None]:
        """(the result of the run's policy, the greedy result beside it or None), episode k seeded ``seed + k``."""
        cfg = self.cfg
        greedy = evaluate_policy(self.greedy, cfg.env_id, self.episodes, seed, env_kwargs=cfg.env_kwargs)
        if self.sampled is None:
            return greedy, None
        sampled = evaluate_policy(self.sampled(seed), cfg.env_id, self.episodes, seed, env_kwargs=cfg.env_kwargs)
        return sampled, greedy


def eval_summary(result: EvalResult, greedy: EvalResult | None) -> dict[str, Any]:
    """An evaluations.csv row's ``eval/`` values (without the prefix)."""
    beside = {"greedy_mean_return": greedy.mean, "greedy_std_return": greedy.std} if greedy else {}
    return {**result.summary(), **beside}
