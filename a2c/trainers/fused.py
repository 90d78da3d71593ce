"""Fused training: environments, rollout, returns and updates in ONE compiled program.

On a tiny MLP, every compiled TensorFlow call costs a fixed dispatch overhead far
larger than stepping even a thousand numpy CartPoles, so a trainer that returns to
Python every env step is bound by round trips, not arithmetic. This module does what
PureJaxRL does with JAX: the batched TensorFlow ports of [`a2c.envs.tf_envs`][a2c.envs.tf_envs] step
inside the same ``tf.function`` as the policy, and a ``tf.while_loop`` runs up to
``cfg.fused_updates_per_call`` whole updates

    rollout (n_steps x n_envs, sampled actions, same-step autoreset)
    -> GAE returns -> A2C loss -> GradientTape -> clip -> optimizer step

per call ([`FusedLoop`][a2c.trainers.fused.FusedLoop]). [`FusedTrainer`][a2c.trainers.fused.FusedTrainer] is that loop
as a [`Trainer`][a2c.trainers.base.Trainer]: the run driver ([`a2c.run.driver`][a2c.run.driver]) calls it, and writes
the same run directory, logs, evaluations, checkpoints and exports as for the standard
trainer.

The program runs XLA-compiled (``cfg.fused_xla``) or op by op in TensorFlow's graph
executor: XLA steps faster but compiles longer, so it pays off only on long runs
(results/fused_benchmark.md has the figures); the two give statistically the same
training, not the same bits, since XLA fuses and reorders float operations and draws
random numbers with its own kernels.

Nothing of the algorithm is written twice: the model comes from
[`a2c.agent.model.model_for`][a2c.agent.model.model_for], sampling from the model's distribution
([`a2c.agent.distributions`][a2c.agent.distributions]), and each update is
[`a2c.agent.learner.update_step`][a2c.agent.learner.update_step]. The one difference is the autoreset: the ports reset
in the SAME step, so ``obs[t + 1]`` is already the next episode's first observation, and a truncated step t
bootstraps from ``V(final_obs[t])`` instead. The rollout keeps, per env, the final observation of the
episode it truncated (at most one per rollout, since ``n_steps`` may not exceed the time limit:
[`check_rollout_length`][a2c.trainers.fused.check_rollout_length]) and passes it as ``truncation_obs``; every
transition is real (``valid`` is all ones).

Randomness: one Philox ``tf.random.Generator`` seeded with ``cfg.seed`` draws, in ONE
call per rollout (``n_steps x n_envs`` rows), the action noise and the envs' replacement
episodes ([`UniformNoise`][a2c.envs.tf_envs.base.UniformNoise]), because inside XLA every separate draw is a
Philox computation compiled on its own, and every random op a fixed cost per call: a
population of P members makes P of them per rollout, not P per env step
(results/jax_benchmark.md). Its state and the envs' state are variables, saved in checkpoints,
so a resumed fused run continues exactly.

The presets live in [`a2c.config.resolve`][a2c.config.resolve] (no TensorFlow), so that the command line
can resolve and check a fused config before starting TensorFlow.
"""

from __future__ import annotations

import gc
import math
import time
from typing import Any, NamedTuple

import keras
import tensorflow as tf
from gymnasium import spaces

from a2c.agent.batch import Rollout
from a2c.agent.distributions import distribution_of
from a2c.agent.learner import UPDATE_METRICS, make_optimizer, update_step
from a2c.agent.model import action_bounds_of, action_shape_of, model_for, obs_norms_of, obs_spec_of
from a2c.common.errors import ConfigError, EnvError, NonFiniteError
from a2c.config.presets import FUSED_PRESETS  # noqa: F401  (re-exported)
from a2c.config.schema import Config
from a2c.envs.make import env_spaces
from a2c.envs.tf_envs import PORTED_ENVS, TFEnv, UniformNoise
from a2c.envs.tf_envs.base import RNG_ALG
from a2c.trainers.base import StepOutput


def ported_env(env_id: str) -> TFEnv:
    """The TensorFlow port of ``env_id``, or EnvError listing the ported ids."""
    try:
        return PORTED_ENVS[env_id]
    except KeyError:
        ported = ", ".join(sorted(PORTED_ENVS))
        raise EnvError(
            f"fused mode needs a TensorFlow port of the environment and {env_id!r} has none; "
            f"ported environments: {ported}"
        ) from None


def check_rollout_length(cfg: Config, env: TFEnv) -> None:
    """ConfigError unless ``cfg.n_steps`` is at most the port's time limit: then an env truncates at
    most once per rollout, and one final observation per env bootstraps every truncation of the batch
    ([`a2c.agent.learner.batch_returns`][a2c.agent.learner.batch_returns])."""
    if cfg.n_steps > env.max_episode_steps:
        raise ConfigError(
            f"fused mode needs n_steps <= the time limit of {env.env_id} ({env.max_episode_steps} steps); "
            f"got n_steps={cfg.n_steps}"
        )


def keep_truncated(truncated: tf.Tensor, final_obs: tf.Tensor, kept: tf.Tensor) -> tf.Tensor:
    """``final_obs`` (..., n, *obs_shape) for the envs that truncated at this step (``truncated``,
    (..., n)), ``kept`` for the others: carried through a rollout, each env's final observation of
    the episode it truncated (see [`check_rollout_length`][a2c.trainers.fused.check_rollout_length])."""
    mask = tf.reshape(truncated, truncated.shape.as_list() + [1] * (final_obs.shape.rank - truncated.shape.rank))
    return tf.where(mask, tf.cast(final_obs, kept.dtype), kept)


def compile_loop(run: Any) -> float:
    """Trace and compile a fused ``run(k)`` by calling ``run(0)``; seconds taken.

    Python's garbage collector is paused meanwhile: tracing allocates many small
    objects and collections would slow it down (results/tuning.md).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        run(tf.constant(0, tf.int32))
        return time.perf_counter() - start
    finally:
        if enabled:
            gc.enable()


def noise_width(dist: Any, model: keras.Model) -> int:
    """Uniform numbers one env step's action takes from the rollout's draw."""
    return int(dist.noise_shape(dist.params(model.output))[-1])


def loop_updates(num_updates: tf.Tensor, state_vars: Any, one_update: Any, shape: list[int]) -> dict[str, tf.Tensor]:
    """``one_update(state) -> (state, stats)`` ``num_updates`` times in a ``tf.while_loop``
    from the values of ``state_vars`` (a nest of variables, assigned the final state);
    graph code. Returns the mean over the updates of each of UPDATE_METRICS and the sum
    of each of EPISODE_STATS, each of ``shape`` ([] for one run, [P] for a population)."""
    state0 = tf.nest.map_structure(lambda v: v.read_value(), state_vars)
    sums0 = {k: tf.zeros(shape) for k in UPDATE_METRICS + EPISODE_STATS}

    def body(i, s, sums):
        s, stats = one_update(s)
        return i + 1, s, {k: sums[k] + tf.cast(stats[k], tf.float32) for k in sums}

    _, state, sums = tf.while_loop(lambda i, *_: i < num_updates, body, (tf.constant(0), state0, sums0))
    tf.nest.map_structure(lambda v, x: v.assign(x), state_vars, state)
    count = tf.maximum(tf.cast(num_updates, tf.float32), 1.0)
    return {**{k: sums[k] / count for k in UPDATE_METRICS}, **{k: sums[k] for k in EPISODE_STATS}}


class LoopState(NamedTuple):
    """What one fused call carries from update to update (and between calls)."""

    env_state: Any  # the port's state NamedTuple, fields (n_envs,)
    obs: tf.Tensor  # (n_envs, *obs_shape) observations the next step acts on
    ep_return: tf.Tensor  # (n_envs,) return of the running episodes so far
    ep_length: tf.Tensor  # (n_envs,) int32 length of the running episodes so far


#: Episode statistics summed in-graph over one call.
EPISODE_STATS = ("episodes", "return_sum", "length_sum")


class FusedLoop:
    """The compiled K-update loop and its state, held in ``tf.Variable``s.

    ``run(k)`` performs ``k`` updates (``k`` is a tensor argument, so every call with
    any ``k`` reuses one trace and one executable) and returns the mean of every
    update metric over the ``k`` updates plus the episode statistics of the episodes
    that finished during the call. ``run(0)`` compiles without changing anything.
    """

    def __init__(self, model: keras.Model, optimizer: keras.optimizers.Optimizer, cfg: Config, env: TFEnv) -> None:
        check_rollout_length(cfg, env)
        self.model, self.optimizer, self.cfg, self.env = model, optimizer, cfg, env
        optimizer.build(model.trainable_variables)
        n = cfg.n_envs
        # One Philox generator for actions and env resets (see the module docstring).
        self.rng = tf.random.Generator.from_seed(cfg.seed, alg=RNG_ALG)
        env_state, obs = env.reset(self.rng, n)
        self.state = LoopState(
            env_state=tf.nest.map_structure(lambda x: tf.Variable(x, trainable=False), env_state),
            obs=tf.Variable(tf.cast(obs, tf.float32), trainable=False),
            ep_return=tf.Variable(tf.zeros([n], tf.float32), trainable=False),
            ep_length=tf.Variable(tf.zeros([n], tf.int32), trainable=False),
        )
        self.traces = 0
        # autograph=False: the loops are explicit tf.while_loops, and converting the
        # Keras and learner code would only slow tracing down (results/tuning.md).
        self.run = tf.function(
            self._run, input_signature=[tf.TensorSpec([], tf.int32)], jit_compile=cfg.fused_xla, autograph=False
        )

    def compile(self) -> float:
        """Trace and compile ``run`` (via ``run(0)``, which changes nothing); seconds taken.

        Compiling is XLA's compilation, or in the graph executor Grappler's graph
        optimisation and the lowering of the while loops.
        """
        return compile_loop(self.run)

    # ------------------------------------------------------------------ graph code
    def _rollout(self, state: LoopState) -> tuple[LoopState, Rollout, tf.Tensor, dict[str, tf.Tensor]]:
        """n_steps x n_envs transitions; returns the batch, the truncated episodes' final obs and
        episode sums."""
        cfg, env, model = self.cfg, self.env, self.model
        t_max, n = cfg.n_steps, cfg.n_envs
        obs_shape = [n, *obs_spec_of(model).shape]
        act_shape = action_shape_of(model)
        bounds = action_bounds_of(model)
        arrays = {
            name: tf.TensorArray(dtype, size=t_max, element_shape=shape)
            for name, dtype, shape in (
                ("obs", tf.float32, obs_shape),
                ("actions", tf.float32 if act_shape else tf.int32, [n, *act_shape]),
                ("rewards", tf.float32, [n]),
                ("terminated", tf.float32, [n]),
                ("truncated", tf.float32, [n]),
            )
        }
        zero = tf.constant(0.0)
        dist = distribution_of(model.output)
        width = noise_width(dist, model)
        # ONE draw per rollout for the action noise and the env's (see the module docstring).
        noise = self.rng.uniform([t_max, n, width + env.noise_dim], dtype=tf.float32)

        def body(t, s: LoopState, arrays, truncation_obs, episodes, return_sum, length_sum):
            params = dist.params(model(s.obs))
            u = tf.gather(noise, t)
            actions = dist.sample(params, u[:, :width])
            # Box actions: the port gets them clipped to the bounds, the batch keeps them as drawn
            # (as the standard trainer's collector does, a2c.envs.spaces.env_actions).
            env_actions = (
                actions
                if bounds is None
                else tf.clip_by_value(actions, bounds[0].astype("float32"), bounds[1].astype("float32"))
            )
            step = env.step(s.env_state, env_actions, UniformNoise(u[:, width:]))
            reward = tf.cast(step.reward, tf.float32)
            done = tf.logical_or(step.terminated, step.truncated)
            ep_return = s.ep_return + reward
            ep_length = s.ep_length + 1
            done_f = tf.cast(done, tf.float32)
            episodes += tf.reduce_sum(done_f)
            return_sum += tf.reduce_sum(done_f * ep_return)
            length_sum += tf.reduce_sum(done_f * tf.cast(ep_length, tf.float32))
            truncation_obs = keep_truncated(step.truncated, step.final_obs, truncation_obs)
            arrays = {
                "obs": arrays["obs"].write(t, s.obs),
                "actions": arrays["actions"].write(t, actions),
                "rewards": arrays["rewards"].write(t, reward),
                "terminated": arrays["terminated"].write(t, tf.cast(step.terminated, tf.float32)),
                "truncated": arrays["truncated"].write(t, tf.cast(step.truncated, tf.float32)),
            }
            s = LoopState(
                step.state, tf.cast(step.obs, tf.float32), tf.where(done, 0.0, ep_return), tf.where(done, 0, ep_length)
            )
            return t + 1, s, arrays, truncation_obs, episodes, return_sum, length_sum

        loop_vars = (tf.constant(0), state, arrays, tf.zeros(obs_shape), zero, zero, zero)
        _, state, arrays, truncation_obs, episodes, return_sum, length_sum = tf.while_loop(
            lambda t, *_: t < t_max, body, loop_vars, maximum_iterations=t_max
        )
        stacked = {name: ta.stack() for name, ta in arrays.items()}
        batch = Rollout(
            obs=tf.concat([stacked["obs"], state.obs[None]], axis=0),
            actions=stacked["actions"],
            rewards=stacked["rewards"],
            terminated=stacked["terminated"],
            truncated=stacked["truncated"],
            valid=tf.ones([t_max, n], tf.float32),  # same-step autoreset: every transition is real
        )
        stats = {"episodes": episodes, "return_sum": return_sum, "length_sum": length_sum}
        return state, batch, truncation_obs, stats

    def _run(self, num_updates: tf.Tensor) -> dict[str, tf.Tensor]:
        self.traces += 1  # Python side effect: counts traces, not calls

        norms = list(obs_norms_of(self.model).values())

        def one_update(s: LoopState) -> tuple[LoopState, dict[str, tf.Tensor]]:
            s, batch, truncation_obs, ep_stats = self._rollout(s)
            for norm in norms:
                # As the standard trainer: each observation once (obs[T] opens the next batch), and the
                # update sees the batch through the statistics that include it.
                norm.update_in_graph(batch.obs[:-1])
            metrics = update_step(self.model, self.optimizer, batch, self.cfg, truncation_obs=truncation_obs)
            return s, {**metrics, **ep_stats}

        return loop_updates(num_updates, self.state, one_update, [])


# ------------------------------------------------------------------------------ trainer
class FusedTrainer:
    """[`FusedLoop`][a2c.trainers.fused.FusedLoop] as a [`Trainer`][a2c.trainers.base.Trainer]: up to
    ``fused_updates_per_call`` updates per call, compiled before the first one.

    Metrics leave the graph once per call, as means over the call's updates (so a
    metrics.csv row's ``train/`` values are the mean over the last call's updates), and
    so do the finished episodes' count and return and length sums. A non-finite loss or
    gradient in a call stops training at the end of that call.
    """

    name = "fused"
    metric_columns: tuple[str, ...] = ()

    def __init__(self, cfg: Config) -> None:
        env = ported_env(cfg.env_id)  # EnvError before anything is written
        obs_space, action_space = env_spaces(cfg.env_id)  # gymnasium's: obs_scaling bounds, action Box
        if not isinstance(action_space, (spaces.Discrete, spaces.Box)):
            raise EnvError(
                f"fused mode supports Discrete and Box action spaces; {cfg.env_id} has {action_space} "
                "(the standard trainer and --workers take it)"
            )
        self.cfg = cfg
        self.model = model_for(cfg, obs_space, action_space)
        self.optimizer = make_optimizer(cfg)
        self.loop = FusedLoop(self.model, self.optimizer, cfg, env)
        self.updates_per_call = cfg.fused_updates_per_call
        self.updates_done = 0
        self.calls = 0
        self.compile_seconds = 0.0

    def compile(self) -> float:
        self.compile_seconds = self.loop.compile()
        return self.compile_seconds

    def start(self, updates_done: int) -> None:
        self.updates_done = updates_done

    def advance(self, updates: int) -> StepOutput:
        out = {name: float(v) for name, v in self.loop.run(tf.constant(updates, tf.int32)).items()}
        self.calls += 1
        first, self.updates_done = self.updates_done + 1, self.updates_done + updates
        if not (math.isfinite(out["total_loss"]) and math.isfinite(out["grad_norm"])):
            raise NonFiniteError(f"non-finite loss or gradient in updates {first}-{self.updates_done}")
        return StepOutput(
            {name: out[name] for name in UPDATE_METRICS}, [(out["episodes"], out["return_sum"], out["length_sum"])]
        )

    def check_finite(self) -> None:
        """Nothing to do: [`advance`][a2c.trainers.fused.FusedTrainer.advance] checks every call's metrics."""

    def checkpoint_objects(self) -> dict[str, Any]:
        return {"fused_rng": self.loop.rng, "fused_state": tf.nest.flatten(self.loop.state)}

    def state(self) -> dict[str, Any]:
        return {}

    def load_state(self, state: dict[str, Any]) -> list[str]:
        return []

    def summary(self) -> dict[str, Any]:
        return {
            "executor": "xla" if self.cfg.fused_xla else "graph",
            "compile_seconds": self.compile_seconds,
            "compiled_calls": self.calls,
            "traces": self.loop.traces,
        }

    def close(self) -> None:
        """Nothing to close: the envs are tensors."""
