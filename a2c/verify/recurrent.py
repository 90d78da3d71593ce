"""Gradients of a recurrent actor-critic through time, three ways (float64).

The trainer's update unrolls the cell over the rollout from the state stored at its start,
zeroing the state at every episode start ([`a2c.agent.model.unroll`][a2c.agent.model.unroll]), and differentiates
``a2c_loss`` through all of it. Recurrent implementations go wrong exactly there: a state not
reset at an episode start, a gradient cut between steps, a mask applied after the cell. So:

1. ``tape``: ``tf.GradientTape`` through the project's own model, unroll and ``a2c_loss``;
2. ``symbolic``: SymPy differentiates ONE step (trunk, cell, heads and the step's share of the
   loss) with respect to every parameter and the incoming state; those exact local derivatives
   are chained backwards through time in numpy (BPTT written out: ``dL/ds_t = m_t (dl_t/ds +
   dL/ds_{t+1} ds_{t+1}/ds)``, ``m_t = 0`` at an episode start);
3. ``numeric``: central finite differences of a numpy forward pass built from the same
   lambdified step (no TensorFlow).

Every trainable parameter and the initial state are checked, over T >= 4 steps with an
episode start (and the autoreset step before it) inside the window, on a small model built by
[`build_actor_critic`][a2c.agent.model.build_actor_critic] itself. ``unroll_fn`` replaces the tape's unroll so that
tests can inject the classic bugs and see the check fail.
[`verify_recurrent_default`][a2c.verify.recurrent.verify_recurrent_default] checks a full-size
recurrent model (tape against finite differences of the TensorFlow forward
pass, on sampled coordinates of every tensor).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import keras
import numpy as np
import sympy as sp
import tensorflow as tf

from a2c.agent.losses import a2c_loss
from a2c.agent.model import build_actor_critic, recurrent_cell_of, unroll
from a2c.config.schema import Recurrent

TERMS = ("policy_loss", "value_loss", "entropy", "total_loss")
UnrollFn = Callable[..., dict[str, tf.Tensor]]
#: exact pairs (tape, symbolic) and pairs with finite differences.
EXACT_TOL = (1e-9, 1e-7)  # atol, rtol
NUMERIC_TOL = (1e-7, 1e-5)
STATE = "initial_state"


@dataclass
class RecurrentPoint:
    """A window of T steps for N envs: observations, actions, returns, the valid mask (0 on the
    autoreset step), episode starts and the initial state."""

    obs: np.ndarray  # (T, N, obs_dim)
    actions: np.ndarray  # (T, N) int
    returns: np.ndarray  # (T, N)
    valid: np.ndarray  # (T, N)
    starts: np.ndarray  # (T, N)
    state: np.ndarray  # (N, S)


@dataclass
class RecurrentReport:
    """Max discrepancies per (term, parameter, pair), and whether all are within tolerance."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    values: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if not r["ok"]]

    @property
    def passed(self) -> bool:
        return bool(self.rows) and not self.failures

    def table(self) -> str:
        lines = [f"{'term':<12} {'parameter':<28} {'pair':<18} {'max abs err':>12}  ok"]
        for r in self.rows:
            lines.append(
                f"{r['term']:<12} {r['param']:<28} {r['pair']:<18} {r['err']:>12.2e}  {'yes' if r['ok'] else 'NO'}"
            )
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def small_recurrent_model(kind: str = "lstm", seed: int = 0) -> keras.Model:
    """The checked model: 2 features -> Dense(3, tanh) -> cell of 2 units -> 2 actions and a value."""
    return build_actor_critic(
        2, 2, (3,), "tanh", recurrent=cast(Recurrent, kind), recurrent_size=2, seed=seed, dtype="float64"
    )


def make_recurrent_point(model: keras.Model, steps: int = 5, envs: int = 2, seed: int = 0) -> RecurrentPoint:
    """A window with env 0 ending an episode at step 1 (step 2 is its autoreset step, invalid, and
    step 3 a new episode's start) and env 1 starting one at step 0 (its initial state is reset)."""
    if steps < 4:
        raise ValueError("the recurrent check needs T >= 4 steps")
    rng = np.random.default_rng(seed)
    obs_dim = int(model.inputs[0].shape[-1])
    n_actions = int(model.get_layer("policy_logits").units)
    size = int(model.inputs[1].shape[-1])
    valid = np.ones((steps, envs))
    starts = np.zeros((steps, envs))
    valid[2, 0], starts[3, 0] = 0.0, 1.0
    starts[0, 1 % envs] = 1.0
    return RecurrentPoint(
        obs=rng.normal(size=(steps, envs, obs_dim)),
        actions=rng.integers(0, n_actions, size=(steps, envs)),
        returns=rng.normal(size=(steps, envs)),
        valid=valid,
        starts=starts,
        state=rng.normal(scale=0.5, size=(envs, size)),
    )


# ----------------------------------------------------------------------------- 1. tape
def tape_terms(
    model: keras.Model,
    point: RecurrentPoint,
    unroll_fn: UnrollFn = unroll,
    vf_coef: float = 0.5,
    ent_coef: float = 0.01,
) -> tuple[dict[str, float], dict[str, dict[str, np.ndarray]]]:
    """Loss values and gradients (per term, per parameter and the initial state) by the tape."""
    from a2c.agent.distributions import distribution_of

    state = tf.Variable(point.state, dtype=tf.float64)
    variables = [*model.trainable_variables, state]
    values, grads = {}, {}
    for term in TERMS:
        with tf.GradientTape() as tape:
            seq = unroll_fn(model, tf.constant(point.obs), state, tf.constant(point.starts))
            out = {k: tf.reshape(v, [-1, *v.shape[2:]]) for k, v in seq.items() if k != "state"}
            dist = distribution_of(out)
            _, parts = a2c_loss(
                dist.params(out),
                out["value"],
                tf.constant(point.actions.reshape(-1), tf.int32),
                tf.constant(point.returns.reshape(-1)),
                vf_coef=vf_coef,
                ent_coef=ent_coef,
                mask=tf.constant(point.valid.reshape(-1)),
                distribution=dist,
            )
            loss = parts[term]
        g = tape.gradient(loss, variables)
        values[term] = float(loss)
        grads[term] = {
            name: (np.zeros(v.shape) if gi is None else np.asarray(gi))
            for name, v, gi in zip(param_names(model) + [STATE], variables, g)
        }
    return values, grads


def param_names(model: keras.Model) -> list[str]:
    return [v.path for v in model.trainable_variables]


# ----------------------------------------------------------------------------- 2. symbolic
class _StepFunctions:
    """One step of the checked model in SymPy: forward outputs and exact local derivatives of each
    loss term's per-step share, lambdified."""

    def __init__(self, model: keras.Model) -> None:
        cell = recurrent_cell_of(model)
        assert cell is not None
        self.kind, u = cell.kind, cell.units
        self.size = cell.state_size
        self.obs_dim = int(model.inputs[0].shape[-1])
        self.n_actions = int(model.get_layer("policy_logits").units)
        self.shapes = {v.path: tuple(v.shape) for v in model.trainable_variables}
        self.names = list(self.shapes)
        # Symbol names that are Python identifiers: lambdify would otherwise substitute a dummy
        # for each one in every expression first (most of this class's build time).
        syms = {
            n: sp.Matrix(
                *(s if len(s) == 2 else (1, s[0])),
                lambda i, j, n=n: sp.Symbol(f"{n.replace('/', '__')}_{i}_{j}"),
            )
            for n, s in self.shapes.items()
        }
        self.param_symbols = [x for n in self.names for x in syms[n]]
        x = sp.Matrix(1, self.obs_dim, lambda i, j: sp.Symbol(f"x{j}"))
        s = sp.Matrix(1, self.size, lambda i, j: sp.Symbol(f"s{j}"))
        self.x_syms, self.s_syms = list(x), list(s)

        def get(layer: str, var: str) -> sp.Matrix:
            return syms[f"{layer}/{var}"]

        sig = lambda m: m.applyfunc(lambda e: 1 / (1 + sp.exp(-e)))  # noqa: E731
        tanh = lambda m: m.applyfunc(sp.tanh)  # noqa: E731
        h = x
        i = 0
        while f"trunk_{i}/kernel" in syms:
            h = tanh(h * get(f"trunk_{i}", "kernel") + get(f"trunk_{i}", "bias"))
            i += 1
        k, r, b = get("recurrent", "kernel"), get("recurrent", "recurrent_kernel"), get("recurrent", "bias")
        if self.kind == "lstm":
            hp, cp = s[:, :u], s[:, u:]
            z = h * k + hp * r + b
            ig, fg, gg, og = (z[:, j * u : (j + 1) * u] for j in range(4))
            c = sig(fg).multiply_elementwise(cp) + sig(ig).multiply_elementwise(tanh(gg))
            hn = sig(og).multiply_elementwise(tanh(c))
            s_new = hn.row_join(c)
        else:
            hp = s
            xz = h * k + b
            zg = sig(xz[:, :u] + hp * r[:, :u])
            rg = sig(xz[:, u : 2 * u] + hp * r[:, u : 2 * u])
            ng = tanh(xz[:, 2 * u :] + rg.multiply_elementwise(hp) * r[:, 2 * u :])
            hn = (sp.ones(1, u) - zg).multiply_elementwise(ng) + zg.multiply_elementwise(hp)
            s_new = hn
        logits = hn * get("policy_logits", "kernel") + get("policy_logits", "bias")
        value = (hn * get("value", "kernel") + get("value", "bias"))[0, 0]
        # The step's share of each term as a function of the heads' outputs (logits, value):
        # w = valid / count, adv frozen (stop-gradient), the action one-hot.
        z_syms = sp.symbols(f"z0:{self.n_actions}")
        v_sym = sp.Symbol("v")
        w, adv, ret, vf, ent = sp.symbols("w adv ret vf ent")
        onehot = sp.symbols(f"a0:{self.n_actions}")
        lse = sp.log(sum(sp.exp(zj) for zj in z_syms))
        logp = [zj - lse for zj in z_syms]
        policy = -w * adv * sum(o * lp for o, lp in zip(onehot, logp))
        value_term = w * (ret - v_sym) ** 2
        entropy = -w * sum(sp.exp(lp) * lp for lp in logp)
        shares = {
            "policy_loss": policy,
            "value_loss": value_term,
            "entropy": entropy,
            "total_loss": policy + vf * value_term - ent * entropy,
        }
        head_args = [*z_syms, v_sym, w, adv, ret, vf, ent, *onehot]
        self.share = {t: sp.lambdify(head_args, e, "numpy") for t, e in shares.items()}
        self.head_grad = {
            t: sp.lambdify(head_args, [sp.diff(e, q) for q in (*z_syms, v_sym)], "numpy") for t, e in shares.items()
        }
        # The step's outputs (next state, logits, value) and their exact Jacobian with respect
        # to the incoming state and every parameter.
        outputs = [*s_new, *logits, value]
        step_args = [*self.x_syms, *self.s_syms, *self.param_symbols]
        wrt = [*self.s_syms, *self.param_symbols]
        self.forward = sp.lambdify(step_args, outputs, "numpy", cse=True)
        self.jac = sp.lambdify(step_args, [[sp.diff(e, q) for q in wrt] for e in outputs], "numpy", cse=True)

    def flat(self, weights: dict[str, np.ndarray]) -> list[float]:
        return [float(v) for n in self.names for v in np.asarray(weights[n]).reshape(-1)]

    def run(
        self, weights: dict[str, np.ndarray], point: RecurrentPoint, state0: np.ndarray
    ) -> tuple[list, np.ndarray, np.ndarray]:
        """Forward over the window: per (t, n) the masked input state, logits and value."""
        theta = self.flat(weights)
        T, N = point.actions.shape
        ins, logits, values = [[None] * N for _ in range(T)], np.zeros((T, N, self.n_actions)), np.zeros((T, N))
        for n in range(N):
            s = np.asarray(state0[n], float)
            for t in range(T):
                s = s * (1.0 - point.starts[t, n])
                ins[t][n] = s
                out = np.asarray(self.forward(*point.obs[t, n], *s, *theta), float)
                logits[t, n], values[t, n] = out[self.size : -1], out[-1]
                s = out[: self.size]
        return ins, logits, values


def _data(
    point: RecurrentPoint, values: np.ndarray, t: int, n: int, vf: float, ent: float, n_actions: int
) -> list[float]:
    w = point.valid[t, n] / max(point.valid.sum(), 1.0)
    adv = point.returns[t, n] - values[t, n]
    onehot = [1.0 if point.actions[t, n] == j else 0.0 for j in range(n_actions)]
    return [w, adv, point.returns[t, n], vf, ent, *onehot]


def symbolic_terms(
    model: keras.Model,
    point: RecurrentPoint,
    vf_coef: float = 0.5,
    ent_coef: float = 0.01,
    steps: _StepFunctions | None = None,
) -> tuple[dict[str, float], dict[str, dict[str, np.ndarray]]]:
    """Loss values and gradients from SymPy's exact one-step derivatives, chained back through time."""
    fn = steps or _StepFunctions(model)
    weights = {v.path: np.asarray(v.numpy()) for v in model.trainable_variables}
    theta = fn.flat(weights)
    ins, logits, values = fn.run(weights, point, point.state)
    T, N = point.actions.shape
    S = fn.size
    jacobians = [[np.asarray(fn.jac(*point.obs[t, n], *ins[t][n], *theta), float) for n in range(N)] for t in range(T)]
    out_values: dict[str, float] = {}
    out_grads: dict[str, dict[str, np.ndarray]] = {}
    for term in TERMS:
        total, g_theta, g_state0 = 0.0, np.zeros(len(theta)), np.zeros((N, S))
        for n in range(N):
            g_next = np.zeros(S)  # dL/d(state leaving step t)
            for t in reversed(range(T)):
                head = [*logits[t, n], values[t, n], *_data(point, values, t, n, vf_coef, ent_coef, fn.n_actions)]
                total += float(fn.share[term](*head))
                jac = jacobians[t][n]  # (S + A + 1, S + P): d(next state, logits, value)/d(state, params)
                g = np.concatenate([g_next, np.asarray(fn.head_grad[term](*head), float)]) @ jac
                g_theta += g[S:]
                g_next = g[:S] * (1.0 - point.starts[t, n])  # through the reset mask to the previous state
            g_state0[n] = g_next
        out_values[term] = total
        out_grads[term] = _unflatten(fn, g_theta) | {STATE: g_state0}
    return out_values, out_grads


def _unflatten(fn: _StepFunctions, flat: np.ndarray) -> dict[str, np.ndarray]:
    out, i = {}, 0
    for name in fn.names:
        size = int(np.prod(fn.shapes[name]))
        out[name] = flat[i : i + size].reshape(fn.shapes[name])
        i += size
    return out


# ----------------------------------------------------------------------------- 3. numeric
def numeric_terms(
    model: keras.Model,
    point: RecurrentPoint,
    vf_coef: float = 0.5,
    ent_coef: float = 0.01,
    step: float = 1e-6,
    steps: _StepFunctions | None = None,
) -> tuple[dict[str, float], dict[str, dict[str, np.ndarray]]]:
    """Central differences of the numpy forward pass (the lambdified step, no TensorFlow); the
    advantage is frozen at the unperturbed point, as stop-gradient freezes it."""
    fn = steps or _StepFunctions(model)
    weights = {v.path: np.asarray(v.numpy(), float) for v in model.trainable_variables}
    _, _, frozen = fn.run(weights, point, point.state)

    def losses(w: dict[str, np.ndarray], state0: np.ndarray) -> dict[str, float]:
        _, logits, values = fn.run(w, point, state0)
        T, N = point.actions.shape
        m = point.valid / max(point.valid.sum(), 1.0)
        z = logits - logits.max(-1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
        chosen = np.take_along_axis(logp, point.actions[..., None], -1)[..., 0]
        pol = -float(np.sum(m * (point.returns - frozen) * chosen))
        val = float(np.sum(m * (point.returns - values) ** 2))
        ent = float(np.sum(m * -(np.exp(logp) * logp).sum(-1)))
        return {
            "policy_loss": pol,
            "value_loss": val,
            "entropy": ent,
            "total_loss": pol + vf_coef * val - ent_coef * ent,
        }

    base = losses(weights, point.state)
    grads: dict[str, dict[str, np.ndarray]] = {t: {} for t in TERMS}
    targets = {**weights, STATE: np.asarray(point.state, float)}
    for name, arr in targets.items():
        g = {t: np.zeros(arr.shape) for t in TERMS}
        for idx in np.ndindex(arr.shape):
            vals = []
            for sign in (1, -1):
                moved = arr.copy()
                moved[idx] += sign * step
                w = dict(weights) if name == STATE else {**weights, name: moved}
                vals.append(losses(w, moved if name == STATE else point.state))
            for t in TERMS:
                g[t][idx] = (vals[0][t] - vals[1][t]) / (2 * step)
        for t in TERMS:
            grads[t][name] = g[t]
    return base, grads


# ----------------------------------------------------------------------------- the check
def verify_recurrent(
    kind: str = "lstm",
    *,
    steps: int = 5,
    envs: int = 2,
    seed: int = 0,
    unroll_fn: UnrollFn = unroll,
    model: keras.Model | None = None,
) -> RecurrentReport:
    """Tape vs SymPy (chained through time) vs finite differences, every parameter and the
    initial state, each loss term and its value, on a small float64 recurrent model."""
    if model is None:
        model, point, reference = _default_reference(kind, steps, envs, seed)
    else:
        point = make_recurrent_point(model, steps, envs, seed)
        reference = _reference(model, point)
    results = {"tape": tape_terms(model, point, unroll_fn), **reference}
    report = RecurrentReport(values={m: r[0] for m, r in results.items()})
    report.notes.append(
        f"{kind}, T={steps} steps x {envs} envs; env 0: autoreset step at t=2, episode start at t=3; "
        "env 1: episode start at t=0"
    )
    for term in TERMS:
        for a, b in (("tape", "symbolic"), ("tape", "numeric"), ("symbolic", "numeric")):
            atol, rtol = EXACT_TOL if "numeric" not in (a, b) else NUMERIC_TOL
            va, vb = results[a][0][term], results[b][0][term]
            report.rows.append(
                dict(
                    term=term,
                    param="(value)",
                    pair=f"{a}/{b}",
                    err=abs(va - vb),
                    ok=abs(va - vb) <= atol + rtol * abs(vb),
                )
            )
            for name in results[a][1][term]:
                ga, gb = results[a][1][term][name], results[b][1][term][name]
                err = float(np.max(np.abs(ga - gb)))
                ok = bool(np.all(np.abs(ga - gb) <= atol + rtol * np.abs(gb)))
                report.rows.append(dict(term=term, param=name, pair=f"{a}/{b}", err=err, ok=ok))
    return report


def _reference(model: keras.Model, point: RecurrentPoint) -> dict[str, Any]:
    fn = _StepFunctions(model)
    return {"symbolic": symbolic_terms(model, point, steps=fn), "numeric": numeric_terms(model, point, steps=fn)}


@functools.lru_cache(maxsize=4)
def _default_reference(
    kind: str, steps: int, envs: int, seed: int
) -> tuple[keras.Model, RecurrentPoint, dict[str, Any]]:
    """The small model, its point and the two reference methods' results: they do not depend on the
    tape's unroll, so checks of injected bugs (which change only the tape) reuse them."""
    model = small_recurrent_model(kind, seed)
    point = make_recurrent_point(model, steps, envs, seed)
    return model, point, _reference(model, point)


def verify_recurrent_default(
    kind: str = "lstm",
    *,
    env_id: str = "CartPoleNoVel-v1",
    steps: int = 8,
    envs: int = 2,
    coords: int = 6,
    seed: int = 0,
    step: float = 1e-6,
) -> RecurrentReport:
    """The default recurrent model of ``env_id``'s preset (float64): the tape's total-loss gradient
    against central differences of the TensorFlow forward pass, on ``coords`` random coordinates of
    every parameter tensor and of the initial state, through an unroll with an episode start."""
    from a2c.config.resolve import make_config
    from a2c.envs.make import env_spaces

    cfg = make_config({"env_id": env_id, "recurrent": kind})
    obs_space, action_space = env_spaces(env_id)
    from a2c.agent.model import model_for

    model = model_for(cfg, obs_space, action_space, dtype="float64")
    point = make_recurrent_point(model, steps, envs, seed)
    _, grads = tape_terms(model, point)
    g = grads["total_loss"]
    rng = np.random.default_rng(seed)
    state = tf.Variable(point.state, dtype=tf.float64)

    seq = unroll(model, tf.constant(point.obs), state, tf.constant(point.starts))
    frozen = seq["value"].numpy().reshape(-1)

    def loss() -> float:
        return tape_terms_value(model, point, state, frozen)

    report = RecurrentReport(notes=[f"{env_id} preset model ({kind}), T={steps}, {coords} coordinates per tensor"])
    targets = [(v.path, v) for v in model.trainable_variables] + [(STATE, state)]
    for name, var in targets:
        worst, ok = 0.0, True
        base = var.numpy().copy()
        for _ in range(coords):
            idx = tuple(int(rng.integers(0, d)) for d in base.shape)
            vals = []
            for sign in (1, -1):
                moved = base.copy()
                moved[idx] += sign * step
                var.assign(moved)
                vals.append(loss())
            var.assign(base)
            num = (vals[0] - vals[1]) / (2 * step)
            err = abs(num - g[name][idx])
            worst = max(worst, err)
            ok = ok and err <= NUMERIC_TOL[0] + NUMERIC_TOL[1] * abs(num)
        report.rows.append(dict(term="total_loss", param=name, pair="tape/numeric", err=worst, ok=ok))
    return report


def tape_terms_value(model: keras.Model, point: RecurrentPoint, state: tf.Variable, frozen: np.ndarray) -> float:
    """The total loss of the window by the TensorFlow forward pass at the model's current weights,
    the advantage frozen at ``frozen`` values (T * N,) as the update's stop-gradient freezes it."""
    from a2c.agent.distributions import distribution_of
    from a2c.agent.losses import masked_mean

    seq = unroll(model, tf.constant(point.obs), state, tf.constant(point.starts))
    out = {k: tf.reshape(v, [-1, *v.shape[2:]]) for k, v in seq.items() if k != "state"}
    dist = distribution_of(out)
    params = dist.params(out)
    mask = tf.constant(point.valid.reshape(-1))
    returns = tf.constant(point.returns.reshape(-1))
    adv = returns - tf.constant(frozen)
    policy = -masked_mean(adv * dist.log_prob(params, tf.constant(point.actions.reshape(-1), tf.int32)), mask)
    value = masked_mean(tf.square(returns - out["value"]), mask)
    return float(policy + 0.5 * value - 0.01 * masked_mean(dist.entropy(params), mask))
