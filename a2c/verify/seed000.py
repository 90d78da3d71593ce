"""The hand-checked gradient the project started from, reproduced exactly and checked four ways.

The project began as a SageMath notebook (the "seed notebook") that derived by hand
the gradient of the entropy-regularised (soft) policy loss of a tiny softmax policy;
notebooks/walkthrough.ipynb section 2 walks through it, and the docs' "Gradient
verification" page (docs/verification.md) places it among the other checks. That policy has inputs s1, s2,
weights w11, w12, w21, w22, biases b1, b2, and the parameterisation

    z1 = s1*w11 + s1*w12 + b1,    z2 = s2*w21 + s2*w22 + b2,    pi = softmax(z),
    J  = -(pi1 (q1 - alpha log pi1) + pi2 (q2 - alpha log pi2))      (alpha = 1 there)

with Q given (no gradient). Its simplified closed forms, with g1 = dJ/dz1 and
g2 = dJ/dz2,

    g1 = (q1 - alpha log pi1 - alpha) pi1 (pi1 - 1) + (q2 - alpha log pi2 - alpha) pi1 pi2
    g2 = (q2 - alpha log pi2 - alpha) pi2 (pi2 - 1) + (q1 - alpha log pi1 - alpha) pi1 pi2
    dJ/dw11 = dJ/dw12 = s1 g1,   dJ/dw21 = dJ/dw22 = s2 g2,   dJ/db1 = g1,   dJ/db2 = g2,

are checked against the tape (``soft_policy_loss`` on the logits z), SymPy and
finite differences, for all six parameters, and proven identical to SymPy's
derivatives by simplification. The seed notebook's check meant for w22 compared
``dJ_dw21`` with w21's form a second time, so w22 was never checked there; here w22
is checked against its own form.

Why dJ/dw11 = dJ/dw12 (the notebook's ``print(dJ_dw11 - dJ_dw12)`` gives 0): z1
depends on w11 and w12 only through ``s1*(w11 + w12)``, so dz1/dw11 = dz1/dw12 = s1 and
the loss cannot tell the two weights apart -- a property of this parameterisation,
in which s2 never reaches z1 and s1 never reaches z2. A standard Dense layer
z = W^T s + b feeds z1 from *both* inputs, ``z1 = s1*W[0,0] + s2*W[1,0] + b1``, so the
two weights into z1 get ``s1*g1`` and ``s2*g1``, which differ whenever s1 != s2
([`seed000_symmetry`][a2c.verify.seed000.seed000_symmetry] shows the numbers).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass

import numpy as np
import sympy as sp

from a2c.verify.numeric import DEFAULT_STEP
from a2c.verify.report import Report, Tolerance

PARAMS = ("w11", "w12", "w21", "w22", "b1", "b2")
TERM = "J"
# Opening sentence of the report: a newcomer meets "seed000" here first.
SUMMARY = (
    "This case re-checks the hand-derived gradient of the entropy-regularised (soft) policy loss "
    "J = -sum_a pi(a|s) (Q(s,a) - alpha log pi(a|s)) for a 2-input, 2-action softmax policy with six "
    "parameters (w11, w12, w21, w22, b1, b2), as derived in the project's original notebook and worked "
    'through in notebooks/walkthrough.ipynb, section 2 ("The seed notebook\'s soft policy loss"); '
    "more in docs/verification.md and in a2c/verify/seed000.py."
)
PAIRS = (
    ("tape", "symbolic"),
    ("tape", "numeric"),
    ("symbolic", "numeric"),
    ("closed_form", "tape"),
    ("closed_form", "symbolic"),
    ("closed_form", "numeric"),
)


@dataclass(frozen=True)
class SeedPoint:
    """Values of the seed's symbols: state, Q-values, weights and biases."""

    s1: float
    s2: float
    q1: float
    q2: float
    w11: float
    w12: float
    w21: float
    w22: float
    b1: float
    b2: float

    def params(self) -> np.ndarray:
        return np.array([getattr(self, p) for p in PARAMS])

    def with_params(self, values: np.ndarray) -> SeedPoint:
        return SeedPoint(**{**asdict(self), **dict(zip(PARAMS, map(float, values)))})


def seed000_point(seed: int = 0) -> SeedPoint:
    """A reproducible point: s, q and the weights standard normal, biases N(0, 0.5^2), s1 != s2."""
    rng = np.random.default_rng(seed)
    s1, s2, q1, q2, w11, w12, w21, w22 = rng.standard_normal(8)
    b1, b2 = 0.5 * rng.standard_normal(2)
    return SeedPoint(*(float(v) for v in (s1, s2, q1, q2, w11, w12, w21, w22, b1, b2)))


# ---------------------------------------------------------------------------------------
# The notebook's expressions
# ---------------------------------------------------------------------------------------


@functools.cache
def seed000_expressions() -> tuple[dict[str, sp.Symbol], sp.Expr, dict[str, sp.Expr], dict[str, sp.Expr]]:
    """(symbols, J, {param: dJ/dparam by SymPy}, {param: the seed's simplified closed form})."""
    names = ("s1", "s2", "q1", "q2", *PARAMS, "alpha")
    sym = {n: sp.Symbol(n, real=True) for n in names}
    s1, s2, q1, q2, w11, w12, w21, w22, b1, b2, alpha = (sym[n] for n in names)
    z = [s1 * w11 + s1 * w12 + b1, s2 * w21 + s2 * w22 + b2]
    pi = [sp.exp(z[i]) / sum(sp.exp(zj) for zj in z) for i in range(2)]
    J = -(pi[0] * (q1 - alpha * sp.log(pi[0])) + pi[1] * (q2 - alpha * sp.log(pi[1])))
    derivs = {p: J.diff(sym[p]) for p in PARAMS}
    g1 = (q1 - alpha * sp.log(pi[0]) - alpha) * pi[0] * (pi[0] - 1) + (q2 - alpha * sp.log(pi[1]) - alpha) * pi[0] * pi[
        1
    ]
    g2 = (q2 - alpha * sp.log(pi[1]) - alpha) * pi[1] * (pi[1] - 1) + (q1 - alpha * sp.log(pi[0]) - alpha) * pi[0] * pi[
        1
    ]
    closed = {"w11": s1 * g1, "w12": s1 * g1, "w21": s2 * g2, "w22": s2 * g2, "b1": g1, "b2": g2}
    return sym, J, derivs, closed


@functools.cache
def prove_closed_forms() -> dict[str, bool]:
    """For each parameter, whether SymPy simplifies dJ/dparam - closed form to 0 (any alpha)."""
    _, _, derivs, closed = seed000_expressions()
    return {p: sp.simplify(derivs[p] - closed[p]) == 0 for p in PARAMS}


def _evaluate(exprs: Mapping[str, sp.Expr], point: SeedPoint, alpha: float) -> dict[str, float]:
    sym = seed000_expressions()[0]
    args = [sym[n] for n in ("s1", "s2", "q1", "q2", *PARAMS, "alpha")]
    fn = sp.lambdify(args, [exprs[p] for p in PARAMS], modules="numpy")
    values = fn(*(getattr(point, n) for n in ("s1", "s2", "q1", "q2", *PARAMS)), alpha)
    return {p: float(v) for p, v in zip(PARAMS, values)}


def symbolic_gradients(point: SeedPoint, alpha: float = 1.0) -> dict[str, float]:
    """SymPy's derivatives of the seed's J, lambdified and evaluated at the point."""
    return _evaluate(seed000_expressions()[2], point, alpha)


def closed_form_gradients(point: SeedPoint, alpha: float = 1.0) -> dict[str, float]:
    """The seed's simplified closed forms evaluated at the point."""
    return _evaluate(seed000_expressions()[3], point, alpha)


def tape_gradients(
    point: SeedPoint, alpha: float = 1.0, loss_fn: Callable[..., object] | None = None
) -> dict[str, float]:
    """tf.GradientTape: the seed's parameterisation in TF ops, ``soft_policy_loss`` on the logits z."""
    import tensorflow as tf

    from a2c.agent.losses import soft_policy_loss

    loss_fn = loss_fn or soft_policy_loss
    v = {p: tf.Variable(getattr(point, p), dtype=tf.float64, name=p) for p in PARAMS}
    s1, s2 = tf.constant(point.s1, tf.float64), tf.constant(point.s2, tf.float64)
    q = tf.constant([[point.q1, point.q2]], tf.float64)
    with tf.GradientTape() as tape:
        z = tf.stack([s1 * v["w11"] + s1 * v["w12"] + v["b1"], s2 * v["w21"] + s2 * v["w22"] + v["b2"]])
        J = loss_fn(z[None, :], q, alpha=alpha)  # a batch of one state: the mean is J itself
    grads = tape.gradient(J, [v[p] for p in PARAMS])
    return {p: float(g.numpy()) for p, g in zip(PARAMS, grads)}


def seed_loss(point: SeedPoint, alpha: float = 1.0) -> float:
    """J at the point in plain numpy (log-softmax form, stable)."""
    z = np.array(
        [point.s1 * point.w11 + point.s1 * point.w12 + point.b1, point.s2 * point.w21 + point.s2 * point.w22 + point.b2]
    )
    log_p = z - z.max() - np.log(np.sum(np.exp(z - z.max())))
    return float(-np.sum(np.exp(log_p) * (np.array([point.q1, point.q2]) - alpha * log_p)))


def numeric_gradients(point: SeedPoint, alpha: float = 1.0, step: float = DEFAULT_STEP) -> dict[str, float]:
    """Central differences of [`seed_loss`][a2c.verify.seed000.seed_loss] (step as in
    [`a2c.verify.numeric`][a2c.verify.numeric])."""
    theta = point.params()
    out = {}
    for j, p in enumerate(PARAMS):
        h = step * max(1.0, abs(theta[j]))
        plus, minus = theta.copy(), theta.copy()
        plus[j] += h
        minus[j] -= h
        out[p] = (seed_loss(point.with_params(plus), alpha) - seed_loss(point.with_params(minus), alpha)) / (
            plus[j] - minus[j]
        )
    return out


def verify_seed000(
    point: SeedPoint | None = None,
    *,
    seed: int = 0,
    alpha: float = 1.0,
    prove: bool = True,
    tolerances: Mapping[str, Tolerance] | None = None,
    tape_loss: Callable[..., object] | None = None,
) -> Report:
    """Check the six gradients of the seed's J by tape, SymPy, finite differences and closed forms.

    ``prove`` also asks SymPy to simplify (derivative - closed form) to 0 for every
    parameter (slow, so cached); a closed form that is not identical adds a failing note.
    """
    point = point or seed000_point(seed)
    timings = {}
    grads: dict[str, dict[str, float]] = {}
    for name, fn in (
        ("tape", lambda: tape_gradients(point, alpha, tape_loss)),
        ("symbolic", lambda: symbolic_gradients(point, alpha)),
        ("numeric", lambda: numeric_gradients(point, alpha)),
        ("closed_form", lambda: closed_form_gradients(point, alpha)),
    ):
        t = time.perf_counter()
        grads[name] = fn()
        timings[name] = time.perf_counter() - t
    notes = [
        "dJ/dw11 = dJ/dw12 and dJ/dw21 = dJ/dw22 by construction: z1 depends on w11, w12 only through "
        "s1*(w11 + w12) (and z2 on w21, w22 through s2*(w21 + w22)); a Dense layer z = W^T s + b has no "
        "such tie (numbers: a2c.verify.seed000.seed000_symmetry(); explanation: the walkthrough notebook, "
        'section 2, "Why dJ/dw11 = dJ/dw12")',
        "w22 is checked against its own closed form s2*g2: the original hand derivation's check meant for "
        "w22 compared dJ/dw21 with w21's closed form a second time, so w22 was never checked there",
    ]
    checks = {}
    if prove:
        t = time.perf_counter()
        checks = {f"SymPy simplifies dJ/d{p} - closed form to 0": ok for p, ok in prove_closed_forms().items()}
        timings["proof"] = time.perf_counter() - t
    return Report.build(
        "seed000",
        f"gradient check, case seed000 (the hand-checked soft policy loss, alpha={alpha:g}), seed {seed}",
        {
            "tape": "tf.GradientTape: z1 = s1*w11 + s1*w12 + b1, z2 = s2*w21 + s2*w22 + b2 in TF ops, "
            "a2c.agent.losses.soft_policy_loss(z, q, alpha)" + (" (replaced by a test loss)" if tape_loss else ""),
            "symbolic": "expanded: J written in SymPy symbols, differentiated w.r.t. each "
            "parameter, lambdified (numpy)",
            "numeric": f"central differences, float64, step {DEFAULT_STEP:.2g}*max(1,|theta|)",
            "closed_form": "the hand-simplified formulas (dJ/dw11 = dJ/dw12 = s1*g1, dJ/dw21 = dJ/dw22 = s2*g2, "
            "dJ/db1 = g1, dJ/db2 = g2 with g = dJ/dz)",
        },
        {m: {TERM: {p: np.asarray(v) for p, v in g.items()}} for m, g in grads.items()},
        PAIRS,
        {**asdict(point), "alpha": alpha, "J": seed_loss(point, alpha)},
        tolerances=tolerances,
        settings={"alpha": alpha, "seed": seed},
        timings=timings,
        notes=notes,
        checks=checks,
        summary=SUMMARY,
    )


@dataclass(frozen=True)
class SymmetryDemo:
    """dJ/dw11 = dJ/dw12 in the seed's parameterisation, but not for a Dense layer."""

    identical_symbolically: bool
    seed_gradients: dict[str, float]
    dense_gradients: dict[str, float]
    dense_numeric: dict[str, float]
    explanation: str

    def __str__(self) -> str:
        lines = [
            self.explanation,
            "",
            f"seed parameterisation: dJ/dw11 = {self.seed_gradients['w11']:.12g}, "
            f"dJ/dw12 = {self.seed_gradients['w12']:.12g} "
            f"(SymPy: dJ/dw11 - dJ/dw12 == 0: {self.identical_symbolically})",
        ]
        lines += [
            f"Dense layer: dJ/d{k} = {v:.12g} (finite differences {self.dense_numeric[k]:.12g})"
            for k, v in self.dense_gradients.items()
        ]
        return "\n".join(lines)


def seed000_symmetry(point: SeedPoint | None = None, *, seed: int = 0, alpha: float = 1.0) -> SymmetryDemo:
    """Show the tie dJ/dw11 = dJ/dw12 and that a Dense layer with the same numbers breaks it.

    The Dense layer is ``keras.layers.Dense(2)`` in float64 with kernel
    ``[[w11, w21], [w12, w22]]`` (kernel[i, j] links input i to output j), i.e. the
    usual ``z1 = s1*w11 + s2*w12 + b1``, ``z2 = s1*w21 + s2*w22 + b2``, differentiated by the
    tape through ``soft_policy_loss`` and cross-checked by finite differences.
    """
    import keras
    import tensorflow as tf

    from a2c.agent.losses import soft_policy_loss

    point = point or seed000_point(seed)
    _, _, derivs, _ = seed000_expressions()
    identical = sp.simplify(derivs["w11"] - derivs["w12"]) == 0
    seed_grads = tape_gradients(point, alpha)

    kernel = np.array([[point.w11, point.w21], [point.w12, point.w22]])
    bias = np.array([point.b1, point.b2])
    s = np.array([[point.s1, point.s2]])
    q = np.array([[point.q1, point.q2]])
    dense = keras.layers.Dense(2, dtype="float64")
    dense.build((None, 2))
    dense.kernel.assign(kernel)
    dense.bias.assign(bias)
    with tf.GradientTape() as tape:
        J = soft_policy_loss(dense(tf.constant(s)), tf.constant(q), alpha=alpha)
    g = tape.gradient(J, dense.kernel).numpy()
    labels = {"w11 (s1 -> z1)": (0, 0), "w12 (s2 -> z1)": (1, 0), "w21 (s1 -> z2)": (0, 1), "w22 (s2 -> z2)": (1, 1)}
    dense_grads = {k: float(g[ij]) for k, ij in labels.items()}

    def dense_loss(K: np.ndarray) -> float:
        z = s @ K + bias
        log_p = z - z.max() - np.log(np.exp(z - z.max()).sum())
        return float(-np.sum(np.exp(log_p) * (q - alpha * log_p)))

    dense_numeric = {}
    for k, ij in labels.items():
        h = DEFAULT_STEP * max(1.0, abs(kernel[ij]))
        plus, minus = kernel.copy(), kernel.copy()
        plus[ij] += h
        minus[ij] -= h
        dense_numeric[k] = (dense_loss(plus) - dense_loss(minus)) / (plus[ij] - minus[ij])
    explanation = (
        "In the seed's parameterisation z1 = s1*w11 + s1*w12 + b1 = s1*(w11 + w12) + b1, so "
        "dz1/dw11 = dz1/dw12 = s1 and dJ/dw11 = dJ/dw12 = s1*dJ/dz1 for every point: a property of the "
        "parameterisation (only the sum w11 + w12 matters, and s2 never reaches z1). A Dense layer "
        "z = W^T s + b feeds z1 from both inputs, z1 = s1*w11 + s2*w12 + b1, so dJ/dw11 = s1*dJ/dz1 and "
        "dJ/dw12 = s2*dJ/dz1 differ whenever s1 != s2."
    )
    return SymmetryDemo(bool(identical), seed_grads, dense_grads, dense_numeric, explanation)
