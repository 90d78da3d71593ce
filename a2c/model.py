"""The actor-critic network: a shared trunk, a softmax policy head and a linear value head.

The model returns a dict so that training can use the logits (for a stable
``log_softmax``) while exporters and evaluators use the probabilities. The layer
names are part of the contract: :mod:`a2c.verify` reads the layers by name to build
the same network symbolically.

The input is an :class:`~a2c.envs.ObsSpec`: observations of any shape are flattened
(``obs_flatten``) and non-float ones (uint8 frames) are cast inside the model
(``obs_scale``), so the rollout buffers and exported models keep the env's own dtype.
The trunk is chosen by name (:data:`TRUNKS`; ``"mlp"``: Dense layers).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, get_args

import keras
import numpy as np

from a2c.config import Config, Trunk
from a2c.envs import ObsSpec, feature_space, observation_scale, observation_spec

if TYPE_CHECKING:  # pragma: no cover
    from gymnasium import spaces

# Orthogonal gains of the A2C literature (OpenAI Baselines, SB3): keep activations'
# scale through the trunk, start the policy near uniform and the value near zero.
TRUNK_GAIN = math.sqrt(2.0)
POLICY_GAIN = 0.01
VALUE_GAIN = 1.0

OBS_FLATTEN_LAYER = "obs_flatten"
OBS_SCALE_LAYER = "obs_scale"
TRUNK_PREFIX = "trunk_"
LOGITS_LAYER = "policy_logits"
PROBS_LAYER = "policy"
VALUE_LAYER = "value"

TRUNKS: tuple[str, ...] = get_args(Trunk)


def build_actor_critic(
    obs_spec: ObsSpec | int,
    n_actions: int,
    hidden_sizes: Sequence[int] = (64, 64),
    activation: str = "tanh",
    *,
    trunk: Trunk = "mlp",
    seed: int | None = 0,
    dtype: str = "float32",
    obs_scale: Sequence[float] | None = None,
) -> keras.Model:
    """Build the functional model ``obs -> {"logits", "probs", "value"}``.

    ``obs_spec``: the observations' shape and dtype (an int means flat float features).
    ``value`` has shape (batch,), the others (batch, n_actions). ``dtype="float64"``
    builds the same architecture in double precision for gradient checks.
    ``obs_scale`` multiplies each (flattened) observation feature by a constant first
    (a ``Rescaling`` layer, so exported models take raw observations).
    """
    if trunk not in TRUNKS:
        raise ValueError(f"unknown trunk {trunk!r}; known: {', '.join(TRUNKS)}")
    spec = ObsSpec.flat(obs_spec) if isinstance(obs_spec, int) else obs_spec
    seeds = iter(range(10_000 * (seed or 0), 10_000 * (seed or 0) + len(hidden_sizes) + 2))

    def orthogonal(gain: float) -> keras.initializers.Initializer:
        return keras.initializers.Orthogonal(gain=gain, seed=None if seed is None else next(seeds))

    float_obs = np.issubdtype(np.dtype(spec.dtype), np.floating)
    obs = keras.Input(shape=spec.shape, dtype=dtype if float_obs else spec.dtype, name="obs")
    h = obs
    if len(spec.shape) != 1:
        h = keras.layers.Flatten(dtype=dtype, name=OBS_FLATTEN_LAYER)(h)
    if obs_scale is not None or not float_obs:
        # Rescaling casts to the model's dtype (uint8 frames stay uint8 until here) and
        # passes its scale through float32 whatever the dtype; rounding it here makes the
        # float64 model (and the verifier's copy) apply exactly the same numbers.
        scale = [float(np.float32(x)) for x in obs_scale] if obs_scale is not None else 1.0
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


def model_for(cfg: Config, observation_space: "spaces.Space", n_actions: int, *,
              dtype: str = "float32") -> keras.Model:
    """The model a run of ``cfg`` trains on an env with this observation space.

    One builder for every trainer, so that each honours the same config fields
    (``hidden_sizes``, ``activation``, ``trunk``, ``obs_scaling``).
    """
    scale = observation_scale(feature_space(observation_space)) if cfg.obs_scaling == "bounds" else None
    return build_actor_critic(observation_spec(observation_space), n_actions, cfg.hidden_sizes, cfg.activation,
                              trunk=cfg.trunk, seed=cfg.seed, dtype=dtype, obs_scale=scale)


def obs_spec_of(model: keras.Model) -> ObsSpec:
    """The observations a model takes (float inputs report float32, what the envs give)."""
    spec = model.inputs[0]
    dtype = str(keras.backend.standardize_dtype(spec.dtype))
    return ObsSpec(tuple(int(d) for d in spec.shape[1:]), "float32" if "float" in dtype else dtype)


def obs_scale_of(model: keras.Model) -> tuple[float, ...] | None:
    """The constant per-feature input scale of a model, or None when it has none."""
    names = {layer.name for layer in model.layers}
    if OBS_SCALE_LAYER not in names:
        return None
    scale = model.get_layer(OBS_SCALE_LAYER).get_config()["scale"]
    size = obs_spec_of(model).size
    return tuple(float(x) for x in scale) if isinstance(scale, (list, tuple)) else (float(scale),) * size


def trunk_layers(model: keras.Model) -> list[keras.layers.Dense]:
    """The shared trunk's Dense layers in order (used by the verifier and exporters)."""
    return [layer for layer in model.layers if layer.name.startswith(TRUNK_PREFIX)]


def n_actions_of(model: keras.Model) -> int:
    """Number of actions of a model built by :func:`build_actor_critic`."""
    return int(model.get_layer(LOGITS_LAYER).units)
