"""Population training: many fused agents (seeds x hyperparameters) in ONE compiled program.

PureJaxRL vmaps its whole training loop over seeds. Here the members' weights are
stacked along a leading member axis (one ``keras.Variable`` of shape (P, ...) per
weight of the model), and one ``tf.function`` runs, per update,

    rollout of every member's envs (one batched TensorFlow env port of P x n_envs envs,
    each member's policy evaluated at its own weights)
    -> tf.vectorized_map over members of learner.member_gradients
       (GAE, the A2C loss, the tape, the clip: the code a single run uses)
    -> one optimizer step on the stacked weights

so the program's size does not grow with P (except one random draw per member and
step, below). The optimizer step is the SAME Keras optimizer a single run builds,
applied to the stacked variables: RMSprop and Adam are elementwise, so member k's
slice of the stacked slots evolves exactly as its own optimizer would, and its learning
rate (a (P,) vector from :func:`a2c.learner.learning_rate_schedule`, broadcast per
weight) is the only per-member number it needs. Keras' ``stateless_apply`` would
have mapped the optimizer over members too, but the TensorFlow backend does not
support it.

Member identity: member k starts from the weights ``model_for`` builds for its seed,
draws its actions and env resets from its own Philox generator seeded with its seed
(the same draw per step a single fused run makes), and so follows the same
trajectory as ``a2c train --fused`` with its seed and hyperparameters; only float
rounding differs (batched matmuls and vectorized reductions may sum in another
order). tests/test_population.py checks the weights after several updates.

Why this module is long (~400 lines): the loop, its greedy evaluation and the run it
writes (members' directories, checkpoints, summary) share the stacked state and are
read together. The run's schedule is simpler than :class:`a2c.run.RunDriver`'s (all
members advance in lock-step), so it is written here rather than bent into the
single-run driver.
"""

from __future__ import annotations

import dataclasses
import gc
import time
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from a2c.config import Config
from a2c.distributions import distribution_of
from a2c.envs import env_spaces
from a2c.fused import EPISODE_STATS, LoopState, ported_env
from a2c.members import POPULATION_FILE
from a2c.learner import UPDATE_METRICS, learning_rate_schedule, make_optimizer, member_gradients
from a2c.model import model_for
from a2c.rollout import Rollout
from a2c.tf_envs import TFEnv, UniformNoise
from a2c.tf_envs.base import RNG_ALG


class MemberConfig:
    """A member's view of the shared config: swept fields are its own (tensors inside
    ``tf.vectorized_map``), every other field is the shared config's."""

    def __init__(self, cfg: Config, values: dict[str, tf.Tensor]) -> None:
        self._cfg, self._values = cfg, values

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__["_values"]
        return values[name] if name in values else getattr(self.__dict__["_cfg"], name)


def initial_weights(members: Sequence[Config], obs_space: Any, n_actions: int) -> list[np.ndarray]:
    """Each member's initial weights, exactly those ``model_for`` builds for its seed,
    stacked along a leading member axis. Models are built once per distinct seed."""
    by_seed: dict[int, list[np.ndarray]] = {}
    for m in members:
        if m.seed not in by_seed:
            by_seed[m.seed] = model_for(m, obs_space, n_actions).get_weights()
    return [np.stack([by_seed[m.seed][i] for m in members]) for i in range(len(by_seed[members[0].seed]))]


class PopulationLoop:
    """P members' fused training as one compiled loop; state in ``tf.Variable``s.

    ``run(k)`` performs ``k`` updates of every member and returns each update metric
    as a (P,) mean over the ``k`` updates and each member's finished-episode sums;
    ``run(0)`` compiles without changing anything. ``evaluate(physics)`` plays every
    member greedily from the given initial env states (see :meth:`evaluate`).
    """

    def __init__(self, members: Sequence[Config], swept: Sequence[str], env: TFEnv) -> None:
        cfg = members[0]
        self.cfg, self.members, self.swept, self.env = cfg, list(members), tuple(swept), env
        self.size = p = len(members)
        n = cfg.n_envs
        obs_space, _ = env_spaces(cfg.env_id)
        # The template: its layers are evaluated at each member's weights (stateless_call).
        self.model = model_for(cfg, obs_space, env.n_actions)
        stacked = initial_weights(members, obs_space, env.n_actions)
        self.weights = [keras.Variable(w, name=f"members_{v.name}", trainable=False)
                        for w, v in zip(stacked, self.model.trainable_variables)]
        self.optimizer = make_optimizer(cfg)
        self.optimizer.build(self.weights)
        self.lrs = tf.constant([m.lr for m in members], tf.float32)
        self.hparams = {name: tf.constant([getattr(m, name) for m in members], tf.float32)
                        for name in self.swept if name != "lr"}
        # One generator per member, seeded as a single fused run seeds its own.
        self.rngs = [tf.random.Generator.from_seed(m.seed, alg=RNG_ALG) for m in members]
        resets = [env.reset(rng, n) for rng in self.rngs]
        env_state = tf.nest.map_structure(lambda *xs: tf.concat(xs, 0), *[s for s, _ in resets])
        obs = tf.stack([tf.cast(o, tf.float32) for _, o in resets])
        self.state = LoopState(
            env_state=tf.nest.map_structure(lambda x: tf.Variable(x, trainable=False), env_state),
            obs=tf.Variable(obs, trainable=False),
            ep_return=tf.Variable(tf.zeros([p, n], tf.float32), trainable=False),
            ep_length=tf.Variable(tf.zeros([p, n], tf.int32), trainable=False),
        )
        self.traces = 0
        self.run = tf.function(self._run, input_signature=[tf.TensorSpec([], tf.int32)],
                               jit_compile=cfg.fused_xla, autograph=False)
        self._evaluate = tf.function(self._greedy_episodes, jit_compile=cfg.fused_xla, autograph=False)

    def compile(self) -> float:
        """Trace and compile ``run`` via ``run(0)`` (changes nothing); seconds taken."""
        enabled = gc.isenabled()
        gc.disable()
        try:
            start = time.perf_counter()
            self.run(tf.constant(0, tf.int32))
            return time.perf_counter() - start
        finally:
            if enabled:
                gc.enable()

    def member_weights(self, k: int) -> list[np.ndarray]:
        """Member k's weights, in the order of the model's ``get_weights``."""
        return [np.asarray(v)[k] for v in self.weights]

    # ------------------------------------------------------------------ graph code
    def _forward(self, weights: list[tf.Tensor], obs: tf.Tensor) -> dict[str, tf.Tensor]:
        """The model's outputs for (P, batch, ...) observations, member k's at its weights."""
        model = self.model

        def one(args: tuple[list[tf.Tensor], tf.Tensor]) -> dict[str, tf.Tensor]:
            w, x = args
            return model.stateless_call(w, [], x)[0]

        return tf.vectorized_map(one, (weights, obs), fallback_to_while_loop=False)

    def _rollout(self, weights: list[tf.Tensor], state: LoopState
                 ) -> tuple[LoopState, Rollout, tf.Tensor, dict[str, tf.Tensor]]:
        """n_steps x n_envs transitions per member: (P, T, n, ...) batch, final obs, episode sums (P,)."""
        cfg, env, p = self.cfg, self.env, self.size
        t_max, n = cfg.n_steps, cfg.n_envs
        obs_shape = [p, n, *state.obs.shape[2:]]
        arrays = {name: tf.TensorArray(dtype, size=t_max, element_shape=shape)
                  for name, dtype, shape in (
                      ("obs", tf.float32, obs_shape), ("final_obs", tf.float32, obs_shape),
                      ("actions", tf.int32, [p, n]), ("rewards", tf.float32, [p, n]),
                      ("terminated", tf.float32, [p, n]), ("truncated", tf.float32, [p, n]))}
        zero = tf.zeros([p])
        dist = distribution_of(self.model.output)

        def member_major(x: tf.Tensor) -> tf.Tensor:
            return tf.reshape(x, [p, n, *x.shape[1:]])

        def body(t, s: LoopState, arrays, episodes, return_sum, length_sum):
            params = dist.params(self._forward(weights, s.obs))
            width = dist.noise_shape(params)[-1]
            # Each member's ONE draw per step, from its own generator (as a single fused run).
            u = tf.stack([rng.uniform([n, width + env.noise_dim], dtype=tf.float32) for rng in self.rngs])
            actions = dist.sample(params, u[..., :width])
            noise = UniformNoise(tf.reshape(u[..., width:], [p * n, env.noise_dim]))
            step = env.step(s.env_state, tf.reshape(actions, [-1]), noise)
            reward = member_major(tf.cast(step.reward, tf.float32))
            terminated, truncated = member_major(step.terminated), member_major(step.truncated)
            done = tf.logical_or(terminated, truncated)
            ep_return = s.ep_return + reward
            ep_length = s.ep_length + 1
            done_f = tf.cast(done, tf.float32)
            episodes += tf.reduce_sum(done_f, axis=1)
            return_sum += tf.reduce_sum(done_f * ep_return, axis=1)
            length_sum += tf.reduce_sum(done_f * tf.cast(ep_length, tf.float32), axis=1)
            arrays = {
                "obs": arrays["obs"].write(t, s.obs),
                "final_obs": arrays["final_obs"].write(t, member_major(tf.cast(step.final_obs, tf.float32))),
                "actions": arrays["actions"].write(t, actions),
                "rewards": arrays["rewards"].write(t, reward),
                "terminated": arrays["terminated"].write(t, tf.cast(terminated, tf.float32)),
                "truncated": arrays["truncated"].write(t, tf.cast(truncated, tf.float32)),
            }
            s = LoopState(step.state, member_major(tf.cast(step.obs, tf.float32)),
                          tf.where(done, 0.0, ep_return), tf.where(done, 0, ep_length))
            return t + 1, s, arrays, episodes, return_sum, length_sum

        _, state, arrays, episodes, return_sum, length_sum = tf.while_loop(
            lambda t, *_: t < t_max, body, (tf.constant(0), state, arrays, zero, zero, zero),
            maximum_iterations=t_max)
        stacked = {name: ta.stack() for name, ta in arrays.items()}  # (T, P, n, ...)

        def by_member(x: tf.Tensor) -> tf.Tensor:  # (T, P, ...) -> (P, T, ...)
            return tf.transpose(x, [1, 0, *range(2, x.shape.rank)])

        batch = Rollout(
            obs=by_member(tf.concat([stacked["obs"], state.obs[None]], axis=0)),
            actions=by_member(stacked["actions"]), rewards=by_member(stacked["rewards"]),
            terminated=by_member(stacked["terminated"]), truncated=by_member(stacked["truncated"]),
            valid=tf.ones([p, t_max, n], tf.float32),  # same-step autoreset: every transition is real
        )
        stats = {"episodes": episodes, "return_sum": return_sum, "length_sum": length_sum}
        return state, batch, by_member(stacked["final_obs"]), stats

    def _update(self, batch: Rollout, final_obs: tf.Tensor) -> dict[str, tf.Tensor]:
        """One update of every member: vectorized gradients, one optimizer step; (P,) metrics."""
        cfg, model, optimizer = self.cfg, self.model, self.optimizer
        hparams = self.hparams

        def one(args):
            w, b, f, hp = args
            return member_gradients(model, w, b, MemberConfig(cfg, hp), next_obs=f)

        weights = [v.value for v in self.weights]
        grads, metrics = tf.vectorized_map(one, (weights, batch, final_obs, hparams), fallback_to_while_loop=False)
        schedule = learning_rate_schedule(cfg, self.lrs)
        lr = tf.cast(schedule(optimizer.iterations) if callable(schedule) else schedule, tf.float32)
        for g, v in zip(grads, self.weights):
            # What Keras' apply_gradients does per variable, with the member's rate broadcast.
            optimizer.update_step(g, v.value, tf.reshape(lr, [self.size] + [1] * (g.shape.rank - 1)))
        optimizer.iterations.assign_add(1)
        return {**metrics, "learning_rate": lr}

    def _run(self, num_updates: tf.Tensor) -> dict[str, tf.Tensor]:
        self.traces += 1  # Python side effect: counts traces, not calls
        state0 = tf.nest.map_structure(lambda v: v.read_value(), self.state)
        sums0 = {k: tf.zeros([self.size]) for k in UPDATE_METRICS + EPISODE_STATS}

        def body(i, s: LoopState, sums):
            s, batch, final_obs, ep_stats = self._rollout([v.value for v in self.weights], s)
            metrics = self._update(batch, final_obs)
            sums = {k: sums[k] + tf.cast({**metrics, **ep_stats}[k], tf.float32) for k in sums}
            return i + 1, s, sums

        _, state, sums = tf.while_loop(lambda i, *_: i < num_updates, body, (tf.constant(0), state0, sums0))
        tf.nest.map_structure(lambda v, x: v.assign(x), self.state, state)
        count = tf.maximum(tf.cast(num_updates, tf.float32), 1.0)
        out = {k: sums[k] / count for k in UPDATE_METRICS}
        out.update({k: sums[k] for k in EPISODE_STATS})
        return out

    # ------------------------------------------------------------------ evaluation
    def _greedy_episodes(self, physics: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Every member plays one greedy episode from each initial physics state (E, n_physics)
        on the float64 port (gymnasium's physics precision); returns (P, E) returns, lengths."""
        env = dataclasses.replace(self.env, dtype=tf.float64)
        p, e = self.size, physics.shape[0]
        state = env.state_from_physics(tf.tile(physics, [p, 1]))
        dist = distribution_of(self.model.output)
        weights = [v.value for v in self.weights]
        zeros_noise = tf.zeros([p * e, env.noise_dim])

        def body(t, state, obs, alive, returns, lengths):
            x = tf.reshape(tf.cast(obs, tf.float32), [p, e, -1])
            actions = dist.mode(dist.params(self._forward(weights, x)))
            step = env.step(state, tf.reshape(actions, [-1]), UniformNoise(zeros_noise))
            alive_f = tf.cast(alive, tf.float64)
            returns += alive_f * tf.cast(step.reward, tf.float64)
            lengths += tf.cast(alive, tf.int32)
            alive = tf.logical_and(alive, tf.logical_not(tf.logical_or(step.terminated, step.truncated)))
            return t + 1, step.state, step.obs, alive, returns, lengths

        init = (tf.constant(0), state, env.observe(state), tf.ones([p * e], tf.bool),
                tf.zeros([p * e], tf.float64), tf.zeros([p * e], tf.int32))
        _, _, _, _, returns, lengths = tf.while_loop(
            lambda t, *rest: tf.logical_and(t < env.max_episode_steps, tf.reduce_any(rest[2])), body, init,
            maximum_iterations=env.max_episode_steps)
        return tf.reshape(returns, [p, e]), tf.reshape(lengths, [p, e])

    def evaluate(self, physics: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(P, E) greedy returns and lengths from the initial physics states ``physics``."""
        returns, lengths = self._evaluate(tf.constant(physics, tf.float64))
        return returns.numpy(), lengths.numpy()


# ------------------------------------------------------------------------------ the run
#: Greedy return that counts as solving an environment (the population summary's "solved").
SOLVED_AT: dict[str, float] = {"CartPole-v1": 475.0, "Acrobot-v1": -100.0, "MountainCar-v0": -110.0}
POPULATION_TABLE = "population.md"
POPULATION_CURVES = "population_curves.png"


def eval_physics(env: TFEnv, episodes: int, seed: int) -> np.ndarray:
    """(episodes, n_physics) initial states of gymnasium's ``env_id`` reset with seeds
    ``seed + k``: the episodes :func:`a2c.evaluate.evaluate_policy` plays."""
    from a2c.envs import make_env

    gym_env = make_env(env.env_id)[0]
    try:
        states = []
        for k in range(episodes):
            gym_env.reset(seed=seed + k)
            states.append(np.asarray(gym_env.unwrapped.state, np.float64).reshape(-1)[:env.n_physics])
        return np.stack(states)
    finally:
        gym_env.close()


class PopulationRun:
    """One population run directory: the loop above, lock-step for all members, and
    each member's files in ``members/<k>/`` in the layout of a single run (metrics.csv,
    evaluations.csv, tb/, config.toml, model.keras, summary.json), so that ``a2c
    evaluate``, ``a2c export`` and ``a2c plot`` take a member's directory as a run.

    The top level holds config.toml (the shared config), population.json (seeds, sweep,
    the members' seeds and values), checkpoints/ (all members at once, the
    :class:`~a2c.checkpoint.RunCheckpoint` a single run uses), summary.json and
    population.md (per member and per swept setting: mean, std, min, fraction solved)
    and population_curves.png. Evaluations run every member in one compiled call
    (:meth:`PopulationLoop.evaluate`), from the initial states of gymnasium's episodes
    seeded ``EVAL_SEED_BASE + k``.
    """

    def __init__(self, base: Config, spec: dict[str, Any], run_dir: Any, *, quiet: bool = False,
                 callback: Any = None) -> None:
        from pathlib import Path

        from a2c.checkpoint import RunCheckpoint
        from a2c.members import member_configs
        from a2c.progress import Progress, RecentEpisodes

        self.base, self.spec, self.run_dir, self.quiet = base, spec, Path(run_dir), quiet
        self.callback = callback  # (update, global_step) after each call; KeyboardInterrupt stops as Ctrl-C
        self.members = member_configs(base, spec["seeds"], spec["sweep"])
        self.swept = tuple(spec["sweep"])
        self.env = ported_env(base.env_id)
        self.loop = PopulationLoop(self.members, self.swept, self.env)
        self.progress = Progress(next_eval=base.eval_every if base.eval_every > 0 else None)
        self.recent = [RecentEpisodes() for _ in self.members]
        self.checkpoints = RunCheckpoint(self.run_dir, self.loop.model, self.loop.optimizer, base.keep_checkpoints, {
            "member_weights": list(self.loop.weights), "member_rngs": list(self.loop.rngs),
            "population_state": tf.nest.flatten(self.loop.state)})
        self.saved_update: int | None = None
        self.loggers: list[Any] = []
        self.episodes = np.zeros(len(self.members), np.int64)  # finished episodes per member

    def member_dir(self, k: int) -> Any:
        from a2c.members import member_dir

        return member_dir(self.run_dir, k)

    # -- checkpoints ----------------------------------------------------------------------
    def restore(self) -> None:
        from a2c.logger import rewind_logs
        from a2c.progress import Progress, RecentEpisodes

        host = self.checkpoints.restore()
        self.progress = Progress.from_dict(host["progress"])
        self.progress.resumed_at.append(self.progress.update)
        self.recent = [RecentEpisodes(chunks=c) for c in host["recent"]]
        self.episodes = np.array(host["episodes"], np.int64)
        self.saved_update = self.progress.update
        for k, sizes in enumerate(host["logs"]):
            rewind_logs(self.member_dir(k), sizes)

    def save_checkpoint(self) -> None:
        p = self.progress
        if self.saved_update == p.update:
            return
        self.checkpoints.save(p.update, {
            "progress": p.to_dict(), "recent": [[list(c) for c in r.chunks] for r in self.recent],
            "episodes": self.episodes.tolist(),
            "logs": [logger.file_sizes() for logger in self.loggers]})
        self.saved_update = p.update

    # -- the loop -------------------------------------------------------------------------
    def run(self, new: bool) -> dict[str, Any]:
        from a2c.logger import RunLogger
        from a2c.signals import StopSignals

        for k, member in enumerate(self.members):
            self.member_dir(k).mkdir(parents=True, exist_ok=True)
            self.loggers.append(RunLogger(self.member_dir(k), member.to_dict() if new else None))
        self.stop = StopSignals()
        try:
            with self.stop:
                self._loop()
                self.stop.deferred = False
                return self._finish()
        finally:
            for logger in self.loggers:
                logger.close()

    def _check_finite(self, out: dict[str, np.ndarray], first: int, last: int) -> None:
        from a2c.errors import NonFiniteError

        bad = ~(np.isfinite(out["total_loss"]) & np.isfinite(out["grad_norm"]))
        if bad.any():
            names = ", ".join(str(k) for k in np.flatnonzero(bad)[:8])
            note = ("no checkpoint had been saved yet" if self.saved_update is None
                    else f"the last good checkpoint (update {self.saved_update}) is kept")
            raise NonFiniteError(f"non-finite loss or gradient in updates {first}-{last} of member(s) {names}; "
                                 f"training stopped, {note}. Try a lower --lr (or drop it from the sweep)")

    def _loop(self) -> None:
        import math
        import signal as signal_module

        from a2c.evaluate import EVAL_SEED_BASE
        from a2c.run_dir import resume_command
        from a2c.signals import TrainingInterrupted

        cfg, p, loop = self.base, self.progress, self.loop
        if p.update < cfg.n_updates:
            seconds = loop.compile()
            p.train_seconds += seconds
            p.warmup_seconds += seconds
        physics = eval_physics(self.env, cfg.eval_episodes, EVAL_SEED_BASE) if p.next_eval else None
        tick = time.perf_counter()
        while p.update < cfg.n_updates:
            # STEP: k updates of every member in one compiled call, ending on evaluation steps.
            k = min(cfg.fused_updates_per_call, cfg.n_updates - p.update)
            if p.next_eval is not None:
                k = min(k, max(math.ceil((p.next_eval - p.global_step) / cfg.batch_size), 1))
            out = {name: v.numpy() for name, v in loop.run(tf.constant(k, tf.int32)).items()}
            done = p.update + k
            self._check_finite(out, p.update + 1, done)
            p.global_step += k * cfg.batch_size
            for recent, e, rs, ls in zip(self.recent, out["episodes"], out["return_sum"], out["length_sum"]):
                recent.add(float(e), float(rs), float(ls))
            self.episodes += out["episodes"].astype(np.int64)
            p.episodes = int(self.episodes.sum())
            # LOG: a row per member when a multiple of log_every was reached, and at the end.
            if done // cfg.log_every > p.update // cfg.log_every or done == cfg.n_updates:
                now = time.perf_counter()
                p.train_seconds += now - tick
                tick = now
                self._log_rows(done, out)
            # EVALUATE: every member greedily, in one compiled call, off the clock.
            if p.next_eval is not None and p.global_step >= p.next_eval:
                p.train_seconds += time.perf_counter() - tick
                self._evaluate(physics)
                while p.next_eval <= p.global_step:
                    p.next_eval += cfg.eval_every
                tick = time.perf_counter()
            due = (cfg.checkpoint_every > 0 and done // cfg.checkpoint_every > p.update // cfg.checkpoint_every) \
                or done == cfg.n_updates
            p.update = done
            if self.callback is not None:
                try:
                    self.callback(done, p.global_step)
                except KeyboardInterrupt:
                    self.stop.request(signal_module.SIGINT)
            # CHECKPOINT: every checkpoint_every updates, at the end, and when asked to stop.
            if due or self.stop.signum is not None:
                p.train_seconds += time.perf_counter() - tick
                self.save_checkpoint()
                tick = time.perf_counter()
            if self.stop.signum is not None:
                name = signal_module.Signals(self.stop.signum).name
                raise TrainingInterrupted(
                    f"stopped by {name}; checkpoint at update {self.saved_update} of {cfg.n_updates}. "
                    f"Continue with: {resume_command(self.run_dir)}",
                    signum=self.stop.signum, run_dir=self.run_dir, checkpoint_update=self.saved_update)
        p.train_seconds += time.perf_counter() - tick

    def _say(self, text: str) -> None:
        if not self.quiet:
            print(text, flush=True)

    def _log_rows(self, update: int, out: dict[str, np.ndarray]) -> None:
        p = self.progress
        returns = []
        for k, logger in enumerate(self.loggers):
            ret, length = self.recent[k].return_mean(), self.recent[k].length_mean()
            if ret is not None:
                returns.append(ret)
            logger.log_metrics({
                "global_step": p.global_step, "update": update,
                "rollout/ep_return_mean": "" if ret is None else ret,
                "rollout/ep_length_mean": "" if length is None else length,
                "rollout/episodes": int(self.episodes[k]),
                **{f"train/{name}": float(out[name][k]) for name in UPDATE_METRICS},
                "time/steps_per_second": p.steps_per_second,  # per member; all members: x P
                "time/elapsed_seconds": p.train_seconds,
            })
        if returns:
            self._say(f"step {p.global_step:,}/{self.base.n_updates * self.base.batch_size:,} per member, "
                      f"{len(self.members)} members: return (last 100) mean {np.mean(returns):.1f}, "
                      f"min {np.min(returns):.1f}; {p.steps_per_second * len(self.members):,.0f} steps/s")

    def _evaluate(self, physics: np.ndarray) -> list[Any]:
        """Greedy episodes of every member from ``physics``; logged to each member's evaluations.csv."""
        from a2c.evaluate import EVAL_SEED_BASE, EvalResult

        p = self.progress
        returns, lengths = self.loop.evaluate(physics)
        seeds = [EVAL_SEED_BASE + i for i in range(physics.shape[0])]
        results = [EvalResult(r.tolist(), [int(x) for x in n], seeds) for r, n in zip(returns, lengths)]
        for logger, result in zip(self.loggers, results):
            logger.log_eval({"global_step": p.global_step, "time/elapsed_seconds": p.train_seconds,
                             **{f"eval/{k}": v for k, v in result.summary().items()}})
        threshold = SOLVED_AT.get(self.base.env_id)
        means = np.array([r.mean for r in results])
        solved = f", {np.mean(means >= threshold):.0%} >= {threshold:g}" if threshold is not None else ""
        self._say(f"greedy evaluation ({physics.shape[0]} episodes) at step {p.global_step:,}: mean over members "
                  f"{means.mean():.1f}, min {means.min():.1f}{solved}")
        return results

    def _finish(self) -> dict[str, Any]:
        """Every member's model.keras and summary.json; the population's summary, table and plot."""
        import sys

        from a2c.evaluate import EVAL_SEED_BASE, final_eval_fields
        from a2c.files import atomic_write_json, atomic_write_text
        from a2c.saving import MODEL_FILE, save_model

        cfg, p, model = self.base, self.progress, self.loop.model
        finals: list[Any] = [None] * len(self.members)
        if cfg.final_eval_episodes > 0:
            finals = self._evaluate(eval_physics(self.env, cfg.final_eval_episodes, EVAL_SEED_BASE))
        rows = []
        for k, member in enumerate(self.members):
            model.set_weights(self.loop.member_weights(k))
            save_model(model, self.member_dir(k) / MODEL_FILE)
            row = {"member": k, "seed": member.seed, **{name: getattr(member, name) for name in self.swept},
                   **final_eval_fields(finals[k]), "train_return_mean_last100": self.recent[k].return_mean()}
            atomic_write_json(self.member_dir(k) / "summary.json", {
                "env_id": cfg.env_id, "trainer": "population", "population_run": str(self.run_dir),
                "total_steps": p.global_step, "updates": cfg.n_updates, "train_seconds": p.train_seconds,
                "steps_per_second": p.steps_per_second, "warmup_seconds": p.warmup_seconds,
                "episodes": int(self.episodes[k]), **row})
            rows.append(row)
            self.loggers[k].close()
        summary = {
            "env_id": cfg.env_id, "trainer": "population", "members": len(self.members),
            "seeds": self.spec["seeds"], "sweep": self.spec["sweep"], "executor": "xla" if cfg.fused_xla else "graph",
            "total_steps_per_member": p.global_step, "total_steps": p.global_step * len(self.members),
            "updates": cfg.n_updates, "train_seconds": p.train_seconds, "warmup_seconds": p.warmup_seconds,
            "compile_seconds": p.warmup_seconds,
            "steps_per_second": p.steps_per_second * len(self.members), "resumed_at_updates": p.resumed_at,
            "solved_at": SOLVED_AT.get(cfg.env_id), "groups": population_groups(rows, self.swept,
                                                                                 SOLVED_AT.get(cfg.env_id)),
            "member_results": rows, "traces": self.loop.traces,
            "versions": {"tensorflow": tf.__version__, "keras": keras.__version__,
                         "python": sys.version.split()[0]},
        }
        atomic_write_json(self.run_dir / "summary.json", summary)
        atomic_write_text(self.run_dir / POPULATION_TABLE, population_table(summary, self.swept))
        plot_population(self.run_dir, len(self.members))
        return summary


def population_groups(rows: list[dict[str, Any]], swept: Sequence[str], solved_at: float | None
                      ) -> list[dict[str, Any]]:
    """Per swept setting (all members when nothing is swept): the final greedy returns'
    mean, std, min and max over members and the fraction of members solved."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row[name] for name in swept), []).append(row)
    out = []
    for values, members in groups.items():
        finals = np.array([m["eval_mean_return"] for m in members if m["eval_mean_return"] is not None])
        stats: dict[str, Any] = {"members": len(members), "seeds": [m["seed"] for m in members]}
        if finals.size:
            stats.update(mean=float(finals.mean()), std=float(finals.std()), min=float(finals.min()),
                         max=float(finals.max()),
                         solved_fraction=None if solved_at is None else float(np.mean(finals >= solved_at)))
        out.append({**dict(zip(swept, values)), **stats})
    return out


def population_table(summary: dict[str, Any], swept: Sequence[str]) -> str:
    """population.md: the per-setting table, then one row per member."""

    def f(x: Any, spec: str = ".1f") -> str:
        return "n/a" if x is None else format(x, spec)

    solved = summary["solved_at"]
    lines = [f"# Population: {summary['members']} members on {summary['env_id']}", "",
             f"{summary['total_steps_per_member']:,} env steps per member, {summary['train_seconds']:.1f} s of "
             f"training ({summary['warmup_seconds']:.1f} s of it compilation), {summary['steps_per_second']:,.0f} "
             f"env steps/s over all members ({summary['executor']} executor). Final greedy evaluation per member"
             + (f"; solved = mean >= {solved:g}." if solved is not None else "."), "",
             "| " + " | ".join([*swept, "members", "mean", "std", "min", "max", "solved"]) + " |",
             "|" + "---|" * (len(swept) + 6)]
    for g in summary["groups"]:
        lines.append("| " + " | ".join([*(f"{g[n]:g}" for n in swept), str(g["members"]), f(g.get("mean")),
                                        f(g.get("std")), f(g.get("min")), f(g.get("max")),
                                        f(g.get("solved_fraction"), ".0%")]) + " |")
    lines += ["", "| member | seed | " + " | ".join(swept) + (" | " if swept else "") + "greedy return | min |",
              "|---|---|" + "---|" * len(swept) + "---|---|"]
    for r in summary["member_results"]:
        lines.append(f"| {r['member']} | {r['seed']} | " + "".join(f"{r[n]:g} | " for n in swept)
                     + f"{f(r['eval_mean_return'])} | {f(r['eval_min_return'])} |")
    return "\n".join(lines) + "\n"


def plot_population(run_dir: Any, members: int) -> None:
    """population_curves.png: every member's training return and greedy evaluations."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from a2c.members import member_dir
    from a2c.run_data import read_csv_columns

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    alpha = max(0.15, min(0.8, 8 / members))
    for k in range(members):
        d = member_dir(run_dir, k)
        m = read_csv_columns(d / "metrics.csv")
        axes[0].plot(m["global_step"], m["rollout/ep_return_mean"], color="tab:blue", lw=0.8, alpha=alpha)
        e = read_csv_columns(d / "evaluations.csv")
        if len(e.get("global_step", [])):
            axes[1].plot(e["global_step"], e["eval/mean_return"], color="tab:green", lw=0.8, alpha=alpha,
                         marker=".")
    axes[0].set_title(f"training return (last 100 episodes), {members} members")
    axes[1].set_title("greedy evaluation (mean over episodes), every member")
    for ax in axes:
        ax.set_xlabel("env steps per member")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(run_dir / POPULATION_CURVES, dpi=110)
    plt.close(fig)


def train_population(base: Config, seeds: Sequence[int], sweep: dict[str, list[Any]], *, overwrite: bool = False,
                     quiet: bool = False, callback: Any = None) -> tuple[Any, dict[str, Any]]:
    """Train every member of ``seeds`` x ``sweep`` on ``base`` (a fused config) in a new
    run directory; returns (run directory, population summary). ``callback``: as for
    :func:`a2c.train.train` (stopping raises :class:`~a2c.signals.TrainingInterrupted`
    once the checkpoint is written; continue with :func:`resume_population`)."""
    import tomli_w

    from a2c.files import atomic_write_json, atomic_write_text
    from a2c.run_dir import prepare_run_dir
    from a2c.tf_setup import configure_tensorflow

    base.validate()
    configure_tensorflow(base)
    spec = {"seeds": list(seeds), "sweep": {k: list(v) for k, v in sweep.items()}}
    ported_env(base.env_id)  # EnvError before anything is written
    run_dir = prepare_run_dir(base, overwrite)
    run = PopulationRun(base, spec, run_dir, quiet=quiet, callback=callback)
    atomic_write_text(run_dir / "config.toml", tomli_w.dumps({**base.to_dict(), "run_dir": str(run_dir)}))
    members = [{"member": k, "seed": m.seed, **{n: getattr(m, n) for n in run.swept}}
               for k, m in enumerate(run.members)]
    atomic_write_json(run_dir / POPULATION_FILE, {**spec, "members": members})
    for k, member in enumerate(run.members):
        run.member_dir(k).mkdir(parents=True, exist_ok=True)
        atomic_write_text(run.member_dir(k) / "config.toml",
                          tomli_w.dumps({**member.to_dict(), "run_dir": str(run.member_dir(k))}))
    return run_dir, run.run(new=True)


def resume_population(run_dir: Any, *, quiet: bool = False, callback: Any = None) -> tuple[Any, dict[str, Any]]:
    """Continue a population run from its newest checkpoint (``a2c train --resume``)."""
    import json
    from pathlib import Path

    from a2c.config import make_config
    from a2c.tf_setup import configure_tensorflow

    run_dir = Path(run_dir)
    spec = json.loads((run_dir / POPULATION_FILE).read_text())
    base = make_config({"run_dir": str(run_dir)}, run_dir / "config.toml")
    configure_tensorflow(base)
    if (run_dir / "summary.json").is_file():
        from a2c.errors import RunDirError

        raise RunDirError(f"the population run in {run_dir} has finished (it has a summary.json); nothing to resume")
    run = PopulationRun(base, {"seeds": spec["seeds"], "sweep": spec["sweep"]}, run_dir, quiet=quiet,
                        callback=callback)
    run.restore()
    return run_dir, run.run(new=False)
