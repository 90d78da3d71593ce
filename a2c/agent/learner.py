"""The one place a training GradientTape is opened.

``make_update`` returns a compiled function ``Rollout -> metrics``: values ->
returns/advantages ([`a2c.agent.returns`][a2c.agent.returns]) -> loss ([`a2c.agent.losses`][a2c.agent.losses], through
the model's policy distribution) -> gradients -> global-norm clip -> optimizer step. Its
input signature is fixed, so it is traced once; it is XLA-compiled and called through
[`a2c.agent.dispatch.HostCall`][a2c.agent.dispatch.HostCall], since the trainer calls it from numpy every update.
[`update_step`][a2c.agent.learner.update_step] is the same update as graph code (the fused loop runs it), and
[`member_gradients`][a2c.agent.learner.member_gradients] its loss and clipped gradients at given weights, which a
population ([`a2c.population.loop`][a2c.population.loop]) maps over its members. Asynchronous workers
([`a2c.trainers.a3c`][a2c.trainers.a3c]) split the update in two: [`make_gradients`][a2c.agent.learner.make_gradients]
(the same loss and clipped gradients, on a worker) and [`make_apply`][a2c.agent.learner.make_apply] (the optimizer step,
on the learner).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

import keras
import tensorflow as tf

from a2c.agent.batch import Memory, Rollout
from a2c.agent.dispatch import HostCall
from a2c.agent.distributions import distribution_of
from a2c.agent.guard import FiniteGuard
from a2c.agent.losses import a2c_loss, explained_variance
from a2c.agent.model import action_shape_of, compiles_with_xla, obs_spec_of, state_size_of, tensor_spec, unroll
from a2c.agent.optim import RMSpropEpsOutside, RMSpropTFLike
from a2c.agent.returns import gae
from a2c.config.schema import Config
from a2c.envs.spaces import ObsSpec

#: The model, or any callable with its call signature (``x, training=False`` -> output
#: dict): [`member_gradients`][a2c.agent.learner.member_gradients] passes the model evaluated at other weights.
Forward: TypeAlias = keras.Model | Callable[..., dict[str, tf.Tensor]]


def make_optimizer(cfg: Config) -> keras.optimizers.Optimizer:
    """RMSprop with A2C's rho/epsilon, epsilon outside the square root as in PyTorch
    ([`a2c.agent.optim`][a2c.agent.optim]), Keras' own RMSprop, TensorFlow 1's (``rmsprop_tf``: the zoo's Atari
    optimizer), or Adam; optional linear decay.

    Clipping is done by the learner on the *global* norm (Keras' ``clipnorm`` would clip
    each tensor separately, which is not what A2C does).
    """
    lr = learning_rate_schedule(cfg)
    if cfg.optimizer == "adam":
        return keras.optimizers.Adam(lr, epsilon=cfg.optimizer_eps)
    if cfg.optimizer == "rmsprop_keras":
        return keras.optimizers.RMSprop(lr, rho=cfg.rms_rho, epsilon=cfg.optimizer_eps)
    if cfg.optimizer == "rmsprop_tf":
        return RMSpropTFLike(lr, rho=cfg.rms_rho, epsilon=cfg.optimizer_eps)
    return RMSpropEpsOutside(lr, rho=cfg.rms_rho, epsilon=cfg.optimizer_eps)


def learning_rate_schedule(
    cfg: Config, lr: float | tf.Tensor | None = None
) -> float | tf.Tensor | keras.optimizers.schedules.LearningRateSchedule:
    """``cfg.lr`` (or ``lr``: a population passes one per member, a (P,) tensor) under
    ``cfg.lr_schedule``: the number itself, or a linear decay to 0 over the run's updates.

    One definition for the optimizer of a single run and the per-member learning rates
    of [`a2c.population.loop`][a2c.population.loop], so that a member's rate is computed by the same ops.
    """
    lr = cfg.lr if lr is None else lr
    if cfg.lr_schedule == "linear":
        return keras.optimizers.schedules.PolynomialDecay(
            lr, decay_steps=cfg.n_updates, end_learning_rate=0.0, power=1.0
        )
    return lr


def current_learning_rate(optimizer: keras.optimizers.Optimizer) -> tf.Tensor:
    """The learning rate the next update will use, schedule included."""
    return tf.cast(optimizer.learning_rate, tf.float32)


def rollout_signature(
    cfg: Config, obs_spec: ObsSpec, action_shape: tuple[int, ...] = (), action_dtype: tf.DType | None = None
) -> Rollout:
    """The TensorSpecs of one batch; fixed shapes mean one trace per run. ``action_shape``:
    () for discrete actions, (dims,) for a Gaussian policy's or (sub-actions,) for
    MultiDiscrete and MultiBinary ones; ``action_dtype`` the distribution's (default:
    float32 with a shape, int32 without)."""
    t, n = cfg.n_steps, cfg.n_envs
    f32 = tf.float32
    dtype = action_dtype if action_dtype is not None else (f32 if action_shape else tf.int32)
    return Rollout(
        obs=tensor_spec(obs_spec, t + 1, n),
        actions=tf.TensorSpec([t, n, *action_shape], dtype),
        rewards=tf.TensorSpec([t, n], f32),
        terminated=tf.TensorSpec([t, n], f32),
        truncated=tf.TensorSpec([t, n], f32),
        valid=tf.TensorSpec([t, n], f32),
    )


def memory_signature(cfg: Config, state_size: int) -> Memory:
    """The TensorSpecs of a recurrent batch's [`Memory`][a2c.agent.batch.Memory]."""
    return Memory(
        state=tf.TensorSpec([cfg.n_envs, state_size], tf.float32),
        starts=tf.TensorSpec([cfg.n_steps + 1, cfg.n_envs], tf.float32),
    )


def batch_returns(
    model: Forward,
    batch: Rollout,
    cfg: Config,
    truncation_obs: tf.Tensor | None = None,
    values: tf.Tensor | None = None,
    last_value: tf.Tensor | None = None,
) -> tf.Tensor:
    """GAE returns (T, N) of a batch under the model's current weights, without gradient.

    ``obs[t + 1]`` is what followed step t, so ``V(obs[1:])`` bootstraps truncated
    steps from the episode's final observation; terminated steps drop it in [`gae`][a2c.agent.returns.gae].

    ``values`` (T, N), when given, are ``V(obs[:-1])`` already computed at these weights
    ([`compute_loss`][a2c.agent.learner.compute_loss] passes its own forward pass's): only ``V(obs[T])`` is then
    evaluated here, which saves a forward pass over the whole batch (a third of a
    convolutional update's time).

    ``truncation_obs`` (N, *obs_shape), when given, is for envs that autoreset in the SAME
    step (the TensorFlow ports in [`a2c.envs.tf_envs`][a2c.envs.tf_envs], used by
    [`a2c.trainers.fused`][a2c.trainers.fused]): their ``obs[t + 1]`` already is the next episode's first
    observation, so a truncated step bootstraps from row ``env`` of ``truncation_obs``
    instead, the final observation of the episode that env truncated in this batch (rows of
    envs that truncated none are not read). An env truncates at most once per batch when
    ``n_steps`` is at most the time limit, so ``V(obs[T])`` and these N values are the only
    forward pass besides the loss's, not one over every step's final observation
    (results/jax_benchmark.md).

    ``last_value`` (N,), when given, is ``V(obs[T])`` already computed (a recurrent model's, from
    the state its unroll reached there).
    """
    t, n = batch.rewards.shape[0], batch.rewards.shape[1]
    if values is None:
        values = tf.reshape(model(merge_time(time_slice(batch.obs, slice(None, -1))))["value"], [t, n])
    values = tf.stop_gradient(values)
    if truncation_obs is None:
        if last_value is None:
            last_value = model(time_slice(batch.obs, -1))["value"]
        last = tf.reshape(last_value, [1, n])
    else:
        # V(obs[T]) and V(truncation_obs) in one forward pass of 2N rows.
        last_obs = time_slice(batch.obs, -1)
        both = tf.nest.map_structure(
            lambda x, like: tf.concat([like, tf.cast(x, like.dtype)], 0), truncation_obs, last_obs
        )
        last, at_truncation = tf.split(tf.reshape(model(both)["value"], [2, n]), 2)
    next_values = tf.concat([values[1:], tf.stop_gradient(last)], axis=0)
    if truncation_obs is not None:
        next_values = tf.where(batch.truncated > 0, tf.stop_gradient(at_truncation), next_values)
    done = tf.maximum(batch.terminated, batch.truncated)
    rewards = batch.rewards * cfg.reward_scale  # the critic learns scaled returns
    _, returns = gae(rewards, values, next_values, batch.terminated, done, cfg.gamma, cfg.gae_lambda)
    return returns


def merge_time(x: Any) -> Any:
    """(T, N, ...) -> (T * N, ...): a time-major batch as one batch of samples (every array
    of a dict of observations alike)."""
    return tf.nest.map_structure(lambda a: tf.reshape(a, [-1, *a.shape[2:]]), x)


def time_slice(x: Any, index: int | slice) -> Any:
    """``x[index]`` on the time axis of observations (every array of a dict alike)."""
    return tf.nest.map_structure(lambda a: a[index], x)


def compute_loss(
    model: Forward,
    batch: Rollout,
    cfg: Config,
    truncation_obs: tf.Tensor | None = None,
    memory: Memory | None = None,
) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """The A2C loss of one batch under the model's current weights.

    Call it inside a tape: returns/advantages come from the same forward pass's values
    (plus ``V(obs[T])``) and carry no gradient.
    ``truncation_obs`` is passed to [`batch_returns`][a2c.agent.learner.batch_returns] (same-step autoreset envs).
    ``memory``: a recurrent model's rollout-start state and episode starts; the model is then
    unrolled over obs[0..T] from that state ([`a2c.agent.model.unroll`][a2c.agent.model.unroll]: truncated BPTT over the
    rollout, the state zeroed at each episode start), and the loss is the same.
    """
    t, n = batch.rewards.shape[0], batch.rewards.shape[1]
    last_value = None
    if memory is not None:
        state = memory.state
        if isinstance(model, keras.Model):  # a forward function gets it in the model's dtype already
            state = tf.cast(state, model.inputs[1].dtype)
        seq = unroll(model, batch.obs, state, memory.starts, training=True)
        out = {k: merge_time(v[:-1]) for k, v in seq.items() if k != "state"}
        last_value = tf.stop_gradient(seq["value"][-1])
    else:
        out = model(merge_time(time_slice(batch.obs, slice(None, -1))), training=True)
    returns = batch_returns(
        model, batch, cfg, truncation_obs, values=tf.reshape(out["value"], [t, n]), last_value=last_value
    )
    dist = distribution_of(out)
    flat_returns = tf.reshape(returns, [-1])
    mask = tf.reshape(batch.valid, [-1])
    total, parts = a2c_loss(
        dist.params(out),
        out["value"],
        merge_time(batch.actions),
        flat_returns,
        vf_coef=cfg.vf_coef,
        ent_coef=cfg.ent_coef,
        normalize_advantage=cfg.normalize_advantage,
        mask=mask,
        distribution=dist,
    )
    parts["explained_variance"] = explained_variance(tf.stop_gradient(out["value"]), flat_returns, mask)
    return total, parts


# The metrics [`update_step`][a2c.agent.learner.update_step] returns, in a fixed order (logs, the finite guard).
UPDATE_METRICS = (
    "policy_loss",
    "value_loss",
    "entropy",
    "total_loss",
    "explained_variance",
    "grad_norm",
    "learning_rate",
)


def make_update(
    model: keras.Model, optimizer: keras.optimizers.Optimizer, cfg: Config, guard: FiniteGuard | None = None
) -> HostCall:
    """Compile one A2C update on a batch; returns a dict of scalar metrics.

    XLA fuses the forward, backward and optimizer steps of a tiny network into a few
    kernels, faster per update than the op-by-op graph (results/tuning.md); convolutional
    models run in TensorFlow's graph executor instead
    ([`a2c.agent.model.compiles_with_xla`][a2c.agent.model.compiles_with_xla]). ``guard``, if given, records non-finite
    metrics inside the same compiled call.
    """
    variables = model.trainable_variables
    optimizer.build(variables)
    signature = rollout_signature(
        cfg, obs_spec_of(model), action_shape_of(model), distribution_of(model.output).action_dtype
    )
    if state_size_of(model):
        # A recurrent model: ``update(batch, memory)``.
        @tf.function(
            input_signature=[signature, memory_signature(cfg, state_size_of(model))],
            jit_compile=compiles_with_xla(model),
        )
        def update_recurrent(batch: Rollout, memory: Memory) -> dict[str, tf.Tensor]:
            metrics = update_step(model, optimizer, batch, cfg, memory=memory)
            if guard is not None:
                guard.record(metrics)
            return metrics

        return HostCall(update_recurrent)

    @tf.function(input_signature=[signature], jit_compile=compiles_with_xla(model))
    def update(batch: Rollout) -> dict[str, tf.Tensor]:
        metrics = update_step(model, optimizer, batch, cfg)
        if guard is not None:
            guard.record(metrics)
        return metrics

    return HostCall(update)


def update_step(
    model: keras.Model,
    optimizer: keras.optimizers.Optimizer,
    batch: Rollout,
    cfg: Config,
    truncation_obs: tf.Tensor | None = None,
    memory: Memory | None = None,
) -> dict[str, tf.Tensor]:
    """One A2C update (loss, gradients, global-norm clip, optimizer step); graph code.

    The body of [`make_update`][a2c.agent.learner.make_update], exposed so that
    [`a2c.trainers.fused`][a2c.trainers.fused] runs the very same update inside its XLA-compiled loop. Build the
    optimizer on ``model.trainable_variables`` first. ``truncation_obs``: see
    [`batch_returns`][a2c.agent.learner.batch_returns]; ``memory``: a recurrent model's, see
    [`compute_loss`][a2c.agent.learner.compute_loss].
    """
    variables = model.trainable_variables
    lr = current_learning_rate(optimizer)
    with tf.GradientTape() as tape:
        total, metrics = compute_loss(model, batch, cfg, truncation_obs, memory)
    grads = tape.gradient(total, variables)
    grads, grad_norm = clip_gradients(grads, cfg.max_grad_norm)
    optimizer.apply_gradients(zip(grads, variables))
    metrics = {**metrics, "grad_norm": grad_norm, "learning_rate": lr}
    return {k: metrics[k] for k in UPDATE_METRICS}


def clip_gradients(
    grads: list[tf.Tensor], max_norm: float | tf.Tensor, grad_norm: tf.Tensor | None = None
) -> tuple[list[tf.Tensor], tf.Tensor]:
    """Clip to a global norm (A2C's clip; a number <= 0 disables it); also return the
    norm before clipping (``grad_norm``, when given, is used as that norm). ``max_norm``
    may be a tensor (a population member's)."""
    grad_norm = tf.linalg.global_norm(grads) if grad_norm is None else grad_norm
    if not (isinstance(max_norm, (int, float)) and max_norm <= 0):
        grads, _ = tf.clip_by_global_norm(grads, max_norm, use_norm=grad_norm)
    return grads, grad_norm


def member_gradients(
    model: keras.Model,
    weights: list[tf.Tensor],
    batch: Rollout,
    cfg: Config,
    truncation_obs: tf.Tensor | None = None,
    memory: Memory | None = None,
) -> tuple[list[tf.Tensor], dict[str, tf.Tensor]]:
    """The clipped gradients of the A2C loss at ``weights`` (the model's trainable
    variables' values) and the update's metrics but ``learning_rate``; graph code.

    [`update_step`][a2c.agent.learner.update_step] without the optimizer step and with the weights as tensors,
    for [`a2c.population.loop`][a2c.population.loop], which maps it over members with ``tf.vectorized_map``
    (each member's weights a slice of stacked variables; ``cfg`` may hold per-member
    tensors for scalar hyperparameters) and applies one optimizer step to the stacked
    weights. ``model.stateless_call`` runs the same layers at these weights. ``memory``: a
    recurrent model's (an A3C worker's rollout), see [`compute_loss`][a2c.agent.learner.compute_loss].
    """
    non_trainable = [v.value for v in model.non_trainable_variables]
    if memory is not None:
        memory = Memory(tf.cast(memory.state, model.inputs[1].dtype), memory.starts)

    def forward(x: tf.Tensor, training: bool = False) -> dict[str, tf.Tensor]:
        return model.stateless_call(weights, non_trainable, x, training=training)[0]

    with tf.GradientTape() as tape:
        tape.watch(weights)
        total, metrics = compute_loss(forward, batch, cfg, truncation_obs, memory)
    grads = tape.gradient(total, weights)
    # tf.linalg.global_norm's L2Loss op cannot be vectorized (no pfor converter): the
    # same norm from squares and sums (equal up to float summation order).
    grad_norm = tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(g)) for g in grads]))
    grads, grad_norm = clip_gradients(grads, cfg.max_grad_norm, grad_norm)
    return grads, {**metrics, "grad_norm": grad_norm}


# What [`make_gradients`][a2c.agent.learner.make_gradients] reports with its gradients: the update's metrics but the
# learning rate, which is the learner's ([`make_apply`][a2c.agent.learner.make_apply] adds it).
GRADIENT_METRICS = tuple(k for k in UPDATE_METRICS if k != "learning_rate")


def make_gradients(model: keras.Model, cfg: Config) -> HostCall:
    """Compile [`member_gradients`][a2c.agent.learner.member_gradients] at the model's current weights: ``Rollout ->
    (clipped gradients, metrics)``, for an A3C worker (``cfg``'s n_envs: the worker's). A recurrent
    model's: ``(Rollout, Memory) -> ...``, as [`make_update`][a2c.agent.learner.make_update]'s."""
    signature = rollout_signature(
        cfg, obs_spec_of(model), action_shape_of(model), distribution_of(model.output).action_dtype
    )

    def gradients(batch: Rollout, memory: Memory | None = None) -> tuple[list[tf.Tensor], dict[str, tf.Tensor]]:
        weights = [v.value for v in model.trainable_variables]
        grads, metrics = member_gradients(model, weights, batch, cfg, memory=memory)
        return grads, {k: metrics[k] for k in GRADIENT_METRICS}

    xla = compiles_with_xla(model)
    if state_size_of(model):
        memory = memory_signature(cfg, state_size_of(model))
        return HostCall(tf.function(gradients, input_signature=[signature, memory], jit_compile=xla))
    return HostCall(tf.function(lambda batch: gradients(batch), input_signature=[signature], jit_compile=xla))


def make_apply(model: keras.Model, optimizer: keras.optimizers.Optimizer, guard: FiniteGuard | None = None) -> HostCall:
    """Compile one optimizer step with gradients computed elsewhere (already clipped by
    [`member_gradients`][a2c.agent.learner.member_gradients]) and their metrics; returns the metrics with the learning
    rate the step used. ``guard`` records non-finite metrics as [`make_update`][a2c.agent.learner.make_update]'s
    does."""
    variables = model.trainable_variables
    optimizer.build(variables)
    signature = [
        [tf.TensorSpec(v.shape, v.dtype) for v in variables],
        {k: tf.TensorSpec([], tf.float32) for k in GRADIENT_METRICS},
    ]

    @tf.function(input_signature=signature, jit_compile=compiles_with_xla(model))
    def apply(grads: list[tf.Tensor], metrics: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        lr = current_learning_rate(optimizer)
        optimizer.apply_gradients(zip(grads, variables))
        metrics = {**metrics, "learning_rate": lr}
        if guard is not None:
            guard.record(metrics)
        return {k: metrics[k] for k in UPDATE_METRICS}

    return HostCall(apply)
