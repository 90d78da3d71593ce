"""The standard trainer, which the training entry points ([`a2c.run.train`][a2c.run.train]) build unless
the config asks for another.

[`train`][a2c.run.train.train] starts a run in a new run directory and [`resume`][a2c.run.train.resume] continues one
from its newest checkpoint, exactly where it stopped; both hand a trainer to the run
driver ([`a2c.run.driver`][a2c.run.driver]), which owns the loop, the logs, evaluation, checkpoints and
the final files. ``cfg.fused`` picks the fused trainer ([`a2c.trainers.fused`][a2c.trainers.fused]); otherwise
it is [`StandardTrainer`][a2c.trainers.standard.StandardTrainer]:

    collector.collect()  ->  update(batch)  [-> collector.set_weights(...)]

one compiled update per rollout, the rollouts coming from a
[`Collector`][a2c.trainers.rollout.Collector] (by default the local
[`RolloutCollector`][a2c.trainers.rollout.RolloutCollector] over a gymnasium vector env).
"""

from __future__ import annotations

from typing import Any, cast

import gymnasium as gym

from a2c.agent.distributions import distribution_for
from a2c.agent.guard import FiniteGuard
from a2c.agent.learner import UPDATE_METRICS, make_optimizer, make_update
from a2c.agent.model import model_for, obs_norms_of, state_size_of
from a2c.agent.normalize import ReturnNormalizer
from a2c.common.errors import ConfigError
from a2c.config.schema import Config
from a2c.envs.make import make_vec_env
from a2c.trainers.base import StepOutput
from a2c.trainers.rollout import CarriesState, Collector, CollectorReport, RolloutCollector


class StandardTrainer:
    """Rollouts from a collector, one XLA-compiled update on each (the A2C paper's loop).

    Without ``collector``, a local [`RolloutCollector`][a2c.trainers.rollout.RolloutCollector] steps ``cfg.n_envs`` envs
    in this process with the learner's own model. A collector that does not share the
    model gets the weights before the first rollout and after every update.
    """

    name = "standard"
    updates_per_call = 1

    def __init__(
        self, cfg: Config, collector: Collector | None = None, env: gym.vector.VectorEnv | None = None
    ) -> None:
        """``env``: a vector env to train on instead of the one ``cfg`` names (prepared by
        [`prepare_vec_env`][a2c.envs.make.prepare_vec_env]; the trainer closes it)."""
        self.cfg = cfg
        # EnvError: nothing written
        if collector is None and env is None:
            env = make_vec_env(cfg.env_id, cfg.n_envs, cfg.atari_vector, cfg.env_kwargs)
        try:
            if env is not None:
                obs_space, action_space = env.single_observation_space, env.single_action_space
            else:
                assert collector is not None  # env is None only when a collector is given
                obs_space, action_space = collector.observation_space, collector.action_space
            distribution_for(cfg.env_id, action_space)
            self.model = model_for(cfg, obs_space, action_space)
            self.optimizer = make_optimizer(cfg)
            self.guard = FiniteGuard(UPDATE_METRICS)
            self.update = make_update(self.model, self.optimizer, cfg, self.guard)
            if env is not None:
                self.collector: Collector = RolloutCollector(env, self.model, cfg.n_steps, cfg.seed)
            else:
                assert collector is not None
                self.collector = collector
        except BaseException:
            if env is not None:
                env.close()
            elif collector is not None:
                collector.close()
            raise
        if (self.collector.num_envs, self.collector.n_steps) != (cfg.n_envs, cfg.n_steps):
            self.collector.close()
            raise ValueError(
                f"the collector gathers {self.collector.n_steps} steps x {self.collector.num_envs} "
                f"envs; the config says {cfg.n_steps} x {cfg.n_envs}"
            )
        self.recurrent = state_size_of(self.model) > 0
        if self.recurrent and not isinstance(self.collector, CarriesState):
            self.collector.close()
            raise ConfigError(
                f"recurrent={cfg.recurrent} needs a collector that carries cell states: "
                f"{type(self.collector).__name__} does not"
            )
        self.reward_norm = ReturnNormalizer(cfg.n_envs, cfg.gamma) if cfg.normalize_reward else None
        self.obs_norms = obs_norms_of(self.model)  # by Dict key (None: the single input)
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
        for key, norm in self.obs_norms.items():
            # Each observation once (obs[T] opens the next batch); the update then sees
            # the batch through the statistics that include it, as VecNormalize's would.
            norm.update((batch.obs if key is None else batch.obs[key])[:-1])
        # UPDATE: returns, advantages, loss, gradient step (one compiled call).
        if self.recurrent:
            memory = cast(CarriesState, self.collector).memory
            assert memory is not None  # set by every collection of a recurrent model
            metrics = self.update(batch, memory)
        else:
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
