"""Gradient checks for convolutional (``nature_cnn``) actor-critics.

The Dense verifier ([`a2c.verify.network.describe`][a2c.verify.network.describe]) reads flat networks; a model
with convolutions is checked here instead, in two parts (``a2c verify`` runs both):

1. [`verify_conv_model`][a2c.verify.conv.verify_conv_model]: the model itself -- any nature_cnn model, a trained
   Atari agent included -- rebuilt in float64 by the project's builder. ``tape``
   (``tf.GradientTape`` through the model and ``a2c_loss``) against ``numeric``:
   central differences of an independent numpy forward pass (sliding-window
   convolutions, uint8 frames scaled as the model says, channels moved last).
   A Nature CNN has 1.7M parameters: every one would take hours, so ``samples``
   coordinates of each parameter tensor are compared (a seeded draw; the biases and
   kernels of every layer). The loss values of the two must agree too, which checks
   the forward pass (scaling, layout, strides) as well as the derivatives.
2. [`verify_tiny_conv`][a2c.verify.conv.verify_tiny_conv]: a 2-convolution net on 10x10x2 frames built by the same
   builder, every parameter three ways. ``symbolic`` is the chain rule through
   per-layer derivatives that SymPy derives: a convolution's pre-activation
   ``sum w x + b`` differentiated with respect to its kernel, bias and input patch,
   ReLU's as ``Heaviside(x, 0)`` (TensorFlow's convention), the Dense layers' and the
   loss's with respect to the logits and the value from [`a2c.verify.symbolic`][a2c.verify.symbolic].

ReLU kinks: a central difference that straddles a pre-activation's zero sees the
mean of two slopes. The tiny net's check point is drawn so that no pre-activation
lies within 1e-3 of zero (redrawn otherwise); the big model's hundreds of thousands
of units make that impossible (a fresh or briefly trained model's zero biases put
whole regions exactly on a kink), so there a coordinate whose two evaluations put
any ReLU on different sides is skipped for the next candidate, and the report says
how many were. Both parts use the Dense verifier's tolerances.

(~470 lines in one module: the layer description, the numpy forward pass, the tape,
the SymPy chain rule and the two checks all work on one [`ConvNet`][a2c.verify.network.ConvNet] and one
point; split apart they would hand both across modules.)
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import sympy as sp
import tensorflow as tf

from a2c.agent.distributions import distribution_of
from a2c.agent.losses import a2c_loss
from a2c.agent.model import (
    LOGITS_LAYER,
    POLICY_TRUNK_PREFIX,
    VALUE_LAYER,
    VALUE_TRUNK_PREFIX,
    build_actor_critic,
    computes_in,
    conv_layers,
    n_actions_of,
    obs_spec_of,
    trunk_layers,
)
from a2c.config.schema import NetArch
from a2c.envs.spaces import ObsSpec
from a2c.verify import numeric, symbolic
from a2c.verify.activations import NUMPY_ACTIVATIONS
from a2c.verify.network import ConvNet, describe_conv
from a2c.verify.point import LossSpec, Point
from a2c.verify.report import EXACT_TOLERANCE, Report

#: The tiny net of part 2: (filters, kernel, stride) on (2, 10, 10) frames -> 4x4x3 -> 2x2x4.
TINY_CONVS = ((3, 3, 2), (4, 2, 2))
TINY_FRAMES = (2, 10, 10)
KINK_MARGIN = 1e-3


def weights_of(model: keras.Model, net: ConvNet) -> dict[str, np.ndarray]:
    return {
        p: np.asarray(
            model.get_layer(p.split("/")[0]).kernel if p.endswith("kernel") else model.get_layer(p.split("/")[0]).bias,
            np.float64,
        )
        for p in net.params
    }


def float64_copy(model: keras.Model, weights: dict[str, np.ndarray]) -> keras.Model:
    """The same network in float64, by the project's builder, at ``weights``."""
    convs = [(int(c.filters), int(c.kernel_size[0]), int(c.strides[0])) for c in conv_layers(model)]
    separate = bool(trunk_layers(model, VALUE_TRUNK_PREFIX))
    trunk = trunk_layers(model, POLICY_TRUNK_PREFIX) if separate else trunk_layers(model)
    copy = build_actor_critic(
        obs_spec_of(model),
        n_actions_of(model),
        [int(d.units) for d in trunk],
        trunk[0].get_config()["activation"] if trunk else "relu",
        trunk="nature_cnn",
        dtype="float64",
        convs=convs,
        net_arch="separate" if separate else "shared",
    )
    for name in {p.split("/")[0] for p in weights}:
        layer = copy.get_layer(name)
        layer.kernel.assign(weights[f"{name}/kernel"])
        layer.bias.assign(weights[f"{name}/bias"])
    return copy


# ------------------------------------------------------------------------ numpy forward pass


def patches(x: np.ndarray, kernel: int, stride: int) -> np.ndarray:
    """(B, H, W, C) -> (B, oh, ow, kernel * kernel * C), each patch flattened as a Keras
    kernel (kh, kw, C, O) flattens its first three axes."""
    windows = np.lib.stride_tricks.sliding_window_view(x, (kernel, kernel), axis=(1, 2))[:, ::stride, ::stride]
    return windows.transpose(0, 1, 2, 4, 5, 3).reshape(*windows.shape[:3], -1)  # (B, oh, ow, C, kh, kw) -> ...


def forward(
    net: ConvNet, W: dict[str, np.ndarray], obs: np.ndarray, keep: list | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(logits (B, A), value (B,)); ``keep`` collects (layer input, pre-activation) per layer."""
    x = np.asarray(obs, np.float64) * net.scale
    if net.channels_first:
        x = x.transpose(0, 2, 3, 1)  # channels last, as obs_channels_last
    for name, kernel, stride in net.convs:
        cols = patches(x, kernel, stride)
        pre = cols @ W[f"{name}/kernel"].reshape(cols.shape[-1], -1) + W[f"{name}/bias"]
        if keep is not None:
            keep.append((cols, pre, x.shape))
        x = np.maximum(pre, 0.0)
    h = h0 = x.reshape(x.shape[0], -1)  # Flatten: (h, w, c) order, as Keras'
    outs = []
    # kept in the order of net.dense, then net.value_dense (a separate value's own layers)
    dense_keep: list = []
    value_keep: list = []
    for name, activation in net.dense:
        layer_in = h
        if name == VALUE_LAYER and net.value_dense:
            layer_in = h0
            for v_name, v_activation in net.value_dense:
                v_pre = layer_in @ W[f"{v_name}/kernel"] + W[f"{v_name}/bias"]
                value_keep.append((layer_in, v_pre, None))
                layer_in = NUMPY_ACTIVATIONS[v_activation](v_pre)
        pre = layer_in @ W[f"{name}/kernel"] + W[f"{name}/bias"]
        dense_keep.append((layer_in, pre, None))
        out = NUMPY_ACTIVATIONS[activation](pre)
        if name in (LOGITS_LAYER, VALUE_LAYER):
            outs.append(out)
        else:
            h = out
    if keep is not None:
        keep.extend([*dense_keep, *value_keep])
    return outs[0], outs[1][:, 0]


def numeric_gradients(
    net: ConvNet,
    point: Point,
    loss: LossSpec,
    coords: dict[str, np.ndarray],
    *,
    want: int | None = None,
    step: float = numeric.DEFAULT_STEP,
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, np.ndarray], int]:
    """Central differences of the numpy forward pass's loss, the advantage frozen at the
    point (the stop-gradient), at the flat indices ``coords`` of each parameter.

    ``want``: take the first ``want`` candidates of each parameter whose two evaluations
    see every ReLU on the same side of its kink (a difference across a kink measures the
    mean of two slopes, not the derivative), skipping the others. Returns the gradients,
    the indices used and how many candidates were skipped.
    """
    W = point.weights
    _, value0 = forward(net, W, point.obs)
    advantage = numeric.frozen_advantage(point, value0, loss)
    layers = (*((c[0], "relu") for c in net.convs), *net.dense, *net.value_dense)
    relu = [i for i, (_, act) in enumerate(layers) if act == "relu"]
    out: dict[str, dict[str, np.ndarray]] = {t: {} for t in loss.terms}
    used: dict[str, np.ndarray] = {}
    skipped = 0
    for param, candidates in coords.items():
        grads: list[np.ndarray] = []
        taken: list[int] = []
        theta = W[param].ravel()
        for i in candidates:
            if want is not None and len(taken) == want:
                break
            h = step * max(1.0, abs(theta[i]))
            f, signs = [], []
            for delta in (h, -h):
                moved = theta.copy()
                moved[i] += delta
                keep: list = []
                logits, value = forward(net, {**W, param: moved.reshape(W[param].shape)}, point.obs, keep)
                f.append(numeric.loss_terms(logits, value, point, loss, advantage))
                signs.append([keep[k][1] > 0 for k in relu])
            if want is not None and any(np.any(a != b) for a, b in zip(*signs)):
                skipped += 1
                continue
            grads.append((f[0] - f[1]) / (2 * h))
            taken.append(i)
        grads_arr = np.array(grads).reshape(len(taken), len(loss.terms))
        used[param] = np.array(taken, dtype=np.int64)
        for t, term in enumerate(loss.terms):
            out[term][param] = grads_arr[:, t]
    return out, used, skipped


# ------------------------------------------------------------------------ tape


def _tape_terms(model64: keras.Model, point: Point, loss: LossSpec) -> dict[str, tf.Tensor]:
    out = model64(tf.constant(point.obs), training=False)
    dist = distribution_of(out)
    _, terms = a2c_loss(
        dist.params(out),
        out["value"],
        tf.constant(point.actions),
        tf.constant(point.returns),
        vf_coef=loss.vf_coef,
        ent_coef=loss.ent_coef,
        normalize_advantage=loss.normalize_advantage,
    )
    return terms


def tape_gradients(
    model64: keras.Model, net: ConvNet, point: Point, loss: LossSpec
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, float]]:
    variables = [getattr(model64.get_layer(p.split("/")[0]), p.split("/")[1]) for p in net.params]
    with tf.GradientTape(persistent=True) as tape:
        terms = _tape_terms(model64, point, loss)
    # None: the term does not depend on the parameter (the value head in the policy loss): zero.
    grads = {
        term: {
            p: np.zeros(v.shape) if g is None else np.asarray(g, np.float64)
            for p, v, g in zip(net.params, variables, tape.gradient(terms[term], variables))
        }
        for term in loss.terms
    }
    return grads, {term: float(v) for term, v in terms.items()}


# ------------------------------------------------------------------------ SymPy chain rule


@functools.cache
def conv_unit_derivatives(n: int) -> tuple:
    """SymPy's derivatives of one convolution output ``sum_i w_i x_i + b`` (a patch of n
    inputs): with respect to each w_i (a function of the patch), each x_i (a function
    of the kernel column) and b, lambdified."""
    x, w, b = sp.symbols(f"x0:{n}", real=True), sp.symbols(f"w0:{n}", real=True), sp.Symbol("b", real=True)
    pre = sum(wi * xi for wi, xi in zip(w, x)) + b
    d_w = sp.lambdify(x, [sp.diff(pre, wi) for wi in w], "numpy")
    d_x = sp.lambdify(w, [sp.diff(pre, xi) for xi in x], "numpy")
    return d_w, d_x, float(sp.diff(pre, b))


def symbolic_gradients(net: ConvNet, point: Point, loss: LossSpec) -> dict[str, dict[str, np.ndarray]]:
    """Backpropagation through SymPy-derived per-layer derivatives (see the module docstring)."""
    W = point.weights
    keep: list = []
    logits, value = forward(net, W, point.obs, keep)
    n_conv, n_dense = len(net.convs), len(net.dense)
    conv_keep, dense_keep, value_keep = keep[:n_conv], keep[n_conv : n_conv + n_dense], keep[n_conv + n_dense :]
    _, fns = symbolic.head_gradient_fns(net.n_actions, "a2c")
    data = symbolic.data_values(point, loss, symbolic.advantage_at(point, value, loss))
    w = symbolic.batch_weights(point, loss)
    relu_d = symbolic.derivative_numpy("relu", None)
    z_shift = logits - logits.max(axis=1, keepdims=True)
    n_trunk = len(net.dense) - 2
    out: dict[str, dict[str, np.ndarray]] = {}
    for term in loss.terms:
        g = [np.broadcast_to(np.asarray(gk, np.float64), (point.batch,)) for gk in fns[term](*z_shift.T, value, *data)]
        grads: dict[str, np.ndarray] = {}
        g_heads = {
            LOGITS_LAYER: np.stack(g[: net.n_actions], axis=1) * w[:, None],
            VALUE_LAYER: (g[net.n_actions] * w)[:, None],
        }
        g_h: Any = 0.0
        g_value_h: Any = 0.0  # separate: the value head's gradient w.r.t. its own trunk's output
        for (name, activation), (h, pre, _) in zip(net.dense[n_trunk:], dense_keep[n_trunk:]):
            g_pre = g_heads[name] * symbolic.elementwise(symbolic.derivative_numpy(activation, None), pre)
            grads[f"{name}/kernel"], grads[f"{name}/bias"] = h.T @ g_pre, g_pre.sum(axis=0)
            if name == VALUE_LAYER and net.value_dense:
                g_value_h = g_pre @ W[f"{name}/kernel"].T
            else:
                g_h = g_h + g_pre @ W[f"{name}/kernel"].T
        g_h = _backprop(g_h, list(zip(net.dense[:n_trunk], dense_keep[:n_trunk])), W, grads)
        if net.value_dense:  # both chains start from the flattened convolutions
            g_h = g_h + _backprop(g_value_h, list(zip(net.value_dense, value_keep)), W, grads)
        _, last_pre, _ = conv_keep[-1]
        g_x = np.asarray(g_h).reshape(np.maximum(last_pre, 0.0).shape)  # un-flatten
        for (name, kernel, stride), (cols, pre, in_shape) in reversed(list(zip(net.convs, conv_keep))):
            g_pre = g_x * symbolic.elementwise(relu_d, pre)  # (B, oh, ow, O)
            d_w, d_x, d_b = conv_unit_derivatives(cols.shape[-1])
            flat_cols = cols.reshape(-1, cols.shape[-1])
            dpre_dw = np.stack(np.broadcast_arrays(*d_w(*flat_cols.T)), axis=1)  # (N, n): the patch
            g_flat = g_pre.reshape(-1, g_pre.shape[-1])
            k_mat = W[f"{name}/kernel"].reshape(cols.shape[-1], -1)
            grads[f"{name}/kernel"] = (dpre_dw.T @ g_flat).reshape(W[f"{name}/kernel"].shape)
            grads[f"{name}/bias"] = d_b * g_flat.sum(axis=0)
            dpre_dx = np.array([d_x(*k_mat[:, o]) for o in range(k_mat.shape[1])], np.float64)  # (O, n): the kernel
            g_cols = g_flat @ dpre_dx  # (N, n)
            g_x = _col2im(g_cols.reshape(*cols.shape), in_shape, kernel, stride)
        out[term] = {p: grads[p] for p in net.params}
    return out


def _backprop(g: Any, chain: list, W: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> Any:
    """Through a chain of Dense layers ((name, activation), (input, pre, _)) from its output's
    gradient ``g``: fills ``grads`` with each layer's and returns the gradient at its input."""
    for (name, activation), (h, pre, _) in reversed(chain):
        g_pre = g * symbolic.elementwise(symbolic.derivative_numpy(activation, None), pre)
        grads[f"{name}/kernel"], grads[f"{name}/bias"] = h.T @ g_pre, g_pre.sum(axis=0)
        g = g_pre @ W[f"{name}/kernel"].T
    return g


def _col2im(g_cols: np.ndarray, in_shape: tuple, kernel: int, stride: int) -> np.ndarray:
    """Add each patch's gradient back onto the input positions it was read from."""
    b, oh, ow, _ = g_cols.shape
    g = g_cols.reshape(b, oh, ow, kernel, kernel, in_shape[-1])
    g_in = np.zeros(in_shape)
    for i in range(kernel):
        for j in range(kernel):
            g_in[:, i : i + stride * oh : stride, j : j + stride * ow : stride, :] += g[:, :, :, i, j, :]
    return g_in


# ------------------------------------------------------------------------ the checks


def _hidden(net: ConvNet, keep: list) -> list:
    """The kept (input, pre-activation) of every ReLU layer but the heads: convolutions and trunks."""
    n = len(net.convs) + len(net.dense)
    return [*keep[: n - 2], *keep[n:]]


def _point(
    net: ConvNet, weights: dict[str, np.ndarray], spec: ObsSpec, batch: int, rng: np.random.Generator, avoid_kinks: bool
) -> Point:
    for _ in range(200):
        if spec.dtype == "uint8":
            obs: np.ndarray = rng.integers(0, 256, (batch, *spec.shape)).astype(np.uint8)
        else:
            obs = rng.random((batch, *spec.shape))
        keep: list = []
        forward(net, weights, obs, keep)
        if not avoid_kinks or min(np.abs(pre).min() for _, pre, _ in _hidden(net, keep)) > KINK_MARGIN:
            break
    else:
        raise RuntimeError("no check point away from the ReLU kinks in 200 draws")
    return Point(
        weights,
        obs,
        rng.integers(0, net.n_actions, batch),
        rng.standard_normal(batch),
        np.zeros((batch, net.n_actions)),
    )


def verify_conv_model(
    model: keras.Model, *, batch: int = 4, seed: int = 0, samples: int = 6, vf_coef: float = 0.5, ent_coef: float = 0.01
) -> Report:
    """Part 1: tape vs finite differences on the model itself, ``samples`` coordinates per tensor."""
    net = describe_conv(model)
    rng = np.random.default_rng(seed)
    weights = weights_of(model, net)
    point = _point(net, weights, obs_spec_of(model), batch, rng, avoid_kinks=False)
    loss = LossSpec("a2c", vf_coef, ent_coef)
    candidates = {p: rng.permutation(w.size) for p, w in weights.items()}
    t0 = time.perf_counter()
    grads_tape, tape_values = tape_gradients(float64_copy(model, weights), net, point, loss)
    t1 = time.perf_counter()
    grads_num, coords, skipped = numeric_gradients(net, point, loss, candidates, want=samples)
    t2 = time.perf_counter()
    tape_at = {t: {p: g.ravel()[coords[p]] for p, g in grads.items()} for t, grads in grads_tape.items()}
    logits, value = forward(net, weights, point.obs)
    num_values = dict(
        zip(
            loss.terms,
            numeric.loss_terms(logits, value, point, loss, numeric.frozen_advantage(point, value, loss)).tolist(),
        )
    )
    checks = {
        f"{t} value, tape {tape_values[t]:.10g} / numpy forward {num_values[t]:.10g}": abs(
            tape_values[t] - num_values[t]
        )
        <= EXACT_TOLERANCE.atol + EXACT_TOLERANCE.rtol * abs(num_values[t])
        for t in loss.terms
    }
    n_params = sum(w.size for w in weights.values())
    return Report.build(
        "conv",
        f"gradient check of a convolutional model: {model.name}, {n_params:,} parameters, "
        f"{samples} sampled coordinates per tensor, batch {batch}, seed {seed}",
        {
            "tape": "tf.GradientTape through a2c.agent.model.build_actor_critic(trunk='nature_cnn', dtype='float64') "
            "and a2c.agent.losses.a2c_loss",
            "numeric": "central differences of an independent numpy forward pass (sliding-window convolutions), "
            "float64, advantage frozen at the point; coordinates whose difference straddles a ReLU kink skipped",
        },
        {"tape": tape_at, "numeric": grads_num},
        (("tape", "numeric"),),
        {"obs_shape": list(point.obs.shape), "coordinates": {p: c.tolist() for p, c in coords.items()}},
        settings={"n_params": n_params, "samples_per_tensor": samples, "batch": batch, "seed": seed, **loss.to_dict()},
        timings={"tape": t1 - t0, "numeric": t2 - t1},
        checks=checks,
        notes=[
            f"{samples} coordinates per tensor drawn at random; {skipped} candidate(s) skipped because their "
            "finite difference straddled a ReLU kink (any unit changing side between the two evaluations)",
            *(
                [
                    f"the model computes in {precision} over float32 weights (mixed precision): checked on a "
                    "float64 copy of those weights, the gradients of its maths without the rounding"
                ]
                if (precision := computes_in(model)) != "float32"
                else []
            ),
        ],
    )


def tiny_conv_model(
    seed: int = 0, n_actions: int = 3, hidden: Sequence[int] = (5,), net_arch: NetArch = "shared"
) -> keras.Model:
    """Part 2's net: 2 ReLU convolutions on 10x10x2 frames, a Dense layer (one per head with
    ``net_arch="separate"``), both heads."""
    return build_actor_critic(
        ObsSpec(TINY_FRAMES, "float32"),
        n_actions,
        hidden,
        "relu",
        trunk="nature_cnn",
        seed=seed,
        convs=TINY_CONVS,
        net_arch=net_arch,
    )


def verify_tiny_conv(
    *, batch: int = 6, seed: int = 0, vf_coef: float = 0.5, ent_coef: float = 0.01, net_arch: NetArch = "shared"
) -> Report:
    """Part 2: every parameter of [`tiny_conv_model`][a2c.verify.conv.tiny_conv_model] by tape, SymPy chain rule and
    finite differences."""
    model = tiny_conv_model(seed, net_arch=net_arch)
    net = describe_conv(model)
    rng = np.random.default_rng(seed)
    weights = weights_of(model, net)
    weights = {p: w + (0.1 * rng.standard_normal(w.shape) if p.endswith("bias") else 0.0) for p, w in weights.items()}
    point = _point(net, weights, obs_spec_of(model), batch, rng, avoid_kinks=True)
    loss = LossSpec("a2c", vf_coef, ent_coef)
    t0 = time.perf_counter()
    grads_tape, _ = tape_gradients(float64_copy(model, weights), net, point, loss)
    t1 = time.perf_counter()
    grads_sym = symbolic_gradients(net, point, loss)
    t2 = time.perf_counter()
    coords = {p: np.arange(w.size) for p, w in weights.items()}
    grads_num, _, _ = numeric_gradients(net, point, loss, coords)
    grads_num = {t: {p: g.reshape(weights[p].shape) for p, g in grads.items()} for t, grads in grads_num.items()}
    t3 = time.perf_counter()
    n_params = sum(w.size for w in weights.values())
    return Report.build(
        "conv-tiny",
        f"gradient check, 2 convolutions on 10x10x2 frames ({TINY_CONVS}), {n_params} parameters, "
        f"batch {batch}, seed {seed}",
        {
            "tape": "tf.GradientTape through a2c.agent.model.build_actor_critic(trunk='nature_cnn', convs=..., "
            "dtype='float64') and a2c.agent.losses.a2c_loss",
            "symbolic": "chain rule through SymPy-derived per-layer derivatives (convolution w.r.t. kernel, bias "
            "and input patch; ReLU as Heaviside(x, 0); loss w.r.t. logits and value)",
            "numeric": "central differences of an independent numpy forward pass, float64, advantage frozen",
        },
        {"tape": grads_tape, "symbolic": grads_sym, "numeric": grads_num},
        (("tape", "symbolic"), ("tape", "numeric"), ("symbolic", "numeric")),
        {"obs": point.obs.tolist(), "actions": point.actions.tolist(), "returns": point.returns.tolist()},
        settings={"n_params": n_params, "batch": batch, "seed": seed, "convs": TINY_CONVS, **loss.to_dict()},
        timings={"tape": t1 - t0, "symbolic": t2 - t1, "numeric": t3 - t2},
        notes=[f"check point redrawn until every ReLU pre-activation is at least {KINK_MARGIN:g} from 0"],
    )
