"""Collect n_steps x n_envs transitions with the current policy. No gradients here.

The trainer takes its rollouts through the [`Collector`][a2c.trainers.rollout.Collector] interface, so that
collection can live elsewhere (remote workers) without the learner knowing.
[`RolloutCollector`][a2c.trainers.rollout.RolloutCollector] is the local one: it steps a gymnasium vector env in this
process with the learner's own model.

The env autoresets on the NEXT step (see [`a2c.envs.make`][a2c.envs.make]), so the observation after
a step that ended an episode is that episode's final observation, and the step after
it is a reset step: its action is ignored and it returns the new episode's first
observation with zero reward. ``valid`` marks the real transitions; the loss ignores
the others. Truncated steps keep their bootstrap because ``obs[t + 1]`` is the final
observation the critic needs.

A recurrent model ([`a2c.agent.model.RecurrentCell`][a2c.agent.model.RecurrentCell]) also carries each env's cell
state across steps and batches. A new episode's first observation is the one a reset step
returns, so the state is zeroed before the cell sees the observation that follows a reset
step (and the first one after ``env.reset``); [`RolloutCollector.memory`][a2c.trainers.rollout.RolloutCollector]
holds the state each batch began with and those starts, for the update's unroll.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import keras
import numpy as np

from a2c.agent.batch import EpisodeStats, Memory, Rollout
from a2c.agent.model import state_size_of
from a2c.agent.policy import make_act, make_recurrent_act
from a2c.envs.spaces import (
    action_dtype,
    action_shape,
    cast_obs,
    copy_obs,
    env_actions,
    observation_spec,
    set_obs_row,
)
from a2c.envs.state import decode, encode, restore_env, snapshot_env


class Collector(Protocol):
    """Where the standard trainer's rollouts come from.

    ``shares_model``: the collector acts with the learner's own model object, so the
    learner need not send it weights; otherwise the learner calls
    [`set_weights`][a2c.trainers.rollout.Collector.set_weights] with ``model.get_weights()`` before the first collection
    and after every update. [`state`][a2c.trainers.rollout.Collector.state] is JSON-able and goes into every checkpoint;
    [`load_state`][a2c.trainers.rollout.Collector.load_state] puts it back on resume and returns warnings for what could
    not be restored.
    """

    num_envs: int
    n_steps: int
    observation_space: gym.Space  # of one env
    action_space: gym.Space  # of one env
    shares_model: bool

    def collect(self) -> tuple[Rollout, EpisodeStats]: ...

    def set_weights(self, weights: list[np.ndarray]) -> None: ...

    def state(self) -> dict[str, Any]: ...

    def load_state(self, state: dict[str, Any]) -> list[str]: ...

    def close(self) -> None: ...


@runtime_checkable
class CarriesState(Protocol):
    """A collector that carries recurrent cell states: ``memory`` is the last batch's
    [`Memory`][a2c.agent.batch.Memory] (the state each env began it with, and its episode starts),
    ``None`` for a feed-forward model."""

    memory: Memory | None


@runtime_checkable
class CollectorReport(Protocol):
    """A collector with something of its own to log (remote workers: restarts, broadcast
    cost): ``metric_columns`` are extra metrics.csv columns, [`metrics`][a2c.trainers.rollout.CollectorReport.metrics]
    their values after each collection, [`summary`][a2c.trainers.rollout.CollectorReport.summary] extra fields of
    summary.json."""

    metric_columns: tuple[str, ...]

    def metrics(self) -> dict[str, float]: ...

    def summary(self) -> dict[str, Any]: ...


class RolloutCollector:
    """Steps a vector env with the model's sampled actions, carrying the last
    observation between batches (the local [`Collector`][a2c.trainers.rollout.Collector])."""

    shares_model = True

    def __init__(
        self,
        env: gym.vector.VectorEnv,
        model: keras.Model,
        n_steps: int,
        seed: int,
        rows: tuple[int, int] | None = None,
    ) -> None:
        """``rows=(offset, total)``: these envs are envs ``offset...`` of ``total`` (a remote
        worker's slice, [`a2c.trainers.ray_workers`][a2c.trainers.ray_workers]): seeded and sampled as a collector over
        all ``total`` envs would seed and sample them."""
        self.env = env
        self.n_steps = n_steps
        self.num_envs = n = env.num_envs
        self.observation_space = env.single_observation_space
        self.action_space = env.single_action_space
        self.state_size = state_size_of(model)
        if self.state_size:
            self.act_recurrent, self.sampler = make_recurrent_act(model, n, seed, rows)
        else:
            self.act, self.sampler = make_act(model, n, seed, rows)
        # Recurrent models: each env's cell state, and whether its next observation starts an episode.
        self.cell_state = np.zeros((n, self.state_size), np.float32)
        self.start = np.ones(n, np.float32)
        self.memory: Memory | None = None  # of the last batch collected
        self._spec = spec = observation_spec(self.observation_space)
        obs, _ = env.reset(seed=seed + (rows[0] if rows else 0))  # sub-env i gets seed + offset + i
        self.next_obs = cast_obs(obs, spec)
        self.prev_done = np.zeros(n, bool)  # did the last step end an episode (reset pending)?
        self._obs = spec.zeros(n_steps + 1, n)
        shape = action_shape(self.action_space)
        self._actions = np.zeros((n_steps, n, *shape), action_dtype(self.action_space))
        self._rewards = np.zeros((n_steps, n), np.float32)
        self._terminated = np.zeros((n_steps, n), np.float32)
        self._truncated = np.zeros((n_steps, n), np.float32)
        self._valid = np.zeros((n_steps, n), np.float32)

    def collect(self) -> tuple[Rollout, EpisodeStats]:
        """Run n_steps in every env; return the batch and the episodes that finished."""
        ep_returns: list[float] = []
        ep_lengths: list[int] = []
        obs = self.next_obs
        state0, starts = self.cell_state, np.zeros((self.n_steps + 1, self.num_envs), np.float32)
        for t in range(self.n_steps):
            set_obs_row(self._obs, t, obs)
            if self.state_size:
                starts[t] = self.start
                actions, self.cell_state = self.act_recurrent(obs, self.cell_state, self.start)
            else:
                actions = self.act(obs)
            # Box actions: the env gets them clipped to its bounds, the buffer keeps them as drawn.
            obs, rewards, terminated, truncated, infos = self.env.step(env_actions(actions, self.action_space))
            obs = cast_obs(obs, self._spec)
            self._actions[t] = actions
            self._rewards[t] = rewards
            self._terminated[t] = terminated
            self._truncated[t] = truncated
            self._valid[t] = ~self.prev_done
            # After a reset step the env returned a new episode's first observation.
            self.start = self.prev_done.astype(np.float32)
            self.prev_done = np.logical_or(terminated, truncated)
            if "_episode" in infos:
                finished = infos["_episode"]
                ep_returns.extend(infos["episode"]["r"][finished].tolist())
                ep_lengths.extend(infos["episode"]["l"][finished].tolist())
        set_obs_row(self._obs, self.n_steps, obs)
        self.next_obs = obs
        if self.state_size:
            starts[self.n_steps] = self.start
            self.memory = Memory(state0.copy(), starts)
        batch = Rollout(
            copy_obs(self._obs),
            self._actions.copy(),
            self._rewards.copy(),
            self._terminated.copy(),
            self._truncated.copy(),
            self._valid.copy(),
        )
        return batch, EpisodeStats(ep_returns, ep_lengths)

    def set_weights(self, weights: list[np.ndarray]) -> None:
        """Nothing to do: ``act`` runs the learner's own model."""

    def state(self) -> dict[str, Any]:
        """The sampler's RNG, the carried observation (and cell states) and the env's full state."""
        state = {
            "sampler": encode(self.sampler.state.numpy()),
            "next_obs": encode(self.next_obs),
            "prev_done": encode(self.prev_done),
            "env": snapshot_env(self.env),
        }
        if self.state_size:
            state.update(cell_state=encode(self.cell_state), start=encode(self.start))
        return state

    def load_state(self, state: dict[str, Any]) -> list[str]:
        """Put the collector and the (just made and reset) env back as
        [`state`][a2c.trainers.rollout.RolloutCollector.state] saw them.

        An env whose state cannot be saved (e.g. Box2D) instead starts new episodes from
        its restored RNGs: training goes on correctly, but no longer bit for bit.
        """
        self.sampler.reset(decode(state["sampler"]))
        restore_env(self.env, state["env"])
        opaque = state["env"]["opaque"]
        if not opaque:
            self.next_obs = decode(state["next_obs"])
            self.prev_done = decode(state["prev_done"])
            if self.state_size:
                self.cell_state, self.start = decode(state["cell_state"]), decode(state["start"])
            return []
        obs, _ = self.env.reset()  # seed=None: continues the restored per-env RNG streams
        self.next_obs = cast_obs(obs, self._spec)
        self.prev_done = np.zeros(self.num_envs, bool)
        self.cell_state = np.zeros((self.num_envs, self.state_size), np.float32)
        self.start = np.ones(self.num_envs, np.float32)
        return [
            f"the environment's state cannot be saved ({opaque[0]}); the episodes in progress at the "
            "checkpoint restart, so this run will not match an uninterrupted one exactly"
        ]

    def close(self) -> None:
        self.env.close()
