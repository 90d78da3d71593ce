"""Compiled action functions of a model: sampled actions for rollouts, greedy or per-episode seeded
sampled ones for evaluation.

Both have a fixed input signature (batch size, the model's [`ObsSpec`][a2c.envs.spaces.ObsSpec]),
so each is traced once, XLA-compiled (not for convolutional models,
[`a2c.agent.model.compiles_with_xla`][a2c.agent.model.compiles_with_xla]), and called through
[`a2c.agent.dispatch.HostCall`][a2c.agent.dispatch.HostCall]: the trainer calls ``act`` from numpy every env step, where
TensorFlow's per-call Python is the main cost. What an action *is* comes from the model's distribution
([`a2c.agent.distributions`][a2c.agent.distributions]).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from a2c.agent.batch import Policy
from a2c.agent.dispatch import HostCall
from a2c.agent.distributions import MIN_UNIFORM, Distribution, distribution_of
from a2c.agent.model import compiles_with_xla, obs_spec_of, state_size_of, step, tensor_spec


def make_act(
    model: keras.Model, n_envs: int, seed: int, rows: tuple[int, int] | None = None
) -> tuple[Policy, tf.random.Generator]:
    """Compile sampling ``a ~ pi(.|s)`` for a fixed batch of observations.

    The noise comes from a ``tf.random.Generator`` seeded with ``seed``, so runs are
    reproducible; the generator is returned so that its state can be checkpointed.
    ``rows=(offset, total)``: these ``n_envs`` envs are rows ``offset...`` of a batch of
    ``total``; the noise of the whole batch is drawn and this slice used, so that a
    remote worker samples exactly what a local collector over all envs would.
    """
    if state_size_of(model):
        raise ValueError("a recurrent model acts through make_recurrent_act (it carries a state)")
    generator = tf.random.Generator.from_seed(seed)
    dist = distribution_of(model.output)
    offset, total = rows if rows is not None else (0, n_envs)

    @tf.function(input_signature=[tensor_spec(obs_spec_of(model), n_envs)], jit_compile=compiles_with_xla(model))
    def sample(obs: tf.Tensor) -> tf.Tensor:
        params = dist.params(model(obs))
        shape = dist.noise_shape(params)
        noise = generator.uniform([total, *shape[1:]], minval=MIN_UNIFORM, maxval=1.0)
        return dist.sample(params, noise[offset : offset + n_envs])

    call = HostCall(sample)
    return (lambda obs: call(obs).numpy()), generator


def make_greedy(model: keras.Model, batch: int) -> Policy:
    """Compile the distribution's mode (``argmax pi(a|s)``) for a fixed batch size.

    A recurrent model gives a [`RecurrentPolicy`][a2c.agent.policy.RecurrentPolicy]: the same call, carrying
    the cell state of each row from call to call (evaluation resets it per episode set)."""
    if state_size_of(model):
        return RecurrentPolicy(make_recurrent_step(model, batch), batch, state_size_of(model))
    dist = distribution_of(model.output)

    @tf.function(input_signature=[tensor_spec(obs_spec_of(model), batch)], jit_compile=compiles_with_xla(model))
    def greedy(obs: tf.Tensor) -> tf.Tensor:
        return dist.mode(dist.params(model(obs)))

    call = HostCall(greedy)
    return lambda obs: call(obs).numpy()


#: Sampled evaluation draws episode k's noise from its own stream of the seed ``seed + k``: gymnasium seeds an
#: env's ``np_random`` from ``SeedSequence(seed)`` too, and the same stream would tie the policy's draws to the
#: env's (CartPole's start state would be made of the very numbers the first action's noise is).
SAMPLING_STREAM = 1


def seeded_sampler(dist: Distribution, params_fn: Callable[[Any], Any], batch: int, seed: int) -> Policy:
    """A sampled policy for a fixed batch whose row k draws its noise from its own generator, seeded from
    ``seed + k``: episode k's actions depend on its seed alone, however many episodes run beside it.
    ``params_fn`` maps a batch of observations to the distribution's parameters (arrays). The noise is
    float32 in [0, 1), as the trainer's: a float64 draw could round up to 1."""
    rngs = [np.random.default_rng(np.random.SeedSequence(seed + k, spawn_key=(SAMPLING_STREAM,))) for k in range(batch)]

    def sampled(obs: Any) -> np.ndarray:
        params = tf.nest.map_structure(tf.constant, params_fn(obs))
        width = dist.noise_shape(params)[-1]
        noise = np.stack([rng.random(width, dtype=np.float32) for rng in rngs])
        return dist.sample(params, tf.constant(noise)).numpy()

    return sampled


def make_sampled(model: keras.Model, batch: int) -> Callable[[int], Policy]:
    """Compile the distribution's parameters for a fixed batch once; return ``seed -> policy``, a fresh
    [`seeded_sampler`][a2c.agent.policy.seeded_sampler] for each evaluation (so each is reproducible from
    its seeds alone)."""
    dist = distribution_of(model.output)

    @tf.function(input_signature=[tensor_spec(obs_spec_of(model), batch)], jit_compile=compiles_with_xla(model))
    def params(obs: tf.Tensor) -> Any:
        return dist.params(model(obs))

    call = HostCall(params)

    def params_fn(obs: Any) -> Any:
        return tf.nest.map_structure(lambda t: t.numpy(), call(obs))

    return lambda seed: seeded_sampler(dist, params_fn, batch, seed)


#: ``(obs, state, start) -> (actions, next_state)`` as numpy arrays.
RecurrentStep = Callable[[Any, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def make_recurrent_step(
    model: keras.Model,
    batch: int,
    generator: tf.random.Generator | None = None,
    rows: tuple[int, int] | None = None,
) -> RecurrentStep:
    """Compile one action step of a recurrent model for a fixed batch: the state is reset where
    ``start`` is true ([`a2c.agent.model.step`][a2c.agent.model.step], as the update's unroll does), then the
    mode (no ``generator``) or a sample drawn as [`make_act`][a2c.agent.policy.make_act] draws it."""
    dist = distribution_of(model.output)
    offset, total = rows if rows is not None else (0, batch)
    signature = [
        tensor_spec(obs_spec_of(model), batch),
        tf.TensorSpec([batch, state_size_of(model)], tf.float32),
        tf.TensorSpec([batch], tf.float32),
    ]

    @tf.function(input_signature=signature, jit_compile=compiles_with_xla(model))
    def act(obs: tf.Tensor, state: tf.Tensor, start: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        out = step(model, obs, tf.cast(state, model.inputs[1].dtype), start)
        params = dist.params(out)
        if generator is None:
            return dist.mode(params), tf.cast(out["state"], tf.float32)
        shape = dist.noise_shape(params)
        noise = generator.uniform([total, *shape[1:]], minval=MIN_UNIFORM, maxval=1.0)
        return dist.sample(params, noise[offset : offset + batch]), tf.cast(out["state"], tf.float32)

    call = HostCall(act)

    def run(obs: Any, state: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        actions, new_state = call(obs, state, start)
        return actions.numpy(), new_state.numpy()

    return run


def make_recurrent_act(
    model: keras.Model, n_envs: int, seed: int, rows: tuple[int, int] | None = None
) -> tuple[RecurrentStep, tf.random.Generator]:
    """[`make_act`][a2c.agent.policy.make_act] for a recurrent model: sampled actions and the next state."""
    generator = tf.random.Generator.from_seed(seed)
    return make_recurrent_step(model, n_envs, generator, rows), generator


class RecurrentPolicy:
    """A ``Policy`` over a recurrent step that carries each row's state between calls.

    [`reset`][a2c.agent.policy.RecurrentPolicy.reset] zeroes every row (a new set of episodes, as
    [`a2c.artifacts.evaluate.evaluate_policy`][a2c.artifacts.evaluate.evaluate_policy] starts one); the first call after
    it marks every row as an episode start."""

    def __init__(self, step_fn: RecurrentStep, batch: int, state_size: int) -> None:
        self.step_fn, self.batch, self.state_size = step_fn, batch, state_size
        self.reset()

    def reset(self) -> None:
        self.state = np.zeros((self.batch, self.state_size), np.float32)
        self.start = np.ones(self.batch, np.float32)

    def __call__(self, obs: Any) -> np.ndarray:
        actions, self.state = self.step_fn(obs, self.state, self.start)
        self.start = np.zeros(self.batch, np.float32)
        return actions
