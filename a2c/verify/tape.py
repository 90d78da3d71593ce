"""Method 1: ``tf.GradientTape`` through the project's own model and loss code, in float64.

This is what the trainer does (same builder, same ``a2c_loss`` / ``soft_policy_loss``),
only in double precision so that the comparison with the other two methods is
limited by float64 round-off and not by float32's 1e-7.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from a2c.agent.distributions import distribution_of
from a2c.agent.losses import a2c_loss, soft_policy_loss
from a2c.agent.model import LOG_STD_LAYER
from a2c.verify.network import NetSpec, set_weights
from a2c.verify.point import LossSpec, Point

#: ``a2c_loss``'s signature: (policy params, values, actions, returns, *, vf_coef, ent_coef,
#: normalize_advantage, mask, distribution) -> (total, parts dict). Tests pass broken variants.
A2CLossFn = Callable[..., tuple[tf.Tensor, dict[str, tf.Tensor]]]
#: ``soft_policy_loss``'s signature: (logits, q_values, alpha) -> scalar.
SoftLossFn = Callable[..., tf.Tensor]


def _terms(
    model64: keras.Model, spec: NetSpec, point: Point, loss: LossSpec, loss_fn: A2CLossFn | SoftLossFn | None
) -> dict[str, tf.Tensor]:
    """The loss terms at the model's current weights (call inside a tape to differentiate)."""
    out = model64(tf.constant(point.obs, dtype=tf.float64), training=False)
    if loss.case == "soft":
        fn = loss_fn or soft_policy_loss
        return {"soft_policy_loss": fn(out["logits"], tf.constant(point.q_values), alpha=loss.alpha)}
    fn = loss_fn or a2c_loss
    dist = distribution_of(out)
    mask = None if point.mask is None else tf.constant(point.mask)
    # The categorical policy is a2c_loss's default (and test losses written for logits
    # take no distribution); the others are passed explicitly.
    extra = {"distribution": dist} if spec.policy != "categorical" else {}
    _, terms = fn(
        dist.params(out),
        out["value"],
        tf.constant(point.actions),
        tf.constant(point.returns),
        vf_coef=loss.vf_coef,
        ent_coef=loss.ent_coef,
        normalize_advantage=loss.normalize_advantage,
        mask=mask,
        **extra,
    )
    return terms


def gradients(
    model64: keras.Model,
    spec: NetSpec,
    point: Point,
    loss: LossSpec,
    *,
    loss_fn: A2CLossFn | SoftLossFn | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """Tape gradients of every term w.r.t. every parameter, with the model set to the point's weights.

    ``loss_fn`` replaces ``a2c_loss`` (case a2c) or ``soft_policy_loss`` (case soft).
    """
    set_weights(model64, spec, point.weights)
    variables = []
    for layer in spec.dense_layers:
        keras_layer = model64.get_layer(layer.name)
        variables += [keras_layer.kernel, keras_layer.bias]
    if spec.gaussian:
        variables.append(model64.get_layer(LOG_STD_LAYER).log_std)
    with tf.GradientTape(persistent=True) as tape:
        terms = _terms(model64, spec, point, loss, loss_fn)
    result: dict[str, dict[str, np.ndarray]] = {}
    for term in loss.terms:
        grads = tape.gradient(terms[term], variables)
        result[term] = {
            # None means "does not depend on it" (the value head in the soft loss): zero.
            name: np.zeros(spec.param_shapes[name]) if g is None else np.asarray(g, dtype=np.float64)
            for name, g in zip(spec.param_names, grads)
        }
    del tape
    return result


def loss_values(
    model64: keras.Model, spec: NetSpec, point: Point, loss: LossSpec, *, loss_fn: A2CLossFn | SoftLossFn | None = None
) -> dict[str, float]:
    """The value of every term at the point, as the trainer's code computes it."""
    set_weights(model64, spec, point.weights)
    return {term: float(v) for term, v in _terms(model64, spec, point, loss, loss_fn).items()}
