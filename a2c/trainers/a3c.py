"""Asynchronous advantage actor-critic (A3C, Mnih et al. 2016) on Ray workers.

Each worker ([`a2c.trainers.ray_workers.RolloutWorker`][a2c.trainers.ray_workers.RolloutWorker]) collects ``n_steps`` on
its own ``envs_per_worker`` envs with the weights it last received and returns the A2C loss's
clipped gradients on that rollout ([`a2c.agent.learner.make_gradients`][a2c.agent.learner.make_gradients]: the same
loss, the one tape; a recurrent model's unrolled from the cell states that worker carries for its
own envs). The learner applies each gradient as it arrives
([`a2c.agent.learner.make_apply`][a2c.agent.learner.make_apply]: the run's optimizer) and sends fresh weights back to
that worker only; the others keep computing with older weights. How much older is the
*staleness* of a gradient: the optimizer steps taken between the weights it was
computed at and the step that applies it (``workers/staleness_*`` in metrics.csv).

For the run driver one update is ``workers`` gradient applications, whichever workers
they come from: ``n_envs * n_steps`` env steps, as for synchronous A2C, so step counts,
logs, evaluation and checkpoints mean the same thing in both modes. The learning-rate
schedule counts gradient applications.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from a2c.agent.distributions import distribution_for
from a2c.agent.guard import FiniteGuard
from a2c.agent.learner import UPDATE_METRICS, make_apply, make_optimizer
from a2c.agent.model import model_for
from a2c.config.schema import Config
from a2c.envs.make import make_vec_env
from a2c.trainers.base import StepOutput
from a2c.trainers.ray_workers import WORKER_COLUMNS, WorkerPool

A3C_COLUMNS = (*WORKER_COLUMNS, "workers/staleness_mean", "workers/staleness_max")


class A3CTrainer:
    """The learner of A3C: applies workers' gradients as they arrive (a
    [`Trainer`][a2c.trainers.base.Trainer])."""

    name = "a3c"
    updates_per_call = 1
    metric_columns: tuple[str, ...] = A3C_COLUMNS

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        probe = make_vec_env(cfg.env_id, 1, env_kwargs=cfg.env_kwargs)  # EnvError here, before Ray starts
        try:
            distribution_for(cfg.env_id, probe.single_action_space)
            self.model = model_for(cfg, probe.single_observation_space, probe.single_action_space)
        finally:
            probe.close()
        # One optimizer step per worker gradient: a schedule over that many steps.
        self.optimizer = make_optimizer(dataclasses.replace(cfg, n_envs=cfg.envs_per_worker))
        self.guard = FiniteGuard(UPDATE_METRICS)
        self.apply = make_apply(self.model, self.optimizer, self.guard)
        self.pool = WorkerPool(cfg)
        self.in_flight: dict[Any, int] = {}  # call -> worker
        self.staleness: list[int] = []

    def compile(self) -> None:
        return None

    def start(self, updates_done: int) -> None:
        self.guard.start(updates_done * self.cfg.workers)
        self.pool.wait_ready()
        self.pool.broadcast(self.model.get_weights())
        for i in range(self.cfg.workers):
            self._send(i)

    def _send(self, i: int) -> None:
        self.in_flight[self.pool.call(i, "gradients")] = i

    def advance(self, updates: int) -> StepOutput:
        assert updates == 1, "one update = one gradient per worker, applied as they arrive"
        ray, start = self.pool.ray, time.perf_counter()
        metrics: list[dict[str, Any]] = []
        staleness: list[int] = []
        episodes: list[tuple[float, float, float]] = []
        while len(metrics) < self.cfg.workers:
            [ref], _ = ray.wait(list(self.in_flight), num_returns=1)
            i = self.in_flight.pop(ref)
            out = self.pool.result(i, ref, "gradients")  # through a restart of worker i
            # APPLY as it arrives; then fresh weights to this worker only.
            staleness.append(self.pool.version - out["version"])
            metrics.append({k: float(v) for k, v in self.apply(out["grads"], out["metrics"]).items()})
            self.pool.broadcast(self.model.get_weights())
            self._send(i)
            episodes += [(1.0, r, float(n)) for r, n in zip(out["episodes"].returns, out["episodes"].lengths)]
        merged = {k: float(np.mean([m[k] for m in metrics])) for k in UPDATE_METRICS}
        merged.update(self.pool.metrics(time.perf_counter() - start))
        merged["workers/staleness_mean"] = float(np.mean(staleness))
        merged["workers/staleness_max"] = float(np.max(staleness))
        self.staleness += staleness
        return StepOutput(merged, episodes)

    def check_finite(self) -> None:
        self.guard.check()

    def checkpoint_objects(self) -> dict[str, Any]:
        return {}

    def state(self) -> dict[str, Any]:
        """The workers' collectors, each taken after the rollout it has in flight (whose
        gradient is applied later in this run, but lost to a resumed one)."""
        return self.pool.state()

    def load_state(self, state: dict[str, Any]) -> list[str]:
        return self.pool.load_state(state)

    def summary(self) -> dict[str, Any]:
        s = np.asarray(self.staleness or [0])
        return {
            **self.pool.summary(),
            "async_updates": True,
            "staleness_mean": float(s.mean()),
            "staleness_max": int(s.max()),
        }

    def close(self) -> None:
        self.pool.close()
