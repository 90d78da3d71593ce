"""Read an actor-critic Keras model into the plain description the three methods share.

The verifier never trusts its own idea of the architecture: [`describe`][a2c.verify.network.describe] reads
every Dense layer of the model (its size and the activation named in its config)
and checks the wiring, so the symbolic and numeric sides differentiate the network
that Keras actually runs. [`to_float64`][a2c.verify.network.to_float64] rebuilds the same network in double
precision with the project's own [`a2c.agent.model.build_actor_critic`][a2c.agent.model.build_actor_critic], which is
what the tape differentiates.

(~450 lines: the readers of Dense and convolutional models and the float64 rebuild share the
layer names and the policy heads' wiring checks; split, each would repeat them.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from a2c.agent.model import (
    BERNOULLI_PROBS_LAYER,
    CHANNELS_LAST_LAYER,
    LOG_STD_LAYER,
    LOGITS_LAYER,
    MEAN_LAYER,
    MULTI_LOGITS_LAYER,
    OBS_NORM_LAYER,
    OBS_SCALE_LAYER,
    POLICY_TRUNK_PREFIX,
    PROBS_LAYER,
    TRUNK_PREFIX,
    VALUE_LAYER,
    VALUE_TRUNK_PREFIX,
    build_actor_critic,
    conv_layers,
    model_for,
    n_actions_of,
    obs_scale_of,
    policy_kind_of,
    trunk_layers,
)
from a2c.artifacts.saving import load_keras_model
from a2c.common.errors import ModelFileError
from a2c.envs.spaces import PolicyKind

#: A policy head as a hashable key: (kind,) or ("multi_categorical", n_0, n_1, ...).
Head = tuple[Any, ...]

#: Activations every method supports (the trainer's config allows all of them).
SUPPORTED_ACTIVATIONS = ("linear", "tanh", "relu", "sigmoid", "elu", "softplus", "silu", "gelu")
#: Activations whose first or second derivative jumps at 0: central differences that
#: straddle 0 see the mean of the two one-sided slopes (or lose their O(h^2) accuracy),
#: so default check points keep every pre-activation of these layers away from 0.
KINKED_ACTIVATIONS = frozenset({"relu", "elu"})


@dataclass(frozen=True)
class DenseSpec:
    """One Dense layer: ``act(h @ kernel + bias)`` with kernel (in_dim, units)."""

    name: str
    in_dim: int
    units: int
    activation: str

    @property
    def kernel(self) -> str:
        return f"{self.name}/kernel"

    @property
    def bias(self) -> str:
        return f"{self.name}/bias"


#: The Gaussian head's log-std parameter, keyed like the Dense parameters.
LOG_STD_PARAM = f"{LOG_STD_LAYER}/log_std"


@dataclass(frozen=True)
class ObsNormSpec:
    """The model's observation normalisation at the check point: constants, no parameters."""

    mean: tuple[float, ...]
    var: tuple[float, ...]
    epsilon: float
    clip: float

    def apply(self, x: np.ndarray) -> np.ndarray:
        std = np.sqrt(np.asarray(self.var, np.float64) + self.epsilon)
        return np.clip((x - np.asarray(self.mean, np.float64)) / std, -self.clip, self.clip)


@dataclass(frozen=True)
class NetSpec:
    """obs (-> constant obs_scale -> obs_norm) -> trunk Dense layers -> (policy head Dense, value
    Dense(1)); ``policy`` "categorical" (the head gives logits), "gaussian" (the head gives
    the mean, and a state-independent log-std parameter [`LOG_STD_PARAM`][a2c.verify.network.LOG_STD_PARAM] completes
    it), "multi_categorical" (sum(``nvec``) logits, a softmax per sub-action) or "bernoulli" (one
    logit per sub-action)."""

    obs_dim: int
    n_actions: int
    trunk: tuple[DenseSpec, ...]
    logits: DenseSpec  # the policy head: logits, or a Gaussian's mean
    value: DenseSpec
    obs_scale: tuple[float, ...] | None = None
    policy: PolicyKind = "categorical"
    obs_norm: ObsNormSpec | None = None
    nvec: tuple[int, ...] | None = None  # a MultiDiscrete policy's choices per sub-action
    #: ``net_arch="separate"``: the value head's own Dense layers (``trunk`` is then the policy's); None: shared.
    value_trunk: tuple[DenseSpec, ...] | None = None

    @property
    def separate(self) -> bool:
        return self.value_trunk is not None

    @property
    def value_layers(self) -> tuple[DenseSpec, ...]:
        """The Dense layers between the input and the value head (the shared trunk, or the value's own)."""
        return self.value_trunk if self.value_trunk is not None else self.trunk

    @property
    def gaussian(self) -> bool:
        return self.policy == "gaussian"

    @property
    def head(self) -> Head:
        """The policy head as a hashable key (what the SymPy head functions are cached by)."""
        return (self.policy, *(self.nvec or ()))

    def scale(self, obs: np.ndarray) -> np.ndarray:
        """The trunk's input: observations times the model's constant scale, then the
        normalisation (constants: no parameter comes before the trunk, so every method
        takes these numbers as its input). ``obs``: float64 (batch, obs_dim)."""
        x = obs if self.obs_scale is None else obs * np.asarray(self.obs_scale, dtype=np.float64)
        return x if self.obs_norm is None else self.obs_norm.apply(x)

    @property
    def dense_layers(self) -> tuple[DenseSpec, ...]:
        return (*self.trunk, *(self.value_trunk or ()), self.logits, self.value)

    @property
    def param_names(self) -> list[str]:
        """Parameter tensors in a fixed order: each layer's kernel then bias (then the log-std)."""
        names = [p for layer in self.dense_layers for p in (layer.kernel, layer.bias)]
        return [*names, LOG_STD_PARAM] if self.gaussian else names

    @property
    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes: dict[str, tuple[int, ...]] = {}
        for layer in self.dense_layers:
            shapes[layer.kernel] = (layer.in_dim, layer.units)
            shapes[layer.bias] = (layer.units,)
        if self.gaussian:
            shapes[LOG_STD_PARAM] = (self.n_actions,)
        return shapes

    @property
    def n_params(self) -> int:
        return sum(int(np.prod(s)) for s in self.param_shapes.values())

    def layer_of(self, param: str) -> DenseSpec:
        name = param.split("/")[0]
        return next(layer for layer in self.dense_layers if layer.name == name)

    def summary(self) -> str:
        """e.g. ``4 -> 64 tanh -> 64 tanh -> {2 logits, value}``."""
        parts = [
            str(self.obs_dim) + (" normalised" if self.obs_norm else ""),
            *(f"{t.units} {t.activation}" for t in self.trunk),
        ]
        if self.value_trunk is not None:
            value = " -> ".join(f"{t.units} {t.activation}" for t in self.value_trunk)
            parts[1:] = [f"(policy {' -> '.join(parts[1:])} | value {value})"]
        head = {
            "gaussian": f"{self.n_actions} mean, log_std",
            "multi_categorical": f"{'+'.join(map(str, self.nvec or ()))} multi-categorical logits",
            "bernoulli": f"{self.n_actions} Bernoulli logits",
        }.get(self.policy, f"{self.n_actions} logits")
        return " -> ".join(parts) + f" -> {{{head}, value}}"


def _activation_name(layer: keras.layers.Layer) -> str:
    act = layer.get_config().get("activation")
    if not isinstance(act, str) or act not in SUPPORTED_ACTIVATIONS:
        raise ModelFileError(
            f"layer {layer.name!r} uses activation {act!r}, which the verifier does not support "
            f"(supported: {', '.join(SUPPORTED_ACTIVATIONS)})"
        )
    return act


def _check_input(model: keras.Model) -> None:
    """Refuse an input that [`NetSpec`][a2c.verify.network.NetSpec] cannot describe, in one line saying why.

    The symbolic and numeric sides feed float64 vectors straight into ``trunk_0``, so
    an image input (which needs a Flatten) or an integer one (which ``obs_scale``
    casts) would be differentiated as some other network, or fail deep inside.
    """
    if isinstance(getattr(model, "input", None), dict):
        raise ModelFileError(
            f"verify checks models that take flat float observations (batch, features); this model takes "
            f"Dict observations (keys {', '.join(map(repr, model.input))})"
        )
    if len(model.inputs) != 1:
        return  # the wiring check names this one
    shape, dtype = tuple(model.inputs[0].shape), keras.backend.standardize_dtype(model.inputs[0].dtype)
    flat = len(shape) == 2 and shape[1] is not None
    flatten = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Flatten)]
    if flat and keras.backend.is_float_dtype(dtype) and not flatten:
        return
    dims = ", ".join(["batch", *("?" if d is None else str(d) for d in shape[1:])])
    through = f" through Flatten layer {flatten[0]!r}" if flatten else ""
    raise ModelFileError(
        "verify checks models that take flat float observations (batch, features); "
        f"this model takes ({dims}) {dtype} observations{through}"
    )


def describe(model: keras.Model) -> NetSpec:
    """Read the Dense layers and check the input and wiring of a
    [`build_actor_critic`][a2c.agent.model.build_actor_critic] model.

    Raises ModelFileError naming what is missing when the model is not such an
    actor-critic, or takes observations other than flat float vectors (a different
    network would make the three methods disagree for reasons that have nothing to
    do with gradients).
    """
    if not isinstance(model, keras.Model):
        raise ModelFileError(f"expected a Keras model, got {type(model).__name__}")
    names = {layer.name: layer for layer in model.layers}
    kind = policy_kind_of(model)
    head_name = MEAN_LAYER if kind == "gaussian" else LOGITS_LAYER
    follower_name = {
        "gaussian": LOG_STD_LAYER,
        "multi_categorical": MULTI_LOGITS_LAYER,
        "bernoulli": BERNOULLI_PROBS_LAYER,
    }.get(kind, PROBS_LAYER)
    for required in (head_name, follower_name, VALUE_LAYER):
        if required not in names:
            raise ModelFileError(
                f"model {model.name!r} is not an actor-critic built by a2c.agent.model: no layer named {required!r}"
            )
    _check_input(model)
    separate = bool(trunk_layers(model, VALUE_TRUNK_PREFIX))
    trunk = trunk_layers(model, POLICY_TRUNK_PREFIX if separate else TRUNK_PREFIX)
    value_trunk = trunk_layers(model, VALUE_TRUNK_PREFIX) if separate else []
    dense = [*trunk, *value_trunk, names[head_name], names[VALUE_LAYER]]
    for layer in dense:
        if not isinstance(layer, keras.layers.Dense) or not layer.use_bias:
            raise ModelFileError(f"layer {layer.name!r} of model {model.name!r} is not a Dense layer with a bias")
    if kind == "categorical" and not isinstance(names[PROBS_LAYER], keras.layers.Softmax):
        raise ModelFileError(f"layer {PROBS_LAYER!r} of model {model.name!r} is not a Softmax")

    def chain_end(obs: Any, layers: list[keras.layers.Layer]) -> Any:
        """The output of ``layers`` applied in order to ``obs``, or None where the wiring differs."""
        for layer in layers:
            if obs is None or layer.input is not obs:
                return None
            obs = layer.output
        return obs

    try:
        obs = model.inputs[0] if len(model.inputs) == 1 else None
        if OBS_SCALE_LAYER in names:
            wired_scale = names[OBS_SCALE_LAYER].input is obs
            obs = names[OBS_SCALE_LAYER].output if wired_scale else None
        if OBS_NORM_LAYER in names:
            wired_norm = names[OBS_NORM_LAYER].input is obs
            obs = names[OBS_NORM_LAYER].output if wired_norm else None
        last = chain_end(obs, trunk)
        last_value = chain_end(obs, value_trunk) if separate else last
        wired = obs is not None and last is not None and last_value is not None
        wired = wired and names[head_name].input is last and names[VALUE_LAYER].input is last_value
        wired = wired and names[follower_name].input is names[head_name].output
    except (AttributeError, ValueError):  # a layer without a single inbound node
        wired = False
    if not wired:
        shape = (
            f"obs -> ({POLICY_TRUNK_PREFIX}0.. -> {head_name}, {VALUE_TRUNK_PREFIX}0.. -> {VALUE_LAYER})"
            if separate
            else f"obs -> {TRUNK_PREFIX}0.. -> ({head_name}, {VALUE_LAYER})"
        )
        raise ModelFileError(f"model {model.name!r} is not wired as {shape}")
    if names[VALUE_LAYER].units != 1:
        raise ModelFileError(f"layer {VALUE_LAYER!r} must have 1 unit, has {names[VALUE_LAYER].units}")
    obs_dim = int(model.inputs[0].shape[-1])

    def dense_specs(layers: list[keras.layers.Dense], in_dim: int) -> list[DenseSpec]:
        out = []
        for layer in layers:
            out.append(DenseSpec(layer.name, in_dim, int(layer.units), _activation_name(layer)))
            in_dim = int(layer.units)
        return out

    trunk_specs = dense_specs(trunk, obs_dim)
    value_trunk_specs = dense_specs(value_trunk, obs_dim)
    policy_in = trunk_specs[-1].units if trunk_specs else obs_dim
    value_in = value_trunk_specs[-1].units if value_trunk_specs else policy_in if not separate else obs_dim
    logits_spec = dense_specs([names[head_name]], policy_in)[0]
    value_spec = dense_specs([names[VALUE_LAYER]], value_in)[0]
    norm = None
    if OBS_NORM_LAYER in names:
        layer = names[OBS_NORM_LAYER]
        norm = ObsNormSpec(
            tuple(np.asarray(layer.mean.numpy(), np.float64).tolist()),
            tuple(np.asarray(layer.var.numpy(), np.float64).tolist()),
            layer.epsilon,
            layer.clip,
        )
    nvec = tuple(names[MULTI_LOGITS_LAYER].nvec) if kind == "multi_categorical" else None
    return NetSpec(
        obs_dim,
        logits_spec.units,
        tuple(trunk_specs),
        logits_spec,
        value_spec,
        obs_scale_of(model),
        kind,
        norm,
        nvec,
        tuple(value_trunk_specs) if separate else None,
    )


def weights_of(model: keras.Model, spec: NetSpec | None = None) -> dict[str, np.ndarray]:
    """The model's parameters as float64 arrays keyed ``layer/kernel`` and ``layer/bias``."""
    spec = spec or describe(model)
    out: dict[str, np.ndarray] = {}
    for layer in spec.dense_layers:
        keras_layer = model.get_layer(layer.name)
        out[layer.kernel] = np.array(keras_layer.kernel.numpy(), dtype=np.float64)
        out[layer.bias] = np.array(keras_layer.bias.numpy(), dtype=np.float64)
    if spec.gaussian:
        out[LOG_STD_PARAM] = np.array(model.get_layer(LOG_STD_LAYER).log_std.numpy(), dtype=np.float64)
    return out


def to_float64(spec: NetSpec, weights: Mapping[str, np.ndarray]) -> keras.Model:
    """The same actor-critic, built by the project's own builder in float64, at ``weights``."""
    activations = {t.activation for t in (*spec.trunk, *(spec.value_trunk or ()))}
    if len(activations) > 1 or spec.logits.activation != "linear" or spec.value.activation != "linear":
        raise ModelFileError(
            "the verifier rebuilds models with a2c.agent.model.build_actor_critic, which uses one trunk "
            f"activation and linear heads; this model has {spec.summary()} with heads "
            f"{spec.logits.activation}/{spec.value.activation}"
        )
    model = build_actor_critic(
        spec.obs_dim,
        spec.n_actions,
        [t.units for t in spec.trunk],
        activations.pop() if activations else "linear",
        seed=None,
        dtype="float64",
        obs_scale=spec.obs_scale,
        obs_norm=spec.obs_norm is not None,
        policy=spec.policy,
        nvec=spec.nvec,
        net_arch="separate" if spec.separate else "shared",
    )
    if spec.obs_norm is not None:
        norm = model.get_layer(OBS_NORM_LAYER)
        if (norm.epsilon, norm.clip) != (spec.obs_norm.epsilon, spec.obs_norm.clip):
            raise ModelFileError(
                "the verifier rebuilds observation normalisation with the default epsilon and "
                f"clip; this model has epsilon {spec.obs_norm.epsilon}, clip {spec.obs_norm.clip}"
            )
        norm.mean.assign(np.asarray(spec.obs_norm.mean, np.float64))
        norm.var.assign(np.asarray(spec.obs_norm.var, np.float64))
    set_weights(model, spec, weights)
    return model


def set_weights(model: keras.Model, spec: NetSpec, weights: Mapping[str, np.ndarray]) -> None:
    """Assign ``weights`` (float64 arrays keyed like [`weights_of`][a2c.verify.network.weights_of]) to the model's
    layers."""
    for layer in spec.dense_layers:
        keras_layer = model.get_layer(layer.name)
        keras_layer.kernel.assign(np.asarray(weights[layer.kernel], dtype=keras_layer.kernel.dtype))
        keras_layer.bias.assign(np.asarray(weights[layer.bias], dtype=keras_layer.bias.dtype))
    if spec.gaussian:
        log_std = model.get_layer(LOG_STD_LAYER).log_std
        log_std.assign(np.asarray(weights[LOG_STD_PARAM], dtype=log_std.dtype))


@dataclass(frozen=True)
class ConvNet:
    """What the numpy and SymPy sides need of a nature_cnn model, read from its layers."""

    scale: float
    convs: tuple[tuple[str, int, int], ...]  # (layer name, kernel, stride)
    dense: tuple[tuple[str, str], ...]  # (layer name, activation): the trunk, then logits, then value
    n_actions: int
    channels_first: bool = True  # (frames, height, width) input, permuted inside; else (height, width, channels)
    #: net_arch "separate": the value head's own Dense layers (``dense``'s trunk is then the policy's)
    value_dense: tuple[tuple[str, str], ...] = ()

    @property
    def params(self) -> list[str]:
        layers = (*self.convs, *self.dense, *self.value_dense)
        return [f"{name}/{part}" for name, *_ in layers for part in ("kernel", "bias")]


def describe_conv(model: keras.Model) -> ConvNet:
    """Read a nature_cnn actor-critic's layers, or ModelFileError saying what does not fit."""
    convs = conv_layers(model)
    if not convs:
        raise ModelFileError(f"model {model.name!r} has no convolutions; the Dense verifier checks it")
    if policy_kind_of(model) != "categorical":
        raise ModelFileError("verify checks convolutional models with a categorical (softmax) policy only")
    for layer in convs:
        config = layer.get_config()
        if config["activation"] != "relu" or config["padding"] != "valid" or not config["use_bias"]:
            raise ModelFileError(f"layer {layer.name!r} is not a ReLU convolution with valid padding and a bias")
    # Rescaling applies its scale in float32 whatever the model's dtype: so does the numpy side.
    scale = np.float32(model.get_layer(OBS_SCALE_LAYER).get_config()["scale"])
    value_trunk = trunk_layers(model, VALUE_TRUNK_PREFIX)
    policy_trunk = trunk_layers(model, POLICY_TRUNK_PREFIX) if value_trunk else trunk_layers(model)
    dense = [*policy_trunk, model.get_layer(LOGITS_LAYER), model.get_layer(VALUE_LAYER)]
    return ConvNet(
        float(scale),
        tuple((c.name, int(c.kernel_size[0]), int(c.strides[0])) for c in convs),
        tuple((d.name, d.get_config()["activation"]) for d in dense),
        n_actions_of(model),
        CHANNELS_LAST_LAYER in {layer.name for layer in model.layers},
        tuple((d.name, d.get_config()["activation"]) for d in value_trunk),
    )


def load_actor_critic(path: str | Path) -> keras.Model:
    """Load a ``.keras`` file, or the ``model.keras`` of a run directory, and check that
    the verifier can describe it; every failure is one ModelFileError."""
    model = load_keras_model(path)
    if conv_layers(model):
        describe_conv(model)
    else:
        describe(model)
    return model


def default_model(seed: int = 0, env_id: str = "CartPole-v1") -> keras.Model:
    """The trainer's default model for ``env_id`` (its preset's network, e.g. Pendulum-v1's
    Gaussian head with observation normalisation), freshly initialised."""
    from a2c.config.resolve import make_config
    from a2c.envs.make import env_spaces

    cfg = make_config({"env_id": env_id, "seed": seed})
    obs_space, action_space = env_spaces(cfg.env_id)
    return model_for(cfg, obs_space, action_space)
