"""The actor-critic network: a shared trunk, a policy head and a linear value head.

The policy head is a softmax over logits for Discrete actions (outputs ``logits``,
``probs``) or a diagonal Gaussian for Box actions (outputs ``mean`` from a linear
layer and ``log_std`` from [`GaussianLogStd`][a2c.agent.model.GaussianLogStd], one learned number per action
dimension, SB3's default; the layer also records the Box, so a saved model can clip
its greedy actions without the env). MultiDiscrete actions get one Dense head of
``sum(nvec)`` logits split per sub-action by [`MultiLogits`][a2c.agent.model.MultiLogits] (output
``multi_logits``); MultiBinary ones one logit per sub-action through a sigmoid (outputs
``bernoulli_logits``, ``bernoulli_probs``).

The model returns a dict so that training can use the logits (for a stable
``log_softmax``) while exporters and evaluators use the probabilities. The layer
names are part of the contract: [`a2c.verify`][a2c.verify] reads the layers by name to build
the same network symbolically.

A [`DictSpec`][a2c.envs.spaces.DictSpec] (Dict observations) gives one input per key, each
its own branch as below (three-dimensional keys convolved, the others flattened, scaled and
normalised; layer names ending in ``__<key>``), joined by ``obs_concat`` before the Dense layers.
A single input is an [`ObsSpec`][a2c.envs.spaces.ObsSpec]: observations of any shape are flattened
(``obs_flatten``) and non-float ones (uint8 frames) are cast inside the model
(``obs_scale``), so the rollout buffers and exported models keep the env's own dtype.
The trunk is chosen by name ([`TRUNKS`][a2c.agent.model.TRUNKS]): ``"mlp"``, Dense layers; ``"nature_cnn"``,
the DQN/A3C network (Mnih et al. 2015) for stacks of frames (frames, height, width):
uint8 pixels scaled by 1/255 inside the model, moved channels-last (``obs_channels_last``;
TensorFlow's CPU convolutions want NHWC), three ReLU convolutions (``conv_0..2``:
32x8x8 stride 4, 64x4x4/2, 64x3x3/1), flattened (``conv_flatten``), then the Dense
layers of ``hidden_sizes`` (the Nature network's 512), shared by both heads.
With ``obs_norm`` an [`ObsNormalization`][a2c.agent.model.ObsNormalization] layer standardises the observations with
running statistics that the trainer updates from its rollouts; being weights of the
model, they are saved with it, checkpointed, and exported.

(~600 lines: the builder, its three custom layers and the readers of a built model share
the layer names above, which are the contract with the verifier and the exporters;
kept in one module so that a name and its uses are read together.)
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast, get_args

import keras
import numpy as np
import tensorflow as tf

from a2c.agent.distributions import PAD_LOGIT
from a2c.agent.normalize import merge_moments
from a2c.config.schema import Config, NetArch, Precision, Recurrent, Trunk
from a2c.envs.spaces import (
    AnySpec,
    DictSpec,
    ObsSpec,
    PolicyKind,
    box_bounds,
    feature_space,
    image_layout,
    multi_binary_size,
    multi_discrete_sizes,
    observation_scale,
    observation_spec,
)

if TYPE_CHECKING:  # pragma: no cover
    from gymnasium import spaces

# Orthogonal gains of the A2C literature (OpenAI Baselines, SB3): keep activations'
# scale through the trunk, start the policy near uniform and the value near zero.
TRUNK_GAIN = math.sqrt(2.0)
POLICY_GAIN = 0.01
VALUE_GAIN = 1.0

OBS_FLATTEN_LAYER = "obs_flatten"
CHANNELS_LAST_LAYER = "obs_channels_last"
CONV_PREFIX = "conv_"
CONV_FLATTEN_LAYER = "conv_flatten"
#: The Nature CNN's convolutions: (filters, kernel, stride).
NATURE_CNN = ((32, 8, 4), (64, 4, 2), (64, 3, 1))
#: Frames too small for the Nature CNN (MinAtar's 10x10): one 16-filter 3x3 convolution, as the
#: MinAtar paper's network (Young and Tian 2019), then the Dense layers of hidden_sizes (its 128).
SMALL_CNN = ((16, 3, 1),)
#: 1/255 as float32 holds it: Rescaling passes its scale through float32 whatever the model's dtype.
PIXEL_SCALE = float(np.float32(1.0 / 255.0))
OBS_SCALE_LAYER = "obs_scale"
TRUNK_PREFIX = "trunk_"
#: ``net_arch="separate"``: the policy's own Dense layers (``pi_0``, ..) and the value's (``vf_0``, ..).
POLICY_TRUNK_PREFIX = "pi_"
VALUE_TRUNK_PREFIX = "vf_"
LOGITS_LAYER = "policy_logits"
PROBS_LAYER = "policy"
MEAN_LAYER = "policy_mean"
LOG_STD_LAYER = "policy_log_std"
OBS_NORM_LAYER = "obs_norm"
VALUE_LAYER = "value"
#: MultiDiscrete: ``policy_logits`` (one Dense of sum(nvec) units) split per sub-action by this layer.
MULTI_LOGITS_LAYER = "policy_multi_logits"
#: The recurrent cell between the trunk and the heads, and its state input.
RECURRENT_LAYER = "recurrent"
STATE_INPUT = "state"
#: MultiBinary: ``policy_logits`` (one logit per sub-action) through a sigmoid.
BERNOULLI_PROBS_LAYER = "policy_bernoulli"


def traced_for_xla() -> bool:
    """Whether the graph being traced is XLA-compiled: a ``jit_compile`` function, or a loop,
    a vectorized map or a gradient inside one. False in eager mode and TensorFlow's graph executor."""
    if tf.executing_eagerly():
        return False
    from tensorflow.python.ops import control_flow_util  # no public API says this

    return bool(control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()))


@keras.saving.register_keras_serializable(package="a2c")
class NarrowDense(keras.layers.Dense):
    """A Dense layer of few units (an MLP's policy head) that XLA computes as a broadcast multiply
    and a sum over the inputs: ``inputs @ kernel`` up to float summation order, same weights.

    Why: XLA's CPU backend runs a matmul with a handful of output columns, its two gradient
    matmuls and a population's batched copies of them slowly, and fuses this elementwise form
    into its neighbours: the fused CartPole loop at 64 envs trained 3-4% faster (six alternated
    pairs; a population of 64 showed no change beyond the noise). TensorFlow's graph executor
    is the other way round (the elementwise form made the fused graph loop 1.6x slower), so
    outside XLA it is a matmul."""

    def call(self, inputs: Any, training: Any = None) -> Any:
        if not traced_for_xla():
            return super().call(inputs)
        x = keras.ops.sum(keras.ops.expand_dims(inputs, -1) * self.kernel, axis=-2)
        if self.use_bias:
            x = x + self.bias
        return self.activation(x) if self.activation is not None else x


@keras.saving.register_keras_serializable(package="a2c")
class MultiLogits(keras.layers.Layer):
    """One Dense head's ``sum(nvec)`` logits split per sub-action of a MultiDiscrete space
    into (batch, len(nvec), max(nvec)), each row padded with a constant
    ([`a2c.agent.distributions.PAD_LOGIT`][a2c.agent.distributions.PAD_LOGIT]) past its own
    number of choices. No weights; ``nvec`` is saved in the config."""

    def __init__(self, nvec: Sequence[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.nvec = [int(n) for n in nvec]

    def call(self, logits: Any) -> Any:
        widest, rows, start = max(self.nvec), [], 0
        for n in self.nvec:
            row = logits[:, start : start + n]
            if n < widest:
                row = keras.ops.pad(row, [[0, 0], [0, widest - n]], constant_values=PAD_LOGIT)
            rows.append(row)
            start += n
        return keras.ops.stack(rows, axis=1)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], len(self.nvec), max(self.nvec))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "nvec": self.nvec}


@keras.saving.register_keras_serializable(package="a2c")
class GaussianLogStd(keras.layers.Layer):
    """The Gaussian policy's state-independent log-std: one trainable number per action
    dimension (initialised to ``log_std_init``), broadcast to the batch of its input.

    ``low``/``high`` record the Box the actions are clipped to (config only, no weights):
    the exported ``greedy_action`` clips the mean to them.
    """

    def __init__(
        self,
        units: int,
        log_std_init: float = 0.0,
        low: Sequence[float] | None = None,
        high: Sequence[float] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.units, self.log_std_init = int(units), float(log_std_init)
        self.low = None if low is None else [float(x) for x in low]
        self.high = None if high is None else [float(x) for x in high]
        self.log_std = self.add_weight(
            shape=(self.units,), initializer=keras.initializers.Constant(log_std_init), trainable=True, name="log_std"
        )

    def call(self, h: Any) -> Any:
        zeros = keras.ops.zeros_like(h[..., :1])  # (batch, 1): broadcasts the log-std to the batch
        return zeros + keras.ops.cast(self.log_std, h.dtype)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (*input_shape[:-1], self.units)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
            "log_std_init": self.log_std_init,
            "low": self.low,
            "high": self.high,
        }


@keras.saving.register_keras_serializable(package="a2c")
class ObsNormalization(keras.layers.Layer):
    """``clip((x - mean) / sqrt(var + eps), -clip, clip)`` per feature, with running
    statistics (non-trainable weights) that [`update`][a2c.agent.model.ObsNormalization.update] advances from batches of
    raw observations, as the zoo's ``VecNormalize(norm_obs=True)`` does (clip 10)."""

    def __init__(self, clip: float = 10.0, epsilon: float = 1e-8, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clip, self.epsilon = float(clip), float(epsilon)

    def build(self, input_shape: tuple) -> None:
        size = int(input_shape[-1])
        self.mean = self.add_weight(shape=(size,), initializer="zeros", trainable=False, name="mean")
        self.var = self.add_weight(shape=(size,), initializer="ones", trainable=False, name="var")
        # as SB3's RunningMeanStd: a tiny prior count, so the first batch dominates
        self.count = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(1e-4), trainable=False, name="count"
        )

    def call(self, x: Any) -> Any:
        mean, var = keras.ops.cast(self.mean, x.dtype), keras.ops.cast(self.var, x.dtype)
        return keras.ops.clip((x - mean) / keras.ops.sqrt(var + self.epsilon), -self.clip, self.clip)

    def update(self, obs: np.ndarray) -> None:
        """Fold a batch (..., features) of raw observations into the statistics (Chan et al.)."""
        x = np.asarray(obs, np.float64).reshape(-1, self.mean.shape[0])
        if x.shape[0] == 0:
            return
        old_mean, old_var, old_count = (np.asarray(v.numpy(), np.float64) for v in (self.mean, self.var, self.count))
        mean, var, count = merge_moments(old_mean, old_var, old_count, x.mean(axis=0), x.var(axis=0), x.shape[0])
        self.mean.assign(mean.astype(self.mean.dtype))
        self.var.assign(var.astype(self.var.dtype))
        self.count.assign(np.asarray(count, self.count.dtype))

    def update_in_graph(self, obs: tf.Tensor) -> None:
        """[`update`][a2c.agent.model.ObsNormalization.update] as graph code, for the fused loop
        (float64 too; the batch must not be empty)."""
        x = tf.reshape(tf.cast(obs, tf.float64), [-1, self.mean.shape[0]])
        old_mean, old_var, old_count = (tf.cast(v, tf.float64) for v in (self.mean, self.var, self.count))
        n = tf.cast(tf.shape(x)[0], tf.float64)
        batch_mean, batch_var = tf.reduce_mean(x, 0), tf.math.reduce_variance(x, 0)
        mean, var, count = merge_moments(old_mean, old_var, old_count, batch_mean, batch_var, n)
        self.mean.assign(tf.cast(mean, self.mean.dtype))
        self.var.assign(tf.cast(var, self.var.dtype))
        self.count.assign(tf.cast(count, self.count.dtype))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "clip": self.clip, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="a2c")
class RecurrentCell(keras.layers.Layer):
    """One step of an LSTM or GRU cell: ``[x, state] -> [h, new_state]``.

    Written out (rather than Keras' LSTMCell/GRUCell) so that its equations are the ones
    [`a2c.verify.recurrent`][a2c.verify.recurrent] rebuilds in SymPy, and so that the whole state is ONE
    (batch, state_size) array that rollouts, checkpoints and exports carry:

    * LSTM, state ``[h, c]`` (2 x units): ``i, f, g, o = split(x W + h U + b)``,
      ``c' = sigmoid(f) c + sigmoid(i) tanh(g)``, ``h' = sigmoid(o) tanh(c')``; the forget
      bias starts at 1 (Jozefowicz et al. 2015);
    * GRU, state ``h`` (units): ``z = sigmoid(x Wz + h Uz + bz)``, ``r = sigmoid(x Wr + h Ur + br)``,
      ``n = tanh(x Wn + (r h) Un + bn)``, ``h' = (1 - z) n + z h``.

    The episode-start reset is not here: whoever carries the state zeroes it BEFORE the
    call ([`unroll`][a2c.agent.model.unroll]).
    """

    def __init__(self, kind: str, units: int, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if kind not in ("lstm", "gru"):
            raise ValueError(f"unknown recurrent cell {kind!r}; known: lstm, gru")
        self.kind, self.units, self.seed = kind, int(units), seed

    @property
    def gates(self) -> int:
        return 4 if self.kind == "lstm" else 3

    @property
    def state_size(self) -> int:
        return 2 * self.units if self.kind == "lstm" else self.units

    def build(self, input_shape: Any) -> None:
        features, u, g = int(input_shape[0][-1]), self.units, self.gates
        base = 0 if self.seed is None else 10_000 * self.seed + 9_000
        self.kernel = self.add_weight(
            shape=(features, g * u),
            initializer=keras.initializers.Orthogonal(gain=1.0, seed=None if self.seed is None else base),
            name="kernel",
        )
        self.recurrent_kernel = self.add_weight(
            shape=(u, g * u),
            initializer=keras.initializers.Orthogonal(gain=1.0, seed=None if self.seed is None else base + 1),
            name="recurrent_kernel",
        )
        bias = np.zeros(g * u, np.float64)
        if self.kind == "lstm":
            bias[u : 2 * u] = 1.0  # forget gate open at the start
        self.bias = self.add_weight(shape=(g * u,), initializer=keras.initializers.Constant(bias), name="bias")

    def call(self, inputs: Any) -> Any:
        x, state = inputs
        u = self.units
        kernel, recurrent, bias = (keras.ops.cast(w, x.dtype) for w in (self.kernel, self.recurrent_kernel, self.bias))
        if self.kind == "lstm":
            h, c = state[:, :u], state[:, u:]
            z = keras.ops.matmul(x, kernel) + keras.ops.matmul(h, recurrent) + bias
            i, f, g, o = (z[:, k * u : (k + 1) * u] for k in range(4))
            c = keras.ops.sigmoid(f) * c + keras.ops.sigmoid(i) * keras.ops.tanh(g)
            h = keras.ops.sigmoid(o) * keras.ops.tanh(c)
            return [h, keras.ops.concatenate([h, c], axis=-1)]
        h = state
        xz = keras.ops.matmul(x, kernel) + bias
        hz = keras.ops.matmul(h, recurrent[:, : 2 * u])
        z = keras.ops.sigmoid(xz[:, :u] + hz[:, :u])
        r = keras.ops.sigmoid(xz[:, u : 2 * u] + hz[:, u:])
        n = keras.ops.tanh(xz[:, 2 * u :] + keras.ops.matmul(r * h, recurrent[:, 2 * u :]))
        h = (1.0 - z) * n + z * h
        return [h, h]

    def compute_output_shape(self, input_shape: Any) -> Any:
        return [(input_shape[0][0], self.units), (input_shape[0][0], self.state_size)]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "kind": self.kind, "units": self.units, "seed": self.seed}


def cell_state_size(kind: str, units: int) -> int:
    """Width of the carried state of a cell (LSTM: h and c side by side)."""
    return 2 * units if kind == "lstm" else units


TRUNKS: tuple[str, ...] = get_args(Trunk)
#: Dict observations: the branches' features joined before the Dense layers.
OBS_CONCAT_LAYER = "obs_concat"


def _is_image(spec: ObsSpec, key: str) -> bool:
    """Whether a branch is convolved: the single input of a nature_cnn trunk, or a Dict key of
    three dimensions (an image, whatever the trunk)."""
    return len(spec.shape) == 3 or not key


def convolved_keys(spec: AnySpec, trunk: Trunk) -> list[str]:
    """The observation branches a model of this trunk convolves: ``[""]`` for the single input of a
    nature_cnn trunk, the three-dimensional keys of Dict observations whatever the trunk."""
    branches = spec.items if isinstance(spec, DictSpec) else (("", spec),)
    return [key for key, sub in branches if (trunk == "nature_cnn" or key) and _is_image(sub, key)]


def _layer_safe(key: str) -> str:
    """A Dict key as it may appear in Keras layer names."""
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", key)


def build_actor_critic(
    obs_spec: AnySpec | int,
    n_actions: int,
    hidden_sizes: Sequence[int] = (64, 64),
    activation: str = "tanh",
    *,
    trunk: Trunk = "mlp",
    seed: int | None = 0,
    dtype: str = "float32",
    obs_scale: Sequence[float] | Mapping[str, Sequence[float]] | None = None,
    obs_norm: bool = False,
    policy: PolicyKind = "categorical",
    log_std_init: float = 0.0,
    action_bounds: tuple[Sequence[float], Sequence[float]] | None = None,
    convs: Sequence[tuple[int, int, int]] = NATURE_CNN,
    nvec: Sequence[int] | None = None,
    net_arch: NetArch = "shared",
    recurrent: Recurrent = "none",
    recurrent_size: int = 64,
    precision: Precision = "float32",
) -> keras.Model:
    """Build the functional model ``obs -> {"logits", "probs", "value"}`` (categorical),
    ``obs -> {"mean", "log_std", "value"}`` (``policy="gaussian"``, ``n_actions`` dims),
    ``obs -> {"multi_logits", "value"}`` (``policy="multi_categorical"``: ``n_actions``
    = sum(``nvec``) logits split per sub-action by [`MultiLogits`][a2c.agent.model.MultiLogits]) or
    ``obs -> {"bernoulli_logits", "bernoulli_probs", "value"}`` (``policy="bernoulli"``,
    ``n_actions`` sub-actions).

    ``obs_spec``: the observations' shape and dtype (an int means flat float features).
    ``value`` has shape (batch,), the others (batch, n_actions). ``dtype="float64"``
    builds the same architecture in double precision for gradient checks.
    ``obs_scale`` multiplies each (flattened) observation feature by a constant first
    (a ``Rescaling`` layer, so exported models take raw observations); ``obs_norm``
    then standardises them with running statistics ([`ObsNormalization`][a2c.agent.model.ObsNormalization]).
    ``action_bounds`` (low, high): the Box a Gaussian policy's actions are clipped to.
    ``trunk="nature_cnn"`` takes (frames, height, width) observations (see the module
    docstring; ``obs_scale`` and ``obs_norm`` are for feature vectors and are refused);
    ``convs`` (filters, kernel, stride) replaces its convolutions (the verifier's tiny net).
    ``net_arch="separate"``: the policy head and the value head each get their own Dense
    layers of ``hidden_sizes`` (``pi_0..``, ``vf_0..``) instead of the shared ``trunk_0..``
    (the input, its scaling, normalisation and convolutions stay shared).
    ``recurrent="lstm"|"gru"``: a [`RecurrentCell`][a2c.agent.model.RecurrentCell] of ``recurrent_size``
    units between the shared trunk and the heads; the model then takes ``[obs, state]``
    (state: (batch, state_size)) and also returns ``"state"``, the cell's next state.
    ``precision="bfloat16"`` (a float32 model with convolutions): the image branches and the
    Dense trunk compute in bfloat16 under Keras' ``mixed_bfloat16`` policy, their weights
    float32; the heads take their features back to float32, so logits, values and the loss
    are float32 ([`a2c.config.schema.Config`][a2c.config.schema.Config]'s ``precision``).
    """
    if recurrent != "none" and (net_arch != "shared" or isinstance(obs_spec, DictSpec)):
        raise ValueError("a recurrent cell needs a shared trunk and one (non-Dict) observation input")
    if net_arch not in ("shared", "separate"):
        raise ValueError(f"unknown net_arch {net_arch!r}; known: shared, separate")
    if trunk not in TRUNKS:
        raise ValueError(f"unknown trunk {trunk!r}; known: {', '.join(TRUNKS)}")
    spec = ObsSpec.flat(obs_spec) if isinstance(obs_spec, int) else obs_spec
    # Dict observations: every key has its own branch; three-dimensional ones are images (a CNN).
    branches = spec.items if isinstance(spec, DictSpec) else (("", spec),)
    convolved = convolved_keys(spec, trunk)
    branch_convs = {key: conv_layers_for(sub, convs) if key in convolved else () for key, sub in branches}
    if not isinstance(spec, DictSpec) and branch_convs[""] and (obs_scale is not None or obs_norm):
        raise ValueError("the nature_cnn trunk scales pixels itself; obs_scale and obs_norm are for feature vectors")
    if precision == "bfloat16" and not any(branch_convs.values()):
        raise ValueError("precision bfloat16 is for models with convolutions (the nature_cnn trunk or image keys)")
    if precision not in ("float32", "bfloat16"):
        raise ValueError(f"unknown precision {precision!r}; known: float32, bfloat16")
    # Mixed precision: the convolutions and the Dense trunk in bfloat16 over float32 weights.
    trunk_dtype = "mixed_bfloat16" if precision == "bfloat16" and dtype == "float32" else dtype
    n_dense = len(hidden_sizes) * (2 if net_arch == "separate" else 1)
    n_convs = sum(len(c) for c in branch_convs.values())
    seeds = iter(range(10_000 * (seed or 0), 10_000 * (seed or 0) + n_dense + n_convs + 2))

    def orthogonal(gain: float) -> keras.initializers.Initializer:
        return keras.initializers.Orthogonal(gain=gain, seed=None if seed is None else next(seeds))

    def branch(sub: ObsSpec, key: str) -> tuple[Any, Any]:
        """(input, features) of one observation array; layer names end in ``__key`` for a Dict key."""
        suffix = f"__{_layer_safe(key)}" if key else ""
        layer_convs = branch_convs[key]
        scale_in = obs_scale.get(key) if isinstance(obs_scale, Mapping) else obs_scale
        float_obs = np.issubdtype(np.dtype(sub.dtype), np.floating)
        obs = keras.Input(shape=sub.shape, dtype=dtype if float_obs else sub.dtype, name=_layer_safe(key) or "obs")
        h = obs
        if layer_convs:
            # Pixels: scaled (uint8 stays uint8 until here), channels-last, convolved, flattened.
            scale = PIXEL_SCALE if not float_obs else 1.0
            h = keras.layers.Rescaling(scale=scale, dtype=trunk_dtype, name=OBS_SCALE_LAYER + suffix)(h)
            if image_layout(sub.shape) == "channels_first":
                h = keras.layers.Permute((2, 3, 1), dtype=trunk_dtype, name=CHANNELS_LAST_LAYER + suffix)(h)
            for i, (filters, kernel, stride) in enumerate(layer_convs):
                h = keras.layers.Conv2D(
                    filters,
                    kernel,
                    strides=stride,
                    padding="valid",
                    activation="relu",
                    kernel_initializer=orthogonal(TRUNK_GAIN),
                    bias_initializer="zeros",
                    dtype=trunk_dtype,
                    name=f"{CONV_PREFIX}{i}{suffix}",
                )(h)
            return obs, keras.layers.Flatten(dtype=trunk_dtype, name=CONV_FLATTEN_LAYER + suffix)(h)
        if len(sub.shape) != 1:
            h = keras.layers.Flatten(dtype=dtype, name=OBS_FLATTEN_LAYER + suffix)(h)
        if scale_in is not None or not float_obs:
            # Rescaling casts to the model's dtype (uint8 frames stay uint8 until here) and
            # passes its scale through float32 whatever the dtype; rounding it here makes the
            # float64 model (and the verifier's copy) apply exactly the same numbers.
            factors = [float(np.float32(x)) for x in scale_in] if scale_in is not None else 1.0
            h = keras.layers.Rescaling(scale=factors, dtype=dtype, name=OBS_SCALE_LAYER + suffix)(h)
        if obs_norm:
            h = ObsNormalization(dtype=dtype, name=OBS_NORM_LAYER + suffix)(h)
        return obs, h

    built = [(key, *branch(sub, key)) for key, sub in branches]
    if isinstance(spec, DictSpec):
        inputs: Any = {key: obs for key, obs, _ in built}
        h = keras.layers.Concatenate(dtype=trunk_dtype, name=OBS_CONCAT_LAYER)([features for _, _, features in built])
    else:
        ((_, inputs, h),) = built

    def dense_stack(x: Any, prefix: str) -> Any:
        for i, size in enumerate(hidden_sizes):
            x = keras.layers.Dense(
                size,
                activation=activation,
                kernel_initializer=orthogonal(TRUNK_GAIN),
                bias_initializer="zeros",
                dtype=trunk_dtype,
                name=f"{prefix}{i}",
            )(x)
        return x

    if net_arch == "separate":
        h, h_value = dense_stack(h, POLICY_TRUNK_PREFIX), dense_stack(h, VALUE_TRUNK_PREFIX)
    else:
        h = h_value = dense_stack(h, TRUNK_PREFIX)
    state_out: dict[str, Any] = {}
    if recurrent != "none":
        state_in = keras.Input(shape=(cell_state_size(recurrent, recurrent_size),), dtype=dtype, name=STATE_INPUT)
        cell = RecurrentCell(recurrent, recurrent_size, seed=seed, dtype=dtype, name=RECURRENT_LAYER)
        h, new_state = cell([h, state_in])
        h_value = h
        inputs = [inputs, state_in]
        state_out = {"state": new_state}
    # An MLP's policy head is narrow and XLA-compiled: see NarrowDense. A CNN's trains in TensorFlow's
    # graph executor (compiles_with_xla).
    head = keras.layers.Dense if any(branch_convs.values()) else NarrowDense
    if policy == "gaussian":
        mean = head(
            n_actions,
            kernel_initializer=orthogonal(POLICY_GAIN),
            bias_initializer="zeros",
            dtype=dtype,
            name=MEAN_LAYER,
        )(h)
        low, high = action_bounds if action_bounds is not None else (None, None)
        log_std = GaussianLogStd(n_actions, log_std_init, low, high, dtype=dtype, name=LOG_STD_LAYER)(mean)
        policy_out = {"mean": mean, "log_std": log_std}
    elif policy in ("categorical", "multi_categorical", "bernoulli"):
        logits = head(
            n_actions,
            kernel_initializer=orthogonal(POLICY_GAIN),
            bias_initializer="zeros",
            dtype=dtype,
            name=LOGITS_LAYER,
        )(h)
        if policy == "multi_categorical":
            if nvec is None or sum(nvec) != n_actions:
                raise ValueError(f"a multi_categorical policy needs nvec summing to n_actions={n_actions}; got {nvec}")
            policy_out = {"multi_logits": MultiLogits(nvec, dtype=dtype, name=MULTI_LOGITS_LAYER)(logits)}
        elif policy == "bernoulli":
            probs = keras.layers.Activation("sigmoid", dtype=dtype, name=BERNOULLI_PROBS_LAYER)(logits)
            policy_out = {"bernoulli_logits": logits, "bernoulli_probs": probs}
        else:
            probs = keras.layers.Softmax(dtype=dtype, name=PROBS_LAYER)(logits)
            policy_out = {"logits": logits, "probs": probs}
    else:
        raise ValueError(f"unknown policy {policy!r}; known: categorical, gaussian, multi_categorical, bernoulli")
    value = keras.layers.Dense(
        1,
        kernel_initializer=orthogonal(VALUE_GAIN),
        bias_initializer="zeros",
        dtype=dtype,
        name=VALUE_LAYER,
    )(h_value)
    value = keras.layers.Reshape((), dtype=dtype, name="value_squeeze")(value)
    return keras.Model(inputs, {**policy_out, "value": value, **state_out}, name="actor_critic")


def conv_layers_for(
    spec: ObsSpec, convs: Sequence[tuple[int, int, int]] = NATURE_CNN
) -> tuple[tuple[int, int, int], ...]:
    """The convolutions (filters, kernel, stride) for these observations, or ValueError
    saying why the frames cannot take them (not three-dimensional, or too small).

    Frames are (frames, height, width) or (height, width, channels)
    ([`a2c.envs.spaces.image_layout`][a2c.envs.spaces.image_layout]). Frames too small for the
    Nature CNN get [`SMALL_CNN`][a2c.agent.model.SMALL_CNN] instead.
    """
    if len(spec.shape) != 3:
        raise ValueError(
            f"the nature_cnn trunk takes stacks of frames (frames, height, width) or images (height, width, "
            f"channels); these observations are {spec.describe()}"
        )
    height, width = spec.shape[:2] if image_layout(spec.shape) == "channels_last" else spec.shape[1:]

    def fits(layers: Sequence[tuple[int, int, int]]) -> bool:
        size = [height, width]
        for _, kernel, stride in layers:
            size = [(d - kernel) // stride + 1 for d in size]
        return min(size) >= 1

    if fits(convs):
        return tuple(convs)
    if tuple(convs) == NATURE_CNN and fits(SMALL_CNN):
        return SMALL_CNN
    raise ValueError(f"frames of {height}x{width} are too small for the nature_cnn trunk's convolutions")


def model_for(
    cfg: Config, observation_space: spaces.Space, actions: int | spaces.Space, *, dtype: str = "float32"
) -> keras.Model:
    """The model a run of ``cfg`` trains on an env with these observation and action spaces
    (``actions``: the action space, or the number of discrete actions).

    One builder for every trainer, so that each honours the same config fields
    (``hidden_sizes``, ``activation``, ``trunk``, ``obs_scaling``, ``normalize_obs``,
    ``log_std_init``, ``precision``).
    """
    from gymnasium import spaces

    from a2c.common.errors import EnvError

    spec = observation_spec(observation_space)
    if cfg.recurrent != "none" and isinstance(spec, DictSpec):
        raise EnvError(
            f"{cfg.env_id}: recurrent={cfg.recurrent} takes one observation array; Dict/Tuple "
            "observations are not supported with a recurrent cell"
        )
    scale: Any = None
    if isinstance(spec, DictSpec):
        # Dict: image keys are convolved whatever the trunk; obs_scaling and normalize_obs apply to the others.
        for key, sub in spec.items:
            if len(sub.shape) == 3:
                try:
                    conv_layers_for(sub)
                except ValueError as e:
                    raise EnvError(f"{cfg.env_id}: observation key {key!r}: {e}") from None
        if cfg.obs_scaling == "bounds":
            features = feature_space(observation_space)
            scale = {k: observation_scale(features[k]) for k, sub in spec.items if len(sub.shape) != 3}
    elif cfg.trunk == "nature_cnn":
        try:
            conv_layers_for(spec)
        except ValueError as e:
            raise EnvError(f"{cfg.env_id}: {e}") from None
        if cfg.obs_scaling != "none" or cfg.normalize_obs:
            raise EnvError(
                f"{cfg.env_id}: the nature_cnn trunk scales pixels by 1/255 itself; "
                "obs_scaling and normalize_obs are for feature vectors"
            )
    if cfg.obs_scaling == "bounds" and not isinstance(spec, DictSpec):
        scale = observation_scale(feature_space(observation_space))
    if cfg.precision == "bfloat16" and dtype == "float32" and not convolved_keys(spec, cfg.trunk):
        raise EnvError(
            f"{cfg.env_id}: precision bfloat16 is for convolutional models (the nature_cnn trunk, or image keys of "
            f"Dict observations); this model has no convolutions ({spec.describe()})"
        )
    kwargs: dict[str, Any] = {}
    if isinstance(actions, spaces.Box):
        low, high = box_bounds(cfg.env_id, actions)
        kwargs = dict(policy="gaussian", log_std_init=cfg.log_std_init, action_bounds=(low.tolist(), high.tolist()))
        n_actions = int(actions.shape[0])
    elif isinstance(actions, spaces.MultiDiscrete):
        nvec = multi_discrete_sizes(cfg.env_id, actions)
        kwargs = dict(policy="multi_categorical", nvec=nvec)
        n_actions = sum(nvec)
    elif isinstance(actions, spaces.MultiBinary):
        kwargs = dict(policy="bernoulli")
        n_actions = multi_binary_size(cfg.env_id, actions)
    else:
        # not Box or Discrete: ``actions`` is the number of discrete actions
        n_actions = int(actions.n) if isinstance(actions, spaces.Discrete) else int(cast(int, actions))
    return build_actor_critic(
        spec,
        n_actions,
        cfg.hidden_sizes,
        cfg.activation,
        trunk=cfg.trunk,
        seed=cfg.seed,
        dtype=dtype,
        obs_scale=scale,
        obs_norm=cfg.normalize_obs,
        net_arch=cfg.net_arch,
        recurrent=cfg.recurrent,
        recurrent_size=cfg.recurrent_size,
        precision=cfg.precision if dtype == "float32" else "float32",
        **kwargs,
    )


def computes_in(model: keras.Model) -> str:
    """``"bfloat16"`` for a model built with ``precision="bfloat16"`` (any layer computing in it), else the
    dtype of its weights."""
    if any(layer.compute_dtype == "bfloat16" for layer in model.layers):
        return "bfloat16"
    return str(model.weights[0].dtype) if model.weights else "float32"


def float32_twin(model: keras.Model) -> keras.Model:
    """The same network and weights computing in float32: a mixed-precision (bfloat16) model's portable form,
    for exporters whose runtimes do not take bfloat16 (ONNX). Any other model is returned as it is."""
    if computes_in(model) != "bfloat16":
        return model

    def float32_layer(layer: keras.layers.Layer) -> keras.layers.Layer:
        return type(layer).from_config({**layer.get_config(), "dtype": "float32"})

    twin = keras.models.clone_model(model, clone_function=float32_layer)
    twin.set_weights(model.get_weights())
    return twin


def obs_spec_of(model: keras.Model) -> Any:
    """The observations a model takes (float inputs report float32, what the envs give): an
    ObsSpec, or a DictSpec for a model of Dict observations."""

    def one(tensor: Any) -> ObsSpec:
        dtype = str(keras.backend.standardize_dtype(tensor.dtype))
        return ObsSpec(tuple(int(d) for d in tensor.shape[1:]), "float32" if "float" in dtype else dtype)

    if isinstance(model.input, Mapping):
        return DictSpec(tuple(sorted((str(k), one(v)) for k, v in model.input.items())))
    return one(model.inputs[0])


def tensor_spec(spec: AnySpec, *batch: int | None, name: str | None = None) -> Any:
    """A ``tf.TensorSpec`` of a batch of ``spec``'s observations (leading axes ``batch``):
    the fixed input signatures of the compiled calls, so that each traces once. A dict of them
    for a DictSpec (named by key)."""
    if isinstance(spec, DictSpec):
        return {k: tf.TensorSpec([*batch, *sub.shape], sub.dtype, name=_layer_safe(k)) for k, sub in spec.items}
    return tf.TensorSpec([*batch, *spec.shape], spec.dtype, name=name)


def obs_scale_of(model: keras.Model) -> tuple[float, ...] | None:
    """The constant per-feature input scale of a model, or None when it has none."""
    names = {layer.name for layer in model.layers}
    if OBS_SCALE_LAYER not in names:
        return None
    scale = model.get_layer(OBS_SCALE_LAYER).get_config()["scale"]
    size = obs_spec_of(model).size
    return tuple(float(x) for x in scale) if isinstance(scale, (list, tuple)) else (float(scale),) * size


def conv_layers(model: keras.Model) -> list[keras.layers.Conv2D]:
    """The convolutions of a nature_cnn trunk in order (none for an mlp trunk; every image key's
    of a Dict model)."""
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


def compiles_with_xla(model: keras.Model) -> bool:
    """Whether the trainer's compiled calls (act, update) should be XLA-compiled for this model.

    Yes for Dense trunks (XLA fuses a small network into a few kernels); no for
    convolutions, where TensorFlow's own oneDNN kernels are faster on CPU (Nature CNN,
    16 envs: update 132 ms vs 181 ms with XLA, action call 12 vs 16 ms, 2 cores).
    """
    return not conv_layers(model)


def trunk_layers(model: keras.Model, prefix: str = TRUNK_PREFIX) -> list[keras.layers.Dense]:
    """The shared trunk's Dense layers in order (used by the verifier and exporters); with
    ``prefix`` [`POLICY_TRUNK_PREFIX`][a2c.agent.model.POLICY_TRUNK_PREFIX] or
    [`VALUE_TRUNK_PREFIX`][a2c.agent.model.VALUE_TRUNK_PREFIX], a separate network's."""
    layers = [layer for layer in model.layers if layer.name.startswith(prefix) and layer.name[len(prefix) :].isdigit()]
    return sorted(layers, key=lambda layer: int(layer.name[len(prefix) :]))


def net_arch_of(model: keras.Model) -> NetArch:
    """Whether the policy and value heads share a trunk or have their own Dense layers."""
    return "separate" if trunk_layers(model, VALUE_TRUNK_PREFIX) else "shared"


def layer_names(model: keras.Model) -> set[str]:
    return {layer.name for layer in model.layers}


def policy_kind_of(model: keras.Model) -> PolicyKind:
    """Which policy head a model built by [`build_actor_critic`][a2c.agent.model.build_actor_critic] has."""
    names = layer_names(model)
    if MEAN_LAYER in names:
        return "gaussian"
    if MULTI_LOGITS_LAYER in names:
        return "multi_categorical"
    if BERNOULLI_PROBS_LAYER in names:
        return "bernoulli"
    return "categorical"


def n_actions_of(model: keras.Model) -> int:
    """Number of discrete actions, of action dimensions of a Gaussian policy, of logits of a
    MultiDiscrete one (sum of its sub-actions' choices), or of MultiBinary sub-actions."""
    head = MEAN_LAYER if policy_kind_of(model) == "gaussian" else LOGITS_LAYER
    return int(model.get_layer(head).units)


def nvec_of(model: keras.Model) -> tuple[int, ...] | None:
    """The choices per sub-action of a MultiDiscrete policy; None for the others."""
    if policy_kind_of(model) != "multi_categorical":
        return None
    return tuple(model.get_layer(MULTI_LOGITS_LAYER).nvec)


def action_shape_of(model: keras.Model) -> tuple[int, ...]:
    """Shape of one action of the model's policy: () discrete, (dims,) Gaussian,
    (sub-actions,) MultiDiscrete and MultiBinary."""
    kind = policy_kind_of(model)
    if kind == "multi_categorical":
        return (len(nvec_of(model) or ()),)
    return (n_actions_of(model),) if kind in ("gaussian", "bernoulli") else ()


def action_bounds_of(model: keras.Model) -> tuple[np.ndarray, np.ndarray] | None:
    """The Box (low, high) a Gaussian policy's actions are clipped to; None for others."""
    if policy_kind_of(model) != "gaussian":
        return None
    layer = model.get_layer(LOG_STD_LAYER)
    if layer.low is None or layer.high is None:
        return None
    return np.asarray(layer.low, np.float64), np.asarray(layer.high, np.float64)


def obs_norm_of(model: keras.Model) -> ObsNormalization | None:
    """The model's running observation normalisation layer, if it has one."""
    return model.get_layer(OBS_NORM_LAYER) if OBS_NORM_LAYER in layer_names(model) else None


def obs_norms_of(model: keras.Model) -> dict[str | None, ObsNormalization]:
    """Every running normalisation layer by the Dict key it normalises (None: the single input)."""
    spec = obs_spec_of(model)
    if not isinstance(spec, DictSpec):
        layer = obs_norm_of(model)
        return {} if layer is None else {None: layer}
    names = layer_names(model)
    return {
        k: model.get_layer(f"{OBS_NORM_LAYER}__{_layer_safe(k)}")
        for k in spec.keys
        if f"{OBS_NORM_LAYER}__{_layer_safe(k)}" in names
    }


def recurrent_cell_of(model: keras.Model) -> RecurrentCell | None:
    """The model's recurrent cell, or None for a feed-forward model."""
    return model.get_layer(RECURRENT_LAYER) if RECURRENT_LAYER in layer_names(model) else None


def state_size_of(model: keras.Model) -> int:
    """Width of the state a recurrent model carries; 0 for a feed-forward one."""
    cell = recurrent_cell_of(model)
    return 0 if cell is None else cell.state_size


def step(model: Any, obs: Any, state: tf.Tensor, start: tf.Tensor, training: bool = False) -> dict[str, tf.Tensor]:
    """One step of a recurrent model: the state is zeroed where ``start`` (batch,) is 1 (a new
    episode begins at this observation) BEFORE the cell sees it; ``out["state"]`` is the next one."""
    keep = 1.0 - tf.cast(start, state.dtype)
    return model([obs, state * keep[:, None]], training=training)


def unroll(model: Any, obs: Any, state: tf.Tensor, starts: tf.Tensor, training: bool = False) -> dict[str, tf.Tensor]:
    """The model over a time-major sequence ``obs`` (T, batch, ...) from ``state`` (batch, S), with
    episode starts ``starts`` (T, batch): the same weights at every step, the state carried (and
    reset) between steps, gradients flowing through it (truncated BPTT over the window).
    Returns each output stacked (T, batch, ...); ``"state"`` holds the state after each step."""
    outs = []
    for t in range(int(starts.shape[0])):
        out = step(model, tf.nest.map_structure(lambda a, t=t: a[t], obs), state, starts[t], training)
        state = out["state"]
        outs.append(out)
    return {k: tf.stack([o[k] for o in outs]) for k in outs[0]}
