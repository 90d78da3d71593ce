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

from a2c.losses import a2c_loss, soft_policy_loss
from a2c.verify.network import NetSpec, set_weights
from a2c.verify.point import LossSpec, Point

#: ``a2c_loss``'s signature: (logits, values, actions, returns, *, vf_coef, ent_coef,
#: normalize_advantage, mask) -> (total, parts dict). Tests pass broken variants.
A2CLossFn = Callable[..., tuple[tf.Tensor, dict[str, tf.Tensor]]]
#: ``soft_policy_loss``'s signature: (logits, q_values, alpha) -> scalar.
SoftLossFn = Callable[..., tf.Tensor]


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
    obs = tf.constant(point.obs, dtype=tf.float64)
    with tf.GradientTape(persistent=True) as tape:
        out = model64(obs, training=False)
        if loss.case == "soft":
            fn = loss_fn or soft_policy_loss
            terms = {"soft_policy_loss": fn(out["logits"], tf.constant(point.q_values), alpha=loss.alpha)}
        else:
            fn = loss_fn or a2c_loss
            mask = None if point.mask is None else tf.constant(point.mask)
            _, terms = fn(
                out["logits"], out["value"], tf.constant(point.actions), tf.constant(point.returns),
                vf_coef=loss.vf_coef, ent_coef=loss.ent_coef,
                normalize_advantage=loss.normalize_advantage, mask=mask,
            )
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
