"""Policy distributions: the one home of sampling, the greedy action, log-probabilities
and entropy.

Every sampler (the standard trainer's compiled ``act``, the fused rollout, ``a2c
evaluate --sample``), every greedy action (evaluation, the SavedModel's
``greedy_action``) and the losses ([`a2c.agent.losses`][a2c.agent.losses]) go through a
[`Distribution`][a2c.agent.distributions.Distribution]. A new action space needs a class here, a head in
[`a2c.agent.model`][a2c.agent.model] that outputs its parameters, and
[`a2c.envs.spaces.action_shape`][a2c.envs.spaces.action_shape] for the rollout buffers (one int32 per env step for
Discrete, a float32 vector for Box, an int32 vector for MultiDiscrete and MultiBinary).

A distribution is stateless: its methods take the distribution's parameters (for
[`Categorical`][a2c.agent.distributions.Categorical], the logits), read from the model's output dict by
[`Distribution.params`][a2c.agent.distributions.Distribution.params]. Sampling takes its randomness as an argument
(uniform numbers in [0, 1), [`Distribution.noise_shape`][a2c.agent.distributions.Distribution.noise_shape] of them)
instead of drawing it, so that the caller chooses the generator: a seeded ``tf.random.Generator`` in the
trainer, one fused draw per env step in [`a2c.trainers.fused`][a2c.trainers.fused], per-episode numpy
generators in evaluation.

Box action spaces get a [`DiagGaussian`][a2c.agent.distributions.DiagGaussian]. Its samples are *unclipped*: the
rollout buffers and the loss keep the action that was drawn, and only the copy sent
to ``env.step`` is clipped to the Box ([`a2c.envs.spaces.env_actions`][a2c.envs.spaces.env_actions]), as
Stable-Baselines3 does. Why clip rather than squash (tanh): the log-probability of a clipped action
would need the Gaussian's mass beyond the bound, and a tanh squash changes the
density (and needs a Jacobian term); keeping the drawn action in the loss makes
log pi(a|s) the plain Gaussian density of what the policy really sampled. The cost:
mass beyond a bound all maps to the bound, so a policy can push its mean past it
without the env noticing (the greedy action is the clipped mean).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Protocol

import tensorflow as tf
from gymnasium import spaces

from a2c.envs.spaces import policy_kind

#: Smallest uniform number used for sampling: -log(-log(u)) stays finite.
MIN_UNIFORM = 1e-12


class Distribution(Protocol):
    """What the trainer, the exporter and evaluation need from a policy distribution."""

    #: The model outputs holding the parameters (the rest of the dict is ignored).
    param_keys: tuple[str, ...]
    #: dtype of one action.
    action_dtype: tf.DType

    def params(self, outputs: Mapping[str, tf.Tensor]) -> Any: ...

    def noise_shape(self, params: Any) -> tf.TensorShape: ...

    def sample(self, params: Any, noise: tf.Tensor) -> tf.Tensor: ...

    def mode(self, params: Any) -> tf.Tensor: ...

    def log_prob(self, params: Any, actions: tf.Tensor) -> tf.Tensor: ...

    def entropy(self, params: Any) -> tf.Tensor: ...


class Categorical:
    """pi(a|s) = softmax(logits)(a) over ``n`` discrete actions; params: logits (batch, n)."""

    param_keys: tuple[str, ...] = ("logits",)
    action_dtype = tf.int32

    def params(self, outputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
        return outputs["logits"]

    def noise_shape(self, logits: tf.Tensor) -> tf.TensorShape:
        """One uniform number per action (Gumbel-max)."""
        return logits.shape

    def sample(self, logits: tf.Tensor, noise: tf.Tensor) -> tf.Tensor:
        """Gumbel-max: ``argmax(logits + Gumbel)`` is an exact draw from softmax(logits).

        ``noise`` is uniform in [0, 1); it is floored at [`MIN_UNIFORM`][a2c.agent.distributions.MIN_UNIFORM] so the
        Gumbel noise stays finite (a no-op for noise drawn from [MIN_UNIFORM, 1)).
        """
        u = tf.maximum(tf.cast(noise, logits.dtype), MIN_UNIFORM)
        return tf.argmax(logits - tf.math.log(-tf.math.log(u)), axis=-1, output_type=tf.int32)

    def mode(self, logits: tf.Tensor) -> tf.Tensor:
        return tf.argmax(logits, axis=-1, output_type=tf.int32)

    def log_probs(self, logits: tf.Tensor) -> tf.Tensor:
        """log pi(.|s) of every action, from the logits: log(softmax) underflows to -inf
        for unlikely actions."""
        return tf.nn.log_softmax(logits)

    def log_prob(self, logits: tf.Tensor, actions: tf.Tensor) -> tf.Tensor:
        return tf.gather(self.log_probs(logits), actions, axis=-1, batch_dims=1)

    def entropy(self, logits: tf.Tensor) -> tf.Tensor:
        """-sum p log p per sample."""
        log_p = self.log_probs(logits)
        return -tf.reduce_sum(tf.exp(log_p) * log_p, axis=-1)


CATEGORICAL = Categorical()

#: log(2 pi) / 2: the Gaussian density's normalising constant per dimension.
HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


class DiagGaussian:
    """pi(a|s) = N(mean(s), diag(exp(log_std))^2) over Box actions; params: (mean, log_std),
    each (batch, action_dim).

    Log-probabilities and entropies are *summed* over the action dimensions (the
    dimensions are independent, so the joint density is the product). The log-std is
    state-independent in the model (one learned number per dimension, SB3's default)
    but arrives here broadcast to the batch, so this class would serve a
    state-dependent one unchanged.
    """

    param_keys: tuple[str, ...] = ("mean", "log_std")
    action_dtype = tf.float32

    def params(self, outputs: Mapping[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        return outputs["mean"], outputs["log_std"]

    def noise_shape(self, params: tuple[tf.Tensor, tf.Tensor]) -> tf.TensorShape:
        """One uniform number per action dimension (turned into a normal one by the inverse CDF)."""
        return params[0].shape

    def sample(self, params: tuple[tf.Tensor, tf.Tensor], noise: tf.Tensor) -> tf.Tensor:
        """``mean + std * Phi^-1(u)``: an exact draw from the Gaussian for uniform ``u``.

        ``u`` is floored at [`MIN_UNIFORM`][a2c.agent.distributions.MIN_UNIFORM] and the quantile is computed in
        float64: XLA's float32 ``ndtri`` returns -inf below u ~ 3e-8 (it goes through
        ``erfinv(1 - 2u)``, and 1 - 2u rounds to 1), which once in ~10^7 draws made
        the action, and then the loss, infinite. In float64 the draw stays within
        about 7 standard deviations.
        """
        mean, log_std = params
        u = tf.maximum(tf.cast(noise, tf.float64), MIN_UNIFORM)
        return mean + tf.exp(log_std) * tf.cast(tf.math.ndtri(u), mean.dtype)

    def mode(self, params: tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor:
        """The mean, unclipped (the env side clips it, [`a2c.envs.spaces.env_actions`][a2c.envs.spaces.env_actions])."""
        return params[0]

    def log_prob(self, params: tuple[tf.Tensor, tf.Tensor], actions: tf.Tensor) -> tf.Tensor:
        """sum_i [-(a_i - mu_i)^2 / (2 sigma_i^2) - log sigma_i - log(2 pi)/2]."""
        mean, log_std = params
        z = (tf.cast(actions, mean.dtype) - mean) * tf.exp(-log_std)
        return tf.reduce_sum(-0.5 * tf.square(z) - log_std - HALF_LOG_2PI, axis=-1)

    def entropy(self, params: tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor:
        """sum_i [log sigma_i + (1 + log(2 pi)) / 2] per sample."""
        _, log_std = params
        return tf.reduce_sum(log_std + 0.5 + HALF_LOG_2PI, axis=-1)


DIAG_GAUSSIAN = DiagGaussian()

#: The logit given to the padding choices of a sub-action with fewer choices than the
#: widest ([`MultiCategorical`][a2c.agent.distributions.MultiCategorical]): finite, so
#: that ``p log p`` is exactly 0 there, and far below any Gumbel-perturbed real logit.
PAD_LOGIT = -1e9


class MultiCategorical:
    """Independent categoricals, one per sub-action of a MultiDiscrete space;
    params: ``multi_logits`` (batch, sub-actions, widest), each row's choices beyond its
    own count padded with [`PAD_LOGIT`][a2c.agent.distributions.PAD_LOGIT] (by the model's
    [`MultiLogits`][a2c.agent.model.MultiLogits] layer, which splits one Dense head).

    Actions are (batch, sub-actions) int32, each counting from 0. Log-probabilities and
    entropies are *summed* over the sub-actions (the joint of independent choices is
    the product); a padded choice has probability exactly 0, so it is never sampled or
    chosen and adds 0 to the entropy.
    """

    param_keys: tuple[str, ...] = ("multi_logits",)
    action_dtype = tf.int32

    def params(self, outputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
        return outputs["multi_logits"]

    def noise_shape(self, logits: tf.Tensor) -> tf.TensorShape:
        """One uniform number per choice of every sub-action: (batch, sub-actions * widest)."""
        return tf.TensorShape([logits.shape[0], logits.shape[1] * logits.shape[2]])

    def sample(self, logits: tf.Tensor, noise: tf.Tensor) -> tf.Tensor:
        """Gumbel-max per sub-action (see [`Categorical.sample`][a2c.agent.distributions.Categorical.sample])."""
        u = tf.maximum(tf.cast(tf.reshape(noise, tf.shape(logits)), logits.dtype), MIN_UNIFORM)
        return tf.argmax(logits - tf.math.log(-tf.math.log(u)), axis=-1, output_type=tf.int32)

    def mode(self, logits: tf.Tensor) -> tf.Tensor:
        return tf.argmax(logits, axis=-1, output_type=tf.int32)

    def log_prob(self, logits: tf.Tensor, actions: tf.Tensor) -> tf.Tensor:
        """sum_j log softmax(logits_j)(a_j)."""
        log_p = tf.nn.log_softmax(logits)
        return tf.reduce_sum(tf.gather(log_p, tf.cast(actions, tf.int32), axis=-1, batch_dims=2), axis=-1)

    def entropy(self, logits: tf.Tensor) -> tf.Tensor:
        """sum_j -sum_a p_j(a) log p_j(a) per sample."""
        log_p = tf.nn.log_softmax(logits)
        return -tf.reduce_sum(tf.exp(log_p) * log_p, axis=[-2, -1])


MULTI_CATEGORICAL = MultiCategorical()


class Bernoulli:
    """Independent Bernoullis, one per sub-action of a MultiBinary space; params:
    ``bernoulli_logits`` (batch, n), p = sigmoid(logit) the probability of a 1.

    Actions are (batch, n) int32 of 0 and 1; log-probabilities and entropies are summed
    over the sub-actions. ``log sigmoid`` is computed as ``-softplus(-x)`` (finite for
    any logit).
    """

    param_keys: tuple[str, ...] = ("bernoulli_logits",)
    action_dtype = tf.int32

    def params(self, outputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
        return outputs["bernoulli_logits"]

    def noise_shape(self, logits: tf.Tensor) -> tf.TensorShape:
        """One uniform number per sub-action."""
        return logits.shape

    def sample(self, logits: tf.Tensor, noise: tf.Tensor) -> tf.Tensor:
        """1 where ``u < sigmoid(logit)``: an exact draw for uniform ``u``."""
        return tf.cast(tf.cast(noise, logits.dtype) < tf.sigmoid(logits), tf.int32)

    def mode(self, logits: tf.Tensor) -> tf.Tensor:
        """1 where p > 1/2."""
        return tf.cast(logits > 0, tf.int32)

    def log_prob(self, logits: tf.Tensor, actions: tf.Tensor) -> tf.Tensor:
        """sum_i [a_i log p_i + (1 - a_i) log(1 - p_i)]."""
        a = tf.cast(actions, logits.dtype)
        return -tf.reduce_sum(a * tf.nn.softplus(-logits) + (1.0 - a) * tf.nn.softplus(logits), axis=-1)

    def entropy(self, logits: tf.Tensor) -> tf.Tensor:
        """sum_i -[p_i log p_i + (1 - p_i) log(1 - p_i)] per sample."""
        p = tf.sigmoid(logits)
        return tf.reduce_sum(p * tf.nn.softplus(-logits) + (1.0 - p) * tf.nn.softplus(logits), axis=-1)


BERNOULLI = Bernoulli()

#: Every distribution, by the policy kind of [`a2c.envs.spaces.policy_kind`][a2c.envs.spaces.policy_kind].
DISTRIBUTIONS: dict[str, Distribution] = {
    "categorical": CATEGORICAL,
    "gaussian": DIAG_GAUSSIAN,
    "multi_categorical": MULTI_CATEGORICAL,
    "bernoulli": BERNOULLI,
}


def distribution_for(env_id: str, action_space: spaces.Space) -> Distribution:
    """The distribution an action space needs, or EnvError naming the space."""
    return DISTRIBUTIONS[policy_kind(env_id, action_space)]


def distribution_of(outputs: Mapping[str, Any]) -> Distribution:
    """The distribution whose parameters a model's output dict holds."""
    for dist in DISTRIBUTIONS.values():
        if set(dist.param_keys) <= set(outputs):
            return dist
    raise ValueError(f"no policy distribution has parameters among the outputs {sorted(outputs)}")
