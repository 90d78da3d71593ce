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
rollout, below). The optimizer step is the SAME Keras optimizer a single run builds,
applied to the stacked variables: RMSprop and Adam are elementwise, so member k's
slice of the stacked slots evolves exactly as its own optimizer would, and its learning
rate (a (P,) vector from [`a2c.agent.learner.learning_rate_schedule`][a2c.agent.learner.learning_rate_schedule],
broadcast per weight) is the only per-member number it needs. Keras' ``stateless_apply`` would
have mapped the optimizer over members too, but the TensorFlow backend does not
support it.

Member identity: member k starts from the weights ``model_for`` builds for its seed,
draws its actions and env resets from its own Philox generator seeded with its seed
(the same draw per rollout a single fused run makes), and so follows the same
trajectory as ``a2c train --fused`` with its seed and hyperparameters; only float
rounding differs (batched matmuls and vectorized reductions may sum in another
order). tests/test_population.py checks the weights after several updates.

The run directory, logs, checkpoints and resume of a population are
[`a2c.population.driver`][a2c.population.driver]; its summary table and plot
[`a2c.population.report`][a2c.population.report].
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, cast

import keras
import numpy as np
import tensorflow as tf

from a2c.agent.batch import Rollout
from a2c.agent.distributions import distribution_of
from a2c.agent.learner import learning_rate_schedule, make_optimizer, member_gradients
from a2c.agent.model import model_for
from a2c.config.schema import Config
from a2c.envs.make import env_spaces, make_env
from a2c.envs.tf_envs import TFEnv, UniformNoise
from a2c.envs.tf_envs.base import RNG_ALG
from a2c.trainers.fused import LoopState, check_rollout_length, compile_loop, keep_truncated, loop_updates, noise_width


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
    member greedily from the given initial env states (see [`evaluate`][a2c.population.loop.PopulationLoop.evaluate]).
    """

    def __init__(self, members: Sequence[Config], swept: Sequence[str], env: TFEnv) -> None:
        cfg = members[0]
        check_rollout_length(cfg, env)
        self.cfg, self.members, self.swept, self.env = cfg, list(members), tuple(swept), env
        self.size = p = len(members)
        n = cfg.n_envs
        obs_space, _ = env_spaces(cfg.env_id)
        # The template: its layers are evaluated at each member's weights (stateless_call).
        self.model = model_for(cfg, obs_space, env.n_actions)
        stacked = initial_weights(members, obs_space, env.n_actions)
        self.weights = [
            keras.Variable(w, name=f"members_{v.name}", trainable=False)
            for w, v in zip(stacked, self.model.trainable_variables)
        ]
        self.optimizer = make_optimizer(cfg)
        self.optimizer.build(self.weights)
        self.lrs = tf.constant([m.lr for m in members], tf.float32)
        self.hparams = {
            name: tf.constant([getattr(m, name) for m in members], tf.float32) for name in self.swept if name != "lr"
        }
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
        self.run = tf.function(
            self._run, input_signature=[tf.TensorSpec([], tf.int32)], jit_compile=cfg.fused_xla, autograph=False
        )
        self._evaluate = tf.function(self._greedy_episodes, jit_compile=cfg.fused_xla, autograph=False)

    def compile(self) -> float:
        """Trace and compile ``run`` via ``run(0)`` (changes nothing); seconds taken."""
        return compile_loop(self.run)

    def member_weights(self, k: int) -> list[np.ndarray]:
        """Member k's weights, in the order of the model's ``get_weights``."""
        return [np.asarray(v)[k] for v in self.weights]

    # ------------------------------------------------------------------ graph code
    def _forward(self, weights: list[tf.Tensor], obs: tf.Tensor) -> dict[str, tf.Tensor]:
        """The model's outputs for (P, batch, ...) observations, member k's at its weights."""
        model = self.model
        non_trainable = [v.value for v in model.non_trainable_variables]  # shared (none in today's model)

        def one(args: tuple[list[tf.Tensor], tf.Tensor]) -> dict[str, tf.Tensor]:
            w, x = args
            return model.stateless_call(w, non_trainable, x)[0]

        return tf.vectorized_map(one, (weights, obs), fallback_to_while_loop=False)

    def _rollout(
        self, weights: list[tf.Tensor], state: LoopState
    ) -> tuple[LoopState, Rollout, tf.Tensor, dict[str, tf.Tensor]]:
        """n_steps x n_envs transitions per member: (P, T, n, ...) batch, final obs, episode sums (P,)."""
        cfg, env, p = self.cfg, self.env, self.size
        t_max, n = cfg.n_steps, cfg.n_envs
        obs_shape = [p, n, *state.obs.shape[2:]]
        arrays = {
            name: tf.TensorArray(dtype, size=t_max, element_shape=shape)
            for name, dtype, shape in (
                ("obs", tf.float32, obs_shape),
                ("actions", tf.int32, [p, n]),
                ("rewards", tf.float32, [p, n]),
                ("terminated", tf.float32, [p, n]),
                ("truncated", tf.float32, [p, n]),
            )
        }
        zero = tf.zeros([p])
        dist = distribution_of(self.model.output)
        width = noise_width(dist, self.model)
        # Each member's ONE draw per rollout, from its own generator (as a single fused run): (T, P, n, k).
        draws = tf.stack([rng.uniform([t_max, n, width + env.noise_dim], dtype=tf.float32) for rng in self.rngs], 1)

        def member_major(x: tf.Tensor) -> tf.Tensor:
            return tf.reshape(x, [p, n, *x.shape[1:]])

        def body(t, s: LoopState, arrays, truncation_obs, episodes, return_sum, length_sum):
            params = dist.params(self._forward(weights, s.obs))
            u = tf.gather(draws, t)
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
            truncation_obs = keep_truncated(truncated, member_major(step.final_obs), truncation_obs)
            arrays = {
                "obs": arrays["obs"].write(t, s.obs),
                "actions": arrays["actions"].write(t, actions),
                "rewards": arrays["rewards"].write(t, reward),
                "terminated": arrays["terminated"].write(t, tf.cast(terminated, tf.float32)),
                "truncated": arrays["truncated"].write(t, tf.cast(truncated, tf.float32)),
            }
            s = LoopState(
                step.state,
                member_major(tf.cast(step.obs, tf.float32)),
                tf.where(done, 0.0, ep_return),
                tf.where(done, 0, ep_length),
            )
            return t + 1, s, arrays, truncation_obs, episodes, return_sum, length_sum

        loop_vars = (tf.constant(0), state, arrays, tf.zeros(obs_shape), zero, zero, zero)
        _, state, arrays, truncation_obs, episodes, return_sum, length_sum = tf.while_loop(
            lambda t, *_: t < t_max, body, loop_vars, maximum_iterations=t_max
        )
        stacked = {name: ta.stack() for name, ta in arrays.items()}  # (T, P, n, ...)

        def by_member(x: tf.Tensor) -> tf.Tensor:  # (T, P, ...) -> (P, T, ...)
            return tf.transpose(x, [1, 0, *range(2, x.shape.rank)])

        batch = Rollout(
            obs=by_member(tf.concat([stacked["obs"], state.obs[None]], axis=0)),
            actions=by_member(stacked["actions"]),
            rewards=by_member(stacked["rewards"]),
            terminated=by_member(stacked["terminated"]),
            truncated=by_member(stacked["truncated"]),
            valid=tf.ones([p, t_max, n], tf.float32),  # same-step autoreset: every transition is real
        )
        stats = {"episodes": episodes, "return_sum": return_sum, "length_sum": length_sum}
        return state, batch, truncation_obs, stats

    def _update(self, batch: Rollout, truncation_obs: tf.Tensor) -> dict[str, tf.Tensor]:
        """One update of every member: vectorized gradients, one optimizer step; (P,) metrics."""
        cfg, model, optimizer = self.cfg, self.model, self.optimizer
        hparams = self.hparams

        def one(args):
            w, b, f, hp = args
            member_cfg = cast(Config, MemberConfig(cfg, hp))  # stands in for a Config: it forwards every field
            return member_gradients(model, w, b, member_cfg, truncation_obs=f)

        weights = [v.value for v in self.weights]
        grads, metrics = tf.vectorized_map(one, (weights, batch, truncation_obs, hparams), fallback_to_while_loop=False)
        schedule = learning_rate_schedule(cfg, self.lrs)
        lr = tf.cast(schedule(optimizer.iterations) if callable(schedule) else schedule, tf.float32)
        for g, v in zip(grads, self.weights):
            # What Keras' apply_gradients does per variable, with the member's rate broadcast.
            optimizer.update_step(g, v.value, tf.reshape(lr, [self.size] + [1] * (g.shape.rank - 1)))
        optimizer.iterations.assign_add(1)
        return {**metrics, "learning_rate": lr}

    def _run(self, num_updates: tf.Tensor) -> dict[str, tf.Tensor]:
        self.traces += 1  # Python side effect: counts traces, not calls

        def one_update(s: LoopState) -> tuple[LoopState, dict[str, tf.Tensor]]:
            s, batch, truncation_obs, ep_stats = self._rollout([v.value for v in self.weights], s)
            return s, {**self._update(batch, truncation_obs), **ep_stats}

        return loop_updates(num_updates, self.state, one_update, [self.size])

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

        init = (
            tf.constant(0),
            state,
            env.observe(state),
            tf.ones([p * e], tf.bool),
            tf.zeros([p * e], tf.float64),
            tf.zeros([p * e], tf.int32),
        )
        _, _, _, _, returns, lengths = tf.while_loop(
            lambda t, *rest: tf.logical_and(t < env.max_episode_steps, tf.reduce_any(rest[2])),
            body,
            init,
            maximum_iterations=env.max_episode_steps,
        )
        return tf.reshape(returns, [p, e]), tf.reshape(lengths, [p, e])

    def evaluate(self, physics: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(P, E) greedy returns and lengths from the initial physics states ``physics``."""
        returns, lengths = self._evaluate(tf.constant(physics, tf.float64))
        return returns.numpy(), lengths.numpy()


def eval_physics(env: TFEnv, episodes: int, seed: int) -> np.ndarray:
    """(episodes, n_physics) initial states of gymnasium's ``env_id`` reset with seeds
    ``seed + k``: the episodes [`a2c.artifacts.evaluate.evaluate_policy`][a2c.artifacts.evaluate.evaluate_policy]
    plays."""
    gym_env = make_env(env.env_id)[0]
    try:
        states = []
        for k in range(episodes):
            gym_env.reset(seed=seed + k)
            physics = cast(Any, gym_env.unwrapped).state  # a classic-control env's physics
            states.append(np.asarray(physics, np.float64).reshape(-1)[: env.n_physics])
        return np.stack(states)
    finally:
        gym_env.close()
