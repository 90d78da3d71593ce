"""The actor-critic network: a shared Dense trunk, a softmax policy head and a linear value head.

The model returns a dict so that training can use the logits (for a stable
``log_softmax``) while exporters and evaluators use the probabilities. The layer
names are part of the contract: :mod:`a2c.verify` reads the layers by name to build
the same network symbolically.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import numpy as np

# Orthogonal gains of the A2C literature (OpenAI Baselines, SB3): keep activations'
# scale through the trunk, start the policy near uniform and the value near zero.
TRUNK_GAIN = math.sqrt(2.0)
POLICY_GAIN = 0.01
VALUE_GAIN = 1.0

OBS_SCALE_LAYER = "obs_scale"
TRUNK_PREFIX = "trunk_"
LOGITS_LAYER = "policy_logits"
PROBS_LAYER = "policy"
VALUE_LAYER = "value"


def build_actor_critic(
    obs_dim: int,
    n_actions: int,
    hidden_sizes: Sequence[int] = (64, 64),
    activation: str = "tanh",
    *,
    seed: int | None = 0,
    dtype: str = "float32",
    obs_scale: Sequence[float] | None = None,
) -> keras.Model:
    """Build the functional model ``obs -> {"logits", "probs", "value"}``.

    ``value`` has shape (batch,), the others (batch, n_actions). ``dtype="float64"``
    builds the same architecture in double precision for gradient checks.
    ``obs_scale`` multiplies each observation feature by a constant first (a
    ``Rescaling`` layer, so exported models take raw observations).
    """
    seeds = iter(range(10_000 * (seed or 0), 10_000 * (seed or 0) + len(hidden_sizes) + 2))

    def orthogonal(gain: float) -> keras.initializers.Initializer:
        return keras.initializers.Orthogonal(gain=gain, seed=None if seed is None else next(seeds))

    obs = keras.Input(shape=(obs_dim,), dtype=dtype, name="obs")
    h = obs
    if obs_scale is not None:
        # Rescaling passes its scale through float32 whatever the dtype; rounding it here
        # makes the float64 model (and the verifier's copy) apply exactly the same numbers.
        scale = [float(np.float32(x)) for x in obs_scale]
        h = keras.layers.Rescaling(scale=scale, dtype=dtype, name=OBS_SCALE_LAYER)(h)
    for i, size in enumerate(hidden_sizes):
        h = keras.layers.Dense(
            size, activation=activation, kernel_initializer=orthogonal(TRUNK_GAIN),
            bias_initializer="zeros", dtype=dtype, name=f"{TRUNK_PREFIX}{i}",
        )(h)
    logits = keras.layers.Dense(
        n_actions, kernel_initializer=orthogonal(POLICY_GAIN), bias_initializer="zeros",
        dtype=dtype, name=LOGITS_LAYER,
    )(h)
    probs = keras.layers.Softmax(dtype=dtype, name=PROBS_LAYER)(logits)
    value = keras.layers.Dense(
        1, kernel_initializer=orthogonal(VALUE_GAIN), bias_initializer="zeros",
        dtype=dtype, name=VALUE_LAYER,
    )(h)
    value = keras.layers.Reshape((), dtype=dtype, name="value_squeeze")(value)
    return keras.Model(obs, {"logits": logits, "probs": probs, "value": value}, name="actor_critic")


def obs_scale_of(model: keras.Model) -> tuple[float, ...] | None:
    """The constant per-feature input scale of a model, or None when it has none."""
    names = {layer.name for layer in model.layers}
    if OBS_SCALE_LAYER not in names:
        return None
    scale = model.get_layer(OBS_SCALE_LAYER).get_config()["scale"]
    obs_dim = int(model.input_shape[-1])
    return tuple(float(x) for x in scale) if isinstance(scale, (list, tuple)) else (float(scale),) * obs_dim


def trunk_layers(model: keras.Model) -> list[keras.layers.Dense]:
    """The shared trunk's Dense layers in order (used by the verifier and exporters)."""
    return [layer for layer in model.layers if layer.name.startswith(TRUNK_PREFIX)]


def model_dims(model: keras.Model) -> tuple[int, int]:
    """(obs_dim, n_actions) of a model built by :func:`build_actor_critic`."""
    return int(model.input_shape[-1]), int(model.get_layer(LOGITS_LAYER).units)
