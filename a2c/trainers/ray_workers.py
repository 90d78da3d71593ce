"""Rollouts on Ray actors: the standard trainer's collector with its envs in other
processes, or on other machines of a Ray cluster (Ray Core: actors and the object store).

[`WorkerPool`][a2c.trainers.ray_workers.WorkerPool] owns the Ray side: it joins a cluster (``ray_address``), starts a
private local Ray ([`a2c.trainers.ray_cluster`][a2c.trainers.ray_cluster]: token authentication, loopback only), or
uses the one this process already runs; it starts ``workers`` actors
([`RolloutWorker`][a2c.trainers.ray_workers.RolloutWorker]), each a
[`RolloutCollector`][a2c.trainers.rollout.RolloutCollector] over its slice of ``envs_per_worker`` envs with its own copy
of the model; it broadcasts weights with one ``ray.put`` per update (each worker fetches them by reference, only when
their version changed) and it survives worker deaths. [`RayCollector`][a2c.trainers.ray_workers.RayCollector] is the
[`Collector`][a2c.trainers.rollout.Collector] built on it (synchronous A2C); [`a2c.trainers.a3c`][a2c.trainers.a3c] uses
the same pool for asynchronous gradients.

Worker ``i`` steps envs ``i*E ... i*E+E-1`` of ``N*E``: seeded ``seed + i*E + j`` and
sampled with rows of the same noise a local collector over all ``N*E`` envs draws
([`a2c.agent.policy.make_act`][a2c.agent.policy.make_act]), so the concatenated batch is the local collector's.
A recurrent model's cell states stay on the worker whose envs they belong to (its collector
carries and resets them as a local one does); each batch ships the states it began with and
its episode starts ([`Memory`][a2c.agent.batch.Memory]), from which the learner (or, for A3C, the
worker itself) unrolls the update.

Faults: actors restart (``max_restarts=-1``, the constructor runs again); a call that
fails because its worker died is sent again, and a worker that answers from a new
process counts as a restart (``workers/restarts`` in metrics.csv, a warning on stderr).
A restarted worker has lost its envs: they start new episodes from fresh seeds, so the
run goes on but is no longer reproducible.

Over 300 lines because the pool and the two things built on it (the actor class and the
collector) share its calls, retries and state: split, each would need the others' insides.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from a2c.agent.batch import EpisodeStats, Memory, Rollout
from a2c.config.schema import Config
from a2c.trainers.ray_cluster import ClusterError, LocalRaySettings, import_ray, start_ray

if TYPE_CHECKING:
    from a2c.agent.dispatch import HostCall

WORKER_COLUMNS = ("workers/restarts", "workers/round_seconds", "workers/broadcast_seconds")
CALL_RETRY_SECONDS = 120.0  # how long a call to a dead worker is retried while Ray restarts it


class RolloutWorker:
    """One Ray actor: a [`RolloutCollector`][a2c.trainers.rollout.RolloutCollector] over envs ``rows`` of the
    run's, with a model of its own (TensorFlow on one thread, as the actor has one CPU)."""

    def __init__(self, cfg: Config, index: int) -> None:
        import ray

        from a2c.agent.model import model_for
        from a2c.common.tf_setup import configure_tensorflow, import_tensorflow_quietly
        from a2c.envs.make import make_vec_env
        from a2c.trainers.rollout import RolloutCollector

        import_tensorflow_quietly()
        configure_tensorflow(dataclasses.replace(cfg, num_threads=1))
        e = cfg.envs_per_worker
        seed = cfg.seed
        with warnings.catch_warnings():  # Ray's own accessor warns about an internal call
            warnings.simplefilter("ignore")
            restarted = ray.get_runtime_context().was_current_actor_reconstructed
        if restarted:
            # a restart: new episodes, not a replay (entropy drawn by SeedSequence() is an int)
            seed = int(cast(int, np.random.SeedSequence().entropy) % 2**31)
        env = make_vec_env(cfg.env_id, e, env_kwargs=cfg.env_kwargs)
        self.model = model_for(cfg, env.single_observation_space, env.single_action_space)
        self.collector = RolloutCollector(env, self.model, cfg.n_steps, seed, rows=(index * e, cfg.n_envs))
        self.version = -1
        self.grads: HostCall | None = None
        if cfg.async_updates:
            from a2c.agent.learner import make_gradients

            self.grads = make_gradients(self.model, dataclasses.replace(cfg, n_envs=e))

    def identity(self) -> tuple[str, int]:
        """(node, process): a new process means the actor was restarted."""
        import ray

        return ray.get_runtime_context().get_node_id(), os.getpid()

    def _sync(self, version: int, weights: list[Any]) -> None:
        """Take the learner's weights if newer than ours (``weights``: [ObjectRef], wrapped
        so that Ray passes the reference and the fetch happens only when needed)."""
        if version != self.version:
            import ray

            self.model.set_weights(ray.get(weights[0]))
            self.version = version

    def collect(self, version: int, weights: list[Any]) -> tuple[Rollout, EpisodeStats, dict[str, Any]]:
        """A rollout; ``info["memory"]``: its [`Memory`][a2c.agent.batch.Memory] (a recurrent model's cell
        states at its start and its episode starts, carried here between rollouts), else None."""
        self._sync(version, weights)
        start = time.perf_counter()
        batch, stats = self.collector.collect()
        info = {"identity": self.identity(), "seconds": time.perf_counter() - start}
        return batch, stats, {**info, "memory": self.collector.memory}

    def gradients(self, version: int, weights: list[Any]) -> dict[str, Any]:
        """A3C: a rollout and the A2C loss's clipped gradients on it, at our weights."""
        self._sync(version, weights)
        start = time.perf_counter()
        batch, stats = self.collector.collect()
        assert self.grads is not None  # built when cfg.async_updates, the only case A3C calls this
        memory = self.collector.memory  # a recurrent model's: the update unrolls from our carried states
        grads, metrics = self.grads(batch) if memory is None else self.grads(batch, memory)
        return {
            "grads": [g.numpy() for g in grads],
            "metrics": {k: float(v) for k, v in metrics.items()},
            "episodes": stats,
            "version": self.version,
            "identity": self.identity(),
            "seconds": time.perf_counter() - start,
        }

    def state(self) -> dict[str, Any]:
        return self.collector.state()

    def load_state(self, state: dict[str, Any]) -> list[str]:
        return self.collector.load_state(state)


class WorkerPool:
    """``cfg.workers`` [`RolloutWorker`][a2c.trainers.ray_workers.RolloutWorker] actors, the weights they act with, and
    their restarts. Calls are sent with [`call`][a2c.trainers.ray_workers.WorkerPool.call] and read with
    [`result`][a2c.trainers.ray_workers.WorkerPool.result], which sends a call again when its worker died."""

    def __init__(self, cfg: Config) -> None:
        self.ray = ray = import_ray()
        self.cfg = cfg
        # Set when this pool started (or joined) Ray: it shuts it down and restores the settings.
        self.owned_ray: LocalRaySettings | None = start_ray(cfg.ray_address, cfg.workers)
        self.actors: list[Any] = []
        try:
            cpus = int(ray.cluster_resources().get("CPU", 0))
            if cpus < cfg.workers:  # the extra actors would wait for a CPU forever
                raise ClusterError(f"the Ray cluster has {cpus} CPUs and --workers {cfg.workers} needs one each")
            remote = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=0)(RolloutWorker)
            quiet = {"env_vars": {"TF_CPP_MIN_LOG_LEVEL": "2"}}
            # Not waited for: the workers start (import TensorFlow, build and compile) while
            # the learner builds its own; their first answers say who they are.
            self.actors = [remote.options(runtime_env=quiet).remote(cfg, i) for i in range(cfg.workers)]
        except BaseException:
            self.close()
            raise
        self.identities: list[tuple[str, int] | None] = [None] * cfg.workers
        self.restarts = 0
        self.version = -1
        self.weights_ref: list[Any] = []
        self.weights_bytes = 0
        self.broadcast_seconds: list[float] = []

    def wait_ready(self) -> None:
        """Wait until every worker has started (A3C: a worker that starts late would send its
        first gradient hundreds of optimizer steps stale)."""
        for i, identity in enumerate(self._all("identity")):
            self.check_identity(i, tuple(identity))

    @property
    def nodes(self) -> int:
        return len({identity[0] for identity in self.identities if identity is not None})

    def broadcast(self, weights: list[np.ndarray]) -> None:
        """Put the weights in the object store once; workers fetch them with their next call."""
        start = time.perf_counter()
        self.weights_bytes = sum(w.nbytes for w in weights)
        self.weights_ref = [self.ray.put(weights)]
        self.version += 1
        self.broadcast_seconds.append(time.perf_counter() - start)

    def call(self, i: int, method: str) -> Any:
        """Send worker ``i`` a collect/gradients call with the current weights."""
        return getattr(self.actors[i], method).remote(self.version, self.weights_ref)

    def result(self, i: int, ref: Any, method: str) -> Any:
        """The call's result, through restarts (``_get``). Counts a restart when the
        answer comes from a new process."""
        out = self._get(ref, lambda: self.call(i, method))
        self.check_identity(i, tuple(out[2]["identity"] if isinstance(out, tuple) else out["identity"]))
        return out

    def _get(self, ref: Any, send_again: Callable[[], Any]) -> Any:
        """``ray.get(ref)``; while its worker is dead or restarting, wait and send the call
        again (Ray restarts the actor; the call itself is not retried by Ray)."""
        errors = (self.ray.exceptions.RayActorError, self.ray.exceptions.ActorUnavailableError)
        deadline = time.monotonic() + CALL_RETRY_SECONDS
        while True:
            try:
                return self.ray.get(ref)
            except errors:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
                ref = send_again()

    def check_identity(self, i: int, identity: tuple[str, int]) -> None:
        known = self.identities[i]
        self.identities[i] = identity
        if known is not None and identity != known:
            self.restarts += 1
            print(
                f"a2c train: warning: worker {i} was restarted (its process died); its envs start new "
                f"episodes (restarts so far: {self.restarts})",
                file=sys.stderr,
            )

    def _all(self, method: str, *args: list[Any]) -> list[Any]:
        """Call ``method(args[0][i], ...)`` on every worker ``i`` and wait, through restarts."""

        def send(i: int) -> Any:
            return getattr(self.actors[i], method).remote(*(a[i] for a in args))

        refs = [send(i) for i in range(len(self.actors))]
        return [self._get(ref, functools.partial(send, i)) for i, ref in enumerate(refs)]

    def state(self) -> dict[str, Any]:
        """Every worker's collector state (RNGs, carried observation, envs) and the restarts."""
        return {"workers": self._all("state"), "restarts": self.restarts}

    def load_state(self, state: dict[str, Any]) -> list[str]:
        self.restarts = state["restarts"]
        warnings = self._all("load_state", state["workers"])
        return list(dict.fromkeys(w for ws in warnings for w in ws))

    def metrics(self, round_seconds: float) -> dict[str, float]:
        return {
            "workers/restarts": float(self.restarts),
            "workers/round_seconds": round_seconds,
            "workers/broadcast_seconds": self.broadcast_seconds[-1] if self.broadcast_seconds else 0.0,
        }

    def summary(self) -> dict[str, Any]:
        put = np.asarray(self.broadcast_seconds or [0.0])
        return {
            "workers": self.cfg.workers,
            "envs_per_worker": self.cfg.envs_per_worker,
            "worker_nodes": self.nodes,
            "worker_restarts": self.restarts,
            "broadcast_seconds_median": float(np.median(put)),
            "weights_bytes": self.weights_bytes,
        }

    def close(self) -> None:
        """Stop the workers, and Ray if this pool started it (no process is left behind)."""
        for actor in self.actors:
            try:
                self.ray.kill(actor, no_restart=True)
            except Exception:  # already gone
                pass
        self.actors = []
        if self.owned_ray is not None:
            if self.ray.is_initialized():
                self.ray.shutdown()
            self.owned_ray.restore()
        self.owned_ray = None


def concat_envs(parts: tuple[Any, ...]) -> Any:
    """Workers' arrays (T, n_i, ...) as one (T, sum n_i, ...); dicts of them key by key."""
    if isinstance(parts[0], dict):
        return {k: np.concatenate([p[k] for p in parts], axis=1) for k in parts[0]}
    return np.concatenate(parts, axis=1)


class RayCollector:
    """The [`Collector`][a2c.trainers.rollout.Collector] of synchronous A2C on Ray: each round every
    worker collects ``n_steps`` on its envs with the newest weights; the batches are
    joined along the env axis."""

    shares_model = False
    metric_columns = WORKER_COLUMNS

    def __init__(self, cfg: Config) -> None:
        from a2c.envs.make import make_vec_env

        probe = make_vec_env(cfg.env_id, 1, env_kwargs=cfg.env_kwargs)  # EnvError here, before Ray starts
        self.observation_space, self.action_space = probe.single_observation_space, probe.single_action_space
        probe.close()
        self.num_envs, self.n_steps = cfg.n_envs, cfg.n_steps
        self.pool = WorkerPool(cfg)
        self.round_seconds = 0.0
        self.rounds: list[tuple[float, float]] = []  # (round wall time, slowest worker's collection)
        self.memory: Memory | None = None  # a recurrent model's, of the last round (CarriesState)

    def set_weights(self, weights: list[np.ndarray]) -> None:
        self.pool.broadcast(weights)

    def collect(self) -> tuple[Rollout, EpisodeStats]:
        start = time.perf_counter()
        refs = [self.pool.call(i, "collect") for i in range(len(self.pool.actors))]
        parts = [self.pool.result(i, ref, "collect") for i, ref in enumerate(refs)]
        self.round_seconds = time.perf_counter() - start
        self.rounds.append((self.round_seconds, max(info["seconds"] for _, _, info in parts)))
        # every field along the env axis (Dict observations: every key's array alike)
        batch = Rollout(*(concat_envs(field) for field in zip(*(b for b, _, _ in parts))))
        memories = [info["memory"] for _, _, info in parts]
        if memories[0] is not None:  # each worker's envs' states (N_i, S) and starts (T + 1, N_i), joined
            self.memory = Memory(
                np.concatenate([m.state for m in memories]), np.concatenate([m.starts for m in memories], axis=1)
            )
        returns = [r for _, stats, _ in parts for r in stats.returns]
        lengths = [n for _, stats, _ in parts for n in stats.lengths]
        return batch, EpisodeStats(returns, lengths)

    def metrics(self) -> dict[str, float]:
        return self.pool.metrics(self.round_seconds)

    def summary(self) -> dict[str, Any]:
        """The pool's, and where a round's time goes: ``round_overhead_seconds_median`` is
        a round's wall time less its slowest worker's collection (sending the call, fetching
        the weights, returning the batch), the price of collecting remotely."""
        rounds = np.asarray(self.rounds[1:] or [(0.0, 0.0)])  # the first round waits for the workers to start
        return {
            **self.pool.summary(),
            "round_seconds_median": float(np.median(rounds[:, 0])),
            "round_overhead_seconds_median": float(np.median(rounds[:, 0] - rounds[:, 1])),
        }

    def state(self) -> dict[str, Any]:
        return self.pool.state()

    def load_state(self, state: dict[str, Any]) -> list[str]:
        return self.pool.load_state(state)

    def close(self) -> None:
        self.pool.close()
