"""Method 2: SymPy differentiates the loss symbolically; the result is evaluated at the point.

The network is read from the Keras model's own layers ([`a2c.verify.network.describe`][a2c.verify.network.describe]):
each Dense layer's size and the activation named in its config. Two ways to use SymPy:

``expanded`` (small models, like the seed notebook): the whole per-sample loss is
one SymPy expression in symbols for every parameter and every input; SymPy
differentiates it with respect to each parameter symbol and ``lambdify`` turns the
derivatives into numpy functions, evaluated over the batch and averaged.

``chain`` (any size; the default CartPole model uses it): SymPy derives the nonlinear
pieces -- each activation's derivative and the derivative of the per-sample loss
with respect to the logits and the value -- and these lambdified derivatives are
composed by the chain rule through the Dense layers in numpy (``dL/dW = h^T dL/dpre``,
``dL/dh = dL/dpre W^T``). Fully expanding a 4,675-parameter network would take
SymPy hours; the chain rule is exact all the same.

``auto`` picks ``expanded`` up to [`EXPANDED_MAX_PARAMS`][a2c.verify.symbolic.EXPANDED_MAX_PARAMS] parameters.

Both ways stay in this one module (~480 lines, the Gaussian and sub-action heads included) on
purpose: they build the per-sample loss from the same symbolic pieces (activations, the TensorFlow conventions below),
and keeping those in one place is what keeps the two ways from drifting apart.

Conventions that must match TensorFlow:

* Stop-gradient: the advantage is its own symbol ``adv``, not ``R - v``, so the policy
  term has no derivative with respect to the value head; its number is computed
  from the point's values (and normalised with the batch's statistics when asked),
  just as ``tf.stop_gradient`` leaves it.
* ReLU: SymPy's ``d/dx Max(0, x)`` is ``Heaviside(x)``, which is 1/2 at 0.
  TensorFlow's ReLU gradient is 0 at 0 (``features > 0``), so every ``Heaviside(u)``
  in a derivative is replaced by ``Heaviside(u, 0)``. ``derivatives=`` lets a caller
  substitute any other derivative (the tests inject wrong ones).
* Losses: the same batch mean / ``masked_mean`` weights, MSE without 1/2, entropy
  with a minus sign in the total, as in [`a2c.agent.losses.a2c_loss`][a2c.agent.losses.a2c_loss]; the soft loss is
  ``-sum_a pi (q - alpha log pi)`` averaged over the batch.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np
import sympy as sp

from a2c.verify.network import LOG_STD_PARAM, DenseSpec, Head, NetSpec
from a2c.verify.point import LossSpec, Point

Method = Literal["auto", "expanded", "chain"]
EXPANDED_MAX_PARAMS = 24  # expanding grows steeply with the parameter count (results/tuning.md)

#: A symbolic activation or derivative: SymPy expression in, SymPy expression out.
SymFn = Callable[[sp.Expr], sp.Expr]

ACTIVATIONS: dict[str, SymFn] = {
    "linear": lambda x: x,
    "tanh": sp.tanh,
    "relu": lambda x: sp.Max(0, x),
    "sigmoid": lambda x: 1 / (1 + sp.exp(-x)),
    "elu": lambda x: sp.Piecewise((x, x > 0), (sp.exp(x) - 1, True)),
    "softplus": lambda x: sp.log(1 + sp.exp(x)),
    "silu": lambda x: x / (1 + sp.exp(-x)),
    "gelu": lambda x: x * (1 + sp.erf(x / sp.sqrt(2))) / 2,
}

# numpy has no erf; math.erf elementwise is exact and only needed for gelu.
_MODULES = [{"erf": np.vectorize(math.erf, otypes=[np.float64])}, "numpy"]

_X = sp.Symbol("x", real=True)


def tf_convention(expr: sp.Expr) -> sp.Expr:
    """Give every step function TensorFlow's value at 0: ``Heaviside(u) -> Heaviside(u, 0)``."""
    return expr.replace(sp.Heaviside, lambda u, *_: sp.Heaviside(u, 0))


def activation_derivative(name: str, derivatives: Mapping[str, SymFn] | None = None) -> SymFn:
    """The derivative used for activation ``name``: an override, or SymPy's in TF convention."""
    if derivatives and name in derivatives:
        return derivatives[name]
    d = tf_convention(sp.diff(ACTIVATIONS[name](_X), _X))
    return lambda u: d.subs(_X, u)


def _lambdify(
    args: list[sp.Symbol], expr: sp.Expr | list[sp.Expr], functions: Mapping[str, Callable] | None = None
) -> Callable[..., Any]:
    """numpy function of ``args`` (common subexpressions computed once); ``functions`` names extra callables."""
    return sp.lambdify(args, expr, modules=[dict(functions or {}), *_MODULES], cse=True)


@functools.cache
def _activation_numpy(name: str) -> Callable[[np.ndarray], np.ndarray]:
    return _lambdify([_X], ACTIVATIONS[name](_X))


def derivative_numpy(name: str, derivatives: Mapping[str, SymFn] | None) -> Callable[[np.ndarray], np.ndarray]:
    if not derivatives or name not in derivatives:
        return _default_derivative_numpy(name)
    return _lambdify([_X], activation_derivative(name, derivatives)(_X))


@functools.cache
def _default_derivative_numpy(name: str) -> Callable[[np.ndarray], np.ndarray]:
    return _lambdify([_X], activation_derivative(name)(_X))


def elementwise(fn: Callable[[np.ndarray], object], x: np.ndarray) -> np.ndarray:
    """Call a lambdified function; constants (e.g. a linear layer's derivative 1) broadcast to x."""
    return np.broadcast_to(np.asarray(fn(x), dtype=np.float64), x.shape)


# ---------------------------------------------------------------------------------------
# The per-sample loss as a SymPy expression of the heads' outputs
# ---------------------------------------------------------------------------------------


class HeadSymbols:
    """Symbols of one sample: logits z, value v, one-hot action y, advantage, return, Q, coefficients.

    For a Gaussian policy z is the mean, y the (real) action and ``ls`` the log-std.
    """

    def __init__(self, n_actions: int) -> None:
        self.z = list(sp.symbols(f"z0:{n_actions}", real=True))
        self.ls = list(sp.symbols(f"ls0:{n_actions}", real=True))
        self.v = sp.Symbol("v", real=True)
        self.y = list(sp.symbols(f"y0:{n_actions}", real=True))
        self.adv = sp.Symbol("adv", real=True)  # stop-gradient: a constant, not R - v
        self.ret = sp.Symbol("R", real=True)
        self.q = list(sp.symbols(f"q0:{n_actions}", real=True))
        self.vf_coef, self.ent_coef, self.alpha = sp.symbols("vf_coef ent_coef alpha", real=True)

    @property
    def data(self) -> list[sp.Symbol]:
        """Symbols whose values come from the point, in the order [`data_values`][a2c.verify.symbolic.data_values] gives
        them."""
        return [*self.y, self.adv, self.ret, *self.q, self.vf_coef, self.ent_coef, self.alpha]


def per_sample_loss(
    s: HeadSymbols,
    case: str,
    z: list[sp.Expr],
    v: sp.Expr,
    log_std: list[sp.Expr] | None = None,
    head: Head = ("categorical",),
) -> dict[str, sp.Expr]:
    """One sample's loss terms, in the same definitions as a2c_loss / soft_policy_loss.

    ``log_std`` given: the Gaussian policy N(z, diag(exp(log_std))^2), written from its
    density here (not from a2c.agent.distributions): log pi = sum_k log N(y_k; z_k, sigma_k),
    entropy = sum_k (log sigma_k + (1 + log 2 pi) / 2).
    """
    if log_std is not None:
        log_pi = sum(
            -((yk - zk) ** 2) / (2 * sp.exp(2 * lk)) - lk - sp.log(2 * sp.pi) / 2 for yk, zk, lk in zip(s.y, z, log_std)
        )
        policy = -s.adv * log_pi
        value = (s.ret - v) ** 2
        entropy = sum(lk + sp.Rational(1, 2) + sp.log(2 * sp.pi) / 2 for lk in log_std)
        total = policy + s.vf_coef * value - s.ent_coef * entropy
        return {"policy_loss": policy, "value_loss": value, "entropy": entropy, "total_loss": total}
    if head[0] in ("multi_categorical", "bernoulli"):
        log_pi, entropy = _multi_log_prob_entropy(s.y, z, head)
        policy = -s.adv * log_pi
        value = (s.ret - v) ** 2
        total = policy + s.vf_coef * value - s.ent_coef * entropy
        return {"policy_loss": policy, "value_loss": value, "entropy": entropy, "total_loss": total}
    log_norm = sp.log(sum(sp.exp(zk) for zk in z))
    log_p = [zk - log_norm for zk in z]  # log_softmax
    p = [sp.exp(zk) / sum(sp.exp(zj) for zj in z) for zk in z]
    if case == "soft":
        return {"soft_policy_loss": -sum(pk * (qk - s.alpha * lk) for pk, qk, lk in zip(p, s.q, log_p))}
    policy = -s.adv * sum(yk * lk for yk, lk in zip(s.y, log_p))  # -A log pi(a|s), y one-hot
    value = (s.ret - v) ** 2  # MSE, no 1/2
    entropy = -sum(pk * lk for pk, lk in zip(p, log_p))
    total = policy + s.vf_coef * value - s.ent_coef * entropy  # entropy bonus: minus
    return {"policy_loss": policy, "value_loss": value, "entropy": entropy, "total_loss": total}


def _multi_log_prob_entropy(y: list[sp.Expr], z: list[sp.Expr], head: Head) -> tuple[sp.Expr, sp.Expr]:
    """log pi(a|s) and the entropy of independent sub-actions, written from their definitions
    (not from a2c.agent.distributions), summed over the sub-actions.

    ``("multi_categorical", n_0, n_1, ..)``: z and the multi-hot y split into groups of n_j,
    a softmax per group. ``("bernoulli",)``: p_k = 1 / (1 + exp(-z_k)), y_k in {0, 1}.
    """
    if head[0] == "bernoulli":
        p = [1 / (1 + sp.exp(-zk)) for zk in z]
        log_pi = sum(yk * sp.log(pk) + (1 - yk) * sp.log(1 - pk) for yk, pk in zip(y, p))
        entropy = -sum(pk * sp.log(pk) + (1 - pk) * sp.log(1 - pk) for pk in p)
        return log_pi, entropy
    log_pi, entropy, start = sp.Integer(0), sp.Integer(0), 0
    for n in head[1:]:
        zg, yg = z[start : start + n], y[start : start + n]
        start += n
        log_norm = sp.log(sum(sp.exp(zk) for zk in zg))
        log_p = [zk - log_norm for zk in zg]
        log_pi += sum(yk * lk for yk, lk in zip(yg, log_p))
        entropy += -sum(sp.exp(lk) * lk for lk in log_p)
    return log_pi, entropy


@functools.cache
def head_gradient_fns(
    n_actions: int, case: str, head: Head = ("categorical",)
) -> tuple[HeadSymbols, dict[str, Callable[..., Any]]]:
    """For each term, a numpy function (z.., v, [ls..,] data..) -> [dl/dz_0, .., dl/dz_{A-1}, dl/dv
    (, dl/dls_0, ..)]. ``head``: [`NetSpec.head`][a2c.verify.network.NetSpec.head]."""
    s = HeadSymbols(n_actions)
    ls = s.ls if head[0] == "gaussian" else []
    fns = {}
    for term, expr in per_sample_loss(s, case, s.z, s.v, ls or None, head).items():
        grad = [sp.diff(expr, zk) for zk in s.z] + [sp.diff(expr, s.v)] + [sp.diff(expr, lk) for lk in ls]
        fns[term] = _lambdify([*s.z, s.v, *ls, *s.data], grad)
    return s, fns


@functools.cache
def _head_value_fns(n_actions: int, case: str, head: Head = ("categorical",)) -> dict[str, Callable[..., Any]]:
    """For each term, a numpy function (z.., v, [ls..,] data..) -> the per-sample term."""
    s = HeadSymbols(n_actions)
    ls = s.ls if head[0] == "gaussian" else []
    return {
        term: _lambdify([*s.z, s.v, *ls, *s.data], expr)
        for term, expr in per_sample_loss(s, case, s.z, s.v, ls or None, head).items()
    }


def shift_logits(spec: NetSpec, z: np.ndarray) -> np.ndarray:
    """Softmax logits minus their (per sub-action) maximum: the derivatives and values are
    invariant, and exp() cannot overflow. A Gaussian's mean and Bernoulli logits stay as they are."""
    if spec.policy == "categorical":
        return z - z.max(axis=1, keepdims=True)
    if spec.policy == "multi_categorical":
        out, start = z.copy(), 0
        for n in spec.nvec or ():
            out[:, start : start + n] -= z[:, start : start + n].max(axis=1, keepdims=True)
            start += n
        return out
    return z


def data_values(point: Point, loss: LossSpec, advantage: np.ndarray) -> list[np.ndarray | float]:
    y = point.action_indicators(point.q_values.shape[1])
    return [*y.T, advantage, point.returns, *point.q_values.T, loss.vf_coef, loss.ent_coef, loss.alpha]


def _log_std_values(spec: NetSpec, point: Point) -> list[float]:
    return list(point.weights[LOG_STD_PARAM]) if spec.gaussian else []


def loss_values(spec: NetSpec, point: Point, loss: LossSpec) -> dict[str, float]:
    """The value of every loss term at the point, from the lambdified SymPy expressions
    (the network's forward pass in numpy with the SymPy activations)."""
    W = point.weights
    x = spec.scale(point.obs)

    def through(layers: tuple[DenseSpec, ...]) -> np.ndarray:
        h = x
        for layer in layers:
            h = elementwise(_activation_numpy(layer.activation), h @ W[layer.kernel] + W[layer.bias])
        return h

    h = through(spec.trunk)
    h_v = through(spec.value_layers) if spec.separate else h
    z = elementwise(_activation_numpy(spec.logits.activation), h @ W[spec.logits.kernel] + W[spec.logits.bias])
    v = elementwise(_activation_numpy(spec.value.activation), h_v @ W[spec.value.kernel] + W[spec.value.bias])[:, 0]
    z = shift_logits(spec, z)  # softmax-invariant; the log-sum-exp stays finite
    data = data_values(point, loss, advantage_at(point, v, loss))
    w = batch_weights(point, loss)
    fns = _head_value_fns(spec.n_actions, loss.case, spec.head)
    return {
        term: float(
            np.sum(
                w
                * np.broadcast_to(
                    np.asarray(fns[term](*z.T, v, *_log_std_values(spec, point), *data), dtype=np.float64),
                    (point.batch,),
                )
            )
        )
        for term in loss.terms
    }


def advantage_at(point: Point, values: np.ndarray, loss: LossSpec) -> np.ndarray:
    """R - V at the point (normalised with the masked batch statistics when asked): a constant."""
    adv = point.returns - values
    if loss.case == "a2c" and loss.normalize_advantage:
        w = point.sample_weights()
        mean = float(np.sum(w * adv))
        std = math.sqrt(float(np.sum(w * (adv - mean) ** 2)))
        adv = (adv - mean) / (std + 1e-8)
    return adv


def batch_weights(point: Point, loss: LossSpec) -> np.ndarray:
    # soft_policy_loss takes a plain batch mean; a2c_loss uses masked_mean.
    return point.sample_weights() if loss.case == "a2c" else np.full(point.batch, 1.0 / point.batch)


# ---------------------------------------------------------------------------------------
# chain: SymPy-derived local derivatives composed by backpropagation in numpy
# ---------------------------------------------------------------------------------------


def chain_gradients(
    spec: NetSpec, point: Point, loss: LossSpec, derivatives: Mapping[str, SymFn] | None = None
) -> dict[str, dict[str, np.ndarray]]:
    """Gradients of every term: lambdified SymPy derivatives composed by the chain rule."""
    W = point.weights
    act = {layer.name: _activation_numpy(layer.activation) for layer in spec.dense_layers}
    dact = {layer.name: derivative_numpy(layer.activation, derivatives) for layer in spec.dense_layers}
    # Forward pass with the SymPy activations, keeping each layer's input and pre-activation.
    # A separate value trunk is a second chain from the same input.
    chains = (spec.trunk, spec.value_layers) if spec.separate else (spec.trunk,)
    inputs: dict[str, np.ndarray] = {}
    pres: dict[str, np.ndarray] = {}
    ends = []
    for chain in chains:
        h = spec.scale(point.obs)
        for layer in chain:
            pre = h @ W[layer.kernel] + W[layer.bias]
            inputs[layer.name] = h
            pres[layer.name] = pre
            h = elementwise(act[layer.name], pre)
        ends.append(h)
    h, h_v = ends[0], ends[-1]
    z_pre = h @ W[spec.logits.kernel] + W[spec.logits.bias]
    v_pre = h_v @ W[spec.value.kernel] + W[spec.value.bias]
    z = elementwise(act[spec.logits.name], z_pre)
    v = elementwise(act[spec.value.name], v_pre)[:, 0]
    # The derivatives w.r.t. z are invariant under z -> z - max(z) (softmax is), and the
    # shifted logits keep exp() from overflowing. A Gaussian's mean is used as it is.
    z_shift = shift_logits(spec, z)
    _, fns = head_gradient_fns(spec.n_actions, loss.case, spec.head)
    data = data_values(point, loss, advantage_at(point, v, loss))
    w = batch_weights(point, loss)
    n = spec.n_actions
    out: dict[str, dict[str, np.ndarray]] = {}
    for term in loss.terms:
        g = [
            np.broadcast_to(np.asarray(gk, dtype=np.float64), (point.batch,))
            for gk in fns[term](*z_shift.T, v, *_log_std_values(spec, point), *data)
        ]
        g_z = np.stack(g[:n], axis=1) * w[:, None]
        g_v = (g[n] * w)[:, None]
        grads: dict[str, np.ndarray] = {}
        if spec.gaussian:  # the log-std is a parameter itself: dL/dls_k summed over the batch
            grads[LOG_STD_PARAM] = np.array([np.sum(w * gk) for gk in g[n + 1 :]])
        g_z_pre = g_z * elementwise(dact[spec.logits.name], z_pre)
        g_v_pre = g_v * elementwise(dact[spec.value.name], v_pre)
        for layer, h_in, g_pre in ((spec.logits, h, g_z_pre), (spec.value, h_v, g_v_pre)):
            grads[layer.kernel] = h_in.T @ g_pre
            grads[layer.bias] = g_pre.sum(axis=0)
        g_h_z, g_h_v = g_z_pre @ W[spec.logits.kernel].T, g_v_pre @ W[spec.value.kernel].T
        # shared: both heads' gradients flow into one trunk; separate: each into its own
        for chain, g_h in zip(chains, (g_h_z, g_h_v) if spec.separate else (g_h_z + g_h_v,)):
            for layer in reversed(chain):
                g_pre = g_h * elementwise(dact[layer.name], pres[layer.name])
                grads[layer.kernel] = inputs[layer.name].T @ g_pre
                grads[layer.bias] = g_pre.sum(axis=0)
                g_h = g_pre @ W[layer.kernel].T
        out[term] = {p: grads[p] for p in spec.param_names}
    return out


# ---------------------------------------------------------------------------------------
# expanded: the whole loss as one expression in parameter and input symbols
# ---------------------------------------------------------------------------------------


def _activation_class(name: str, derivative: SymFn) -> type[sp.Function]:
    """An undefined SymPy function whose derivative is ``derivative``.

    Differentiating through it applies the chosen convention (TF's, or an injected
    one) inside the fully expanded expression; lambdify evaluates the application
    itself with the SymPy activation.
    """

    def fdiff(self: sp.Function, argindex: int = 1) -> sp.Expr:
        return derivative(self.args[0])

    # A fresh, uniquely named class per call: SymPy hashes expressions by class name,
    # so an injected derivative must never share a name with the default one.
    return type(
        f"act_{name}_{next(_ACTIVATION_CLASS_NUMBERS)}",
        (sp.Function,),
        {"fdiff": fdiff, "nargs": 1},
    )


_ACTIVATION_CLASS_NUMBERS = itertools.count(1)  # numbers the classes _activation_class makes: 1, 2, ...


def param_symbols(spec: NetSpec) -> dict[str, np.ndarray]:
    """A SymPy symbol for every scalar parameter, e.g. ``trunk_0.kernel[1,2]``."""
    syms = {}
    for name, shape in spec.param_shapes.items():
        base = name.replace("/", ".")
        flat = [sp.Symbol(f"{base}[{','.join(map(str, idx))}]", real=True) for idx in np.ndindex(*shape)]
        syms[name] = np.array(flat, dtype=object).reshape(shape)
    return syms


def expanded_loss(
    spec: NetSpec, loss: LossSpec, derivatives: Mapping[str, SymFn] | None = None
) -> tuple[dict[str, np.ndarray], list[sp.Symbol], HeadSymbols, dict[str, sp.Expr], sp.Expr, dict[str, type]]:
    """Build one sample's loss terms as expressions of parameter and input symbols."""
    params = param_symbols(spec)
    s_in = list(sp.symbols(f"s0:{spec.obs_dim}", real=True))
    classes = {}
    for layer in spec.dense_layers:
        if layer.activation not in classes:
            classes[layer.activation] = _activation_class(
                layer.activation, activation_derivative(layer.activation, derivatives)
            )

    def dense(layer, h):
        pre = h @ params[layer.kernel] + params[layer.bias]
        return np.array([classes[layer.activation](u) for u in pre], dtype=object)

    # The inputs s_i stand for the trunk's input, spec.scale(obs): the scale and the
    # normalisation are constants (no parameter before the trunk), applied to the numbers.
    h = np.array(s_in, dtype=object)
    for layer in spec.trunk:
        h = dense(layer, h)
    h_v = h
    if spec.separate:
        h_v = np.array(s_in, dtype=object)
        for layer in spec.value_layers:
            h_v = dense(layer, h_v)
    z = list(dense(spec.logits, h))
    v = dense(spec.value, h_v)[0]
    hs = HeadSymbols(spec.n_actions)
    log_std = list(params[LOG_STD_PARAM]) if spec.gaussian else None
    return params, s_in, hs, per_sample_loss(hs, loss.case, z, v, log_std, spec.head), v, classes


def expanded_gradients(
    spec: NetSpec, point: Point, loss: LossSpec, derivatives: Mapping[str, SymFn] | None = None
) -> dict[str, dict[str, np.ndarray]]:
    """Gradients from the fully expanded expression, differentiated w.r.t. each parameter symbol."""
    params, s_in, hs, terms, v_expr, classes = expanded_loss(spec, loss, derivatives)

    # The activation applications stay abstract in the expressions (their derivatives,
    # from fdiff, are concrete SymPy); lambdify calls the SymPy activation, lambdified.
    functions = {cls.__name__: _activation_numpy(name) for name, cls in classes.items()}
    flat_syms = [sym for name in spec.param_names for sym in params[name].ravel()]
    flat_vals = [val for name in spec.param_names for val in point.weights[name].ravel()]
    value_fn = _lambdify([*flat_syms, *s_in], v_expr, functions)
    inputs = spec.scale(point.obs).T
    values = np.broadcast_to(np.asarray(value_fn(*flat_vals, *inputs), dtype=np.float64), (point.batch,))
    data = data_values(point, loss, advantage_at(point, values, loss))
    w = batch_weights(point, loss)
    out: dict[str, dict[str, np.ndarray]] = {}
    for term in loss.terms:
        grad_exprs = [sp.diff(terms[term], sym) for sym in flat_syms]
        fn = _lambdify([*flat_syms, *s_in, *hs.data], grad_exprs, functions)
        per_sample = fn(*flat_vals, *inputs, *data)
        flat = np.array(
            [np.sum(w * np.broadcast_to(np.asarray(g, dtype=np.float64), (point.batch,))) for g in per_sample]
        )
        out[term], k = {}, 0
        for name in spec.param_names:
            size = point.weights[name].size
            out[term][name] = flat[k : k + size].reshape(point.weights[name].shape)
            k += size
    return out


def resolve_method(spec: NetSpec, method: Method) -> Literal["expanded", "chain"]:
    if method == "auto":
        return "expanded" if spec.n_params <= EXPANDED_MAX_PARAMS else "chain"
    if method not in ("expanded", "chain"):
        raise ValueError(f"method must be 'auto', 'expanded' or 'chain'; got {method!r}")
    return method


def gradients(
    spec: NetSpec,
    point: Point,
    loss: LossSpec,
    *,
    method: Method = "auto",
    derivatives: Mapping[str, SymFn] | None = None,
) -> tuple[dict[str, dict[str, np.ndarray]], str]:
    """Symbolic gradients of every term, and the name of the method used."""
    used = resolve_method(spec, method)
    fn = expanded_gradients if used == "expanded" else chain_gradients
    return fn(spec, point, loss, derivatives), used


METHOD_DESCRIPTIONS = {
    "expanded": "SymPy: whole per-sample loss expanded in parameter and input symbols, "
    "differentiated w.r.t. each parameter, lambdified (numpy)",
    "chain": "SymPy: activation derivatives and dloss/d(logits, value) derived symbolically and "
    "lambdified, composed through the Dense layers by the chain rule in numpy",
}
