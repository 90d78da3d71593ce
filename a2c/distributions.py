"""Policy distributions: the one home of sampling, the greedy action, log-probabilities
and entropy.

Every sampler (the standard trainer's compiled ``act``, the fused rollout, ``a2c
evaluate --sample``), every greedy action (evaluation, the SavedModel's
``greedy_action``) and the losses (:mod:`a2c.losses`) go through a
:class:`Distribution`. A new action space needs a class here, a head in
:mod:`a2c.model` that outputs its parameters, and an action buffer of its dtype and
shape (today's buffers and signatures hold one int32 per env step).

A distribution is stateless: its methods take the distribution's parameters (for
:class:`Categorical`, the logits), read from the model's output dict by
:meth:`Distribution.params`. Sampling takes its randomness as an argument (uniform
numbers in [0, 1), :meth:`Distribution.noise_shape` of them) instead of drawing it,
so that the caller chooses the generator: a seeded ``tf.random.Generator`` in the
trainer, one fused draw per env step in :mod:`a2c.fused`, per-episode numpy
generators in evaluation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import tensorflow as tf
from gymnasium import spaces

from a2c.errors import EnvError

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

    param_keys = ("logits",)
    action_dtype = tf.int32

    def params(self, outputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
        return outputs["logits"]

    def noise_shape(self, logits: tf.Tensor) -> tf.TensorShape:
        """One uniform number per action (Gumbel-max)."""
        return logits.shape

    def sample(self, logits: tf.Tensor, noise: tf.Tensor) -> tf.Tensor:
        """Gumbel-max: ``argmax(logits + Gumbel)`` is an exact draw from softmax(logits).

        ``noise`` is uniform in [0, 1); it is floored at :data:`MIN_UNIFORM` so the
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


def distribution_for(env_id: str, action_space: spaces.Space) -> Distribution:
    """The distribution an action space needs, or EnvError naming the space."""
    if isinstance(action_space, spaces.Discrete):
        return CATEGORICAL
    raise EnvError(f"{env_id} has action space {action_space}; supported: Discrete action spaces")


def distribution_of(outputs: Mapping[str, Any]) -> Distribution:
    """The distribution whose parameters a model's output dict holds."""
    for dist in (CATEGORICAL,):
        if set(dist.param_keys) <= set(outputs):
            return dist
    raise ValueError(f"no policy distribution has parameters among the outputs {sorted(outputs)}")
