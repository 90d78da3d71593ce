"""Check the gradients of the trainer's losses on an actor-critic model, three ways.

>>> from a2c.verify import verify_model
>>> report = verify_model()            # the default CartPole model, A2C losses
>>> report.passed, report.failures
>>> print(report.table()); report.plot("grad_check.png")
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import keras
import numpy as np

from a2c.common.errors import ConfigError
from a2c.verify import numeric, symbolic, tape
from a2c.verify.network import default_model, describe, to_float64, weights_of
from a2c.verify.point import Case, LossSpec, Point, make_point
from a2c.verify.report import EXACT_TOLERANCE, NUMERIC_TOLERANCE, Report, Tolerance, tolerance_for
from a2c.verify.symbolic import Method, SymFn
from a2c.verify.tape import A2CLossFn, SoftLossFn

#: How far above the estimated round-off of a finite difference its tolerance sits.
ROUNDOFF_MARGIN = 100

PAIRS = (("tape", "symbolic"), ("tape", "numeric"), ("symbolic", "numeric"))
#: The loss values of the three methods are all exact evaluations (float64 round-off apart).
VALUE_TOLERANCE = EXACT_TOLERANCE


def verify_model(
    model: keras.Model | None = None,
    case: Case = "a2c",
    *,
    batch: int = 32,
    seed: int = 0,
    point: Point | None = None,
    vf_coef: float = 0.5,
    ent_coef: float = 0.01,
    normalize_advantage: bool = False,
    alpha: float = 1.0,
    method: Method = "auto",
    avoid_kinks: bool = True,
    step: float = numeric.DEFAULT_STEP,
    tolerances: Mapping[str, Tolerance] | None = None,
    tape_loss: A2CLossFn | SoftLossFn | None = None,
    derivatives: Mapping[str, SymFn] | None = None,
) -> Report:
    """Gradients of every loss term w.r.t. every parameter by tape, SymPy and finite differences.

    ``model``: any model built by [`a2c.agent.model.build_actor_critic`][a2c.agent.model.build_actor_critic] (float32 or
    64); default: the trainer's default CartPole model initialised with ``seed``. It is
    rebuilt in float64 with the same weights; the original is not modified.
    ``case``: ``"a2c"`` checks ``a2c_loss``'s policy, value, entropy and total terms with
    ``vf_coef``/``ent_coef``/``normalize_advantage``; ``"soft"`` the soft policy loss
    with temperature ``alpha`` and given Q-values.
    ``point``: a ready [`Point`][a2c.verify.point.Point]; otherwise one is drawn with ``batch`` and ``seed``
    (off ReLU kinks unless ``avoid_kinks=False``, see [`make_point`][a2c.verify.point.make_point]).
    ``method``: the symbolic method, ``"expanded"``, ``"chain"`` or ``"auto"`` (by size).
    ``tape_loss`` / ``derivatives``: replace the tape's loss function or the symbolic
    activation derivatives (by activation name), so that tests can inject bugs and
    see the check fail.
    """
    model = model if model is not None else default_model(seed)
    spec = describe(model)
    if case == "soft" and spec.policy != "categorical":
        head = {"gaussian": "Gaussian", "multi_categorical": "MultiDiscrete", "bernoulli": "MultiBinary"}[spec.policy]
        raise ConfigError(
            f"--case soft is the soft policy loss of a categorical policy; this model has a {head} head "
            "(use --case a2c)"
        )
    loss = LossSpec(case, vf_coef, ent_coef, normalize_advantage, alpha)
    if point is None:
        point = make_point(spec, weights_of(model, spec), batch=batch, seed=seed, avoid_kinks=avoid_kinks)
    timings: dict[str, float] = {}
    notes = list(point.notes)
    if any(layer.activation == "gelu" for layer in spec.dense_layers) and "exact" not in (tolerances or {}):
        # tf.nn.gelu computes 0.5*x*erfc(-x/sqrt(2)); TF's float64 erfc is only good to ~1e-9
        # relative, so the tape cannot agree with exact erf to 1e-8.
        tolerances = {**(tolerances or {}), "exact": NUMERIC_TOLERANCE}
        notes.append(
            "gelu: TensorFlow's float64 erfc is accurate to ~1e-9 only, so pairs of exact "
            "methods use the finite-difference tolerance"
        )

    base = tolerance_for(("tape", "numeric"), tolerances)
    for term, value in numeric.loss_at_point(spec, point, loss).items():
        atol = ROUNDOFF_MARGIN * numeric.roundoff_error(value, step)
        if atol > base.atol and f"numeric:{term}" not in (tolerances or {}):
            tolerances = {**(tolerances or {}), f"numeric:{term}": Tolerance(atol=atol, rtol=base.rtol)}
            notes.append(
                f"{term} = {value:.4g} at this point: a central difference of it carries round-off "
                f"~eps*|L|/h = {atol / ROUNDOFF_MARGIN:.1e}, so its pairs with the finite differences "
                f"use atol {atol:.1e} ({ROUNDOFF_MARGIN}x that)"
            )

    t0 = time.perf_counter()
    model64 = to_float64(spec, point.weights)
    grads_tape = tape.gradients(model64, spec, point, loss, loss_fn=tape_loss)
    t1 = time.perf_counter()
    grads_sym, used = symbolic.gradients(spec, point, loss, method=method, derivatives=derivatives)
    t2 = time.perf_counter()
    grads_num = numeric.gradients(spec, point, loss, step=step)
    t3 = time.perf_counter()
    timings.update(tape=t1 - t0, symbolic=t2 - t1, numeric=t3 - t2)

    # The loss VALUES too: a constant (log(2 pi)/2 in a Gaussian's log-density or
    # entropy) has no gradient, so only the values show it missing.
    values = {
        "tape": tape.loss_values(model64, spec, point, loss, loss_fn=tape_loss),
        "symbolic": symbolic.loss_values(spec, point, loss),
        "numeric": numeric.loss_at_point(spec, point, loss),
    }
    checks = {}
    for term in loss.terms:
        got = [values[m][term] for m in ("tape", "symbolic", "numeric")]
        agree = max(got) - min(got) <= VALUE_TOLERANCE.atol + VALUE_TOLERANCE.rtol * max(abs(x) for x in got)
        checks[f"{term} value, tape {got[0]:.10g} / symbolic {got[1]:.10g} / numeric {got[2]:.10g}"] = agree

    methods = {
        "tape": "tf.GradientTape through a2c.agent.model.build_actor_critic(dtype='float64') and "
        + ("a2c.agent.losses.a2c_loss" if case == "a2c" else "a2c.agent.losses.soft_policy_loss")
        + (" (replaced by a test loss)" if tape_loss is not None else ""),
        "symbolic": f"{used}: {symbolic.METHOD_DESCRIPTIONS[used]}"
        + (f" (derivatives overridden for {', '.join(derivatives)})" if derivatives else ""),
        "numeric": f"central differences, float64, step {step:.2g}*max(1,|theta|)"
        + (", advantage frozen at the point (the stop-gradient)" if case == "a2c" else ""),
    }
    if case == "soft":
        notes.append("the value head does not enter the soft policy loss: its gradients are 0 by all methods")
    if case == "a2c":
        notes.append("policy_loss has zero gradient w.r.t. the value head: the advantage is stop-gradiented")
    if spec.gaussian:
        notes.append(
            f"Gaussian policy: log-probabilities summed over the {spec.n_actions} action dimension(s); "
            "actions at the point are standard normal draws, unclipped as the loss sees them"
        )
    if spec.policy == "multi_categorical":
        notes.append(
            f"MultiDiscrete policy: a softmax per sub-action over {'+'.join(map(str, spec.nvec or ()))} logits; "
            "log-probabilities and entropies summed over the sub-actions"
        )
    if spec.policy == "bernoulli":
        notes.append(
            f"MultiBinary policy: a sigmoid per logit ({spec.n_actions} sub-actions); "
            "log-probabilities and entropies summed over the sub-actions"
        )
    title = (
        f"gradient check, case {case}: {spec.summary()}, {spec.n_params:,} parameters, batch {point.batch}, seed {seed}"
    )
    return Report.build(
        case,
        title,
        methods,
        {"tape": grads_tape, "symbolic": grads_sym, "numeric": grads_num},
        PAIRS,
        {**point.to_dict(), "loss": loss.to_dict()},
        tolerances=tolerances,
        settings={
            "symbolic_method": used,
            "numeric_step": step,
            "n_params": spec.n_params,
            "architecture": spec.summary(),
            "batch": point.batch,
            "seed": seed,
            **loss.to_dict(),
        },
        timings=timings,
        notes=notes,
        checks=checks,
    )


def kink_point(model: keras.Model, *, batch: int = 8, seed: int = 0, on_kink: int = 2) -> Point:
    """A point whose first ``on_kink`` observations are all zero: exactly on ReLU kinks.

    With zero biases (a fresh model) every first-layer pre-activation of those
    samples is exactly 0, and so is every later one, so the gradient depends on the
    convention chosen for relu'(0). Used to show that the convention matters.
    """
    spec = describe(model)
    weights = weights_of(model, spec)
    rng = np.random.default_rng(seed)
    obs = rng.standard_normal((batch, spec.obs_dim))
    obs[:on_kink] = 0.0
    return make_point(spec, weights, obs=obs, seed=seed, avoid_kinks=False)
