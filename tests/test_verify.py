"""Gradient verification (issue 3): three methods agree, and disagree when they should.

Each failure-injection test breaks one method on purpose (the tape's loss, or the
symbolic ReLU derivative) and asserts that the report says FAIL and names the
parameter that the bug reaches.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import sympy as sp  # noqa: E402
import tensorflow as tf  # noqa: E402

from a2c.agent.losses import a2c_loss, masked_mean  # noqa: E402
from a2c.agent.model import build_actor_critic  # noqa: E402
from a2c.cli.commands import run_verify  # noqa: E402
from a2c.cli.parser import add_verify_arguments  # noqa: E402
from a2c.common.errors import ConfigError, ModelFileError  # noqa: E402
from a2c.verify import (  # noqa: E402
    kink_point,
    seed000_symmetry,
    verify_model,
    verify_seed000,
)
from a2c.verify import seed000 as seed_mod  # noqa: E402
from a2c.verify import tape as tape_mod  # noqa: E402
from a2c.verify.report import Report  # noqa: E402

TAPE_SYMBOLIC = ("tape", "symbolic")


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_verify_arguments(parser)
    return parser.parse_args(list(argv))


def _failed(report, pair=None) -> set[tuple[str, str]]:
    """(term, param) of the failing rows, optionally of one pair only."""
    return {(r.term, r.param) for r in report.failures if pair is None or r.pair == pair}


# --- broken losses, injected into the tape side ------------------------------------------


def loss_without_stop_gradient(
    logits, values, actions, returns, *, vf_coef, ent_coef, normalize_advantage=False, mask=None
):
    """a2c_loss with the classic bug: the advantage keeps its gradient into the critic."""
    advantages = returns - values  # no tf.stop_gradient
    log_probs = tf.gather(tf.nn.log_softmax(logits), actions, axis=-1, batch_dims=1)
    policy_loss = -masked_mean(advantages * log_probs, mask)
    value_loss = masked_mean(tf.square(returns - values), mask)
    log_p = tf.nn.log_softmax(logits)
    entropy = masked_mean(-tf.reduce_sum(tf.exp(log_p) * log_p, axis=-1), mask)
    total = policy_loss + vf_coef * value_loss - ent_coef * entropy
    return total, {"policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy, "total_loss": total}


def loss_with_entropy_sign_flipped(logits, values, actions, returns, **kwargs):
    """a2c_loss whose total adds the entropy instead of subtracting it."""
    _, parts = a2c_loss(logits, values, actions, returns, **kwargs)
    total = parts["policy_loss"] + kwargs["vf_coef"] * parts["value_loss"] + kwargs["ent_coef"] * parts["entropy"]
    return total, {**parts, "total_loss": total}


def loss_with_entropy_negated(logits, values, actions, returns, **kwargs):
    """a2c_loss whose entropy is computed as +sum p log p (and enters the total that way)."""
    _, parts = a2c_loss(logits, values, actions, returns, **kwargs)
    entropy = -parts["entropy"]
    total = parts["policy_loss"] + kwargs["vf_coef"] * parts["value_loss"] - kwargs["ent_coef"] * entropy
    return total, {**parts, "entropy": entropy, "total_loss": total}


# --- the seed notebook's case ------------------------------------------------------------


def test_seed000_three_ways_and_closed_forms():
    report = verify_seed000(seed=0)
    assert report.passed, report.table()
    params = {r.param for r in report.rows}
    assert params == {"w11", "w12", "w21", "w22", "b1", "b2"}
    for p in params:
        for pair in (
            ("tape", "symbolic"),
            ("tape", "numeric"),
            ("symbolic", "numeric"),
            ("closed_form", "tape"),
            ("closed_form", "symbolic"),
            ("closed_form", "numeric"),
        ):
            assert report.row("J", p, pair).passed
    # SymPy proves every closed form, w22 against its own (not w21's) expression.
    assert len(report.checks) == 6 and all(report.checks.values())
    _, _, derivs, closed = seed_mod.seed000_expressions()
    assert closed["w22"].has(sp.Symbol("s2", real=True))
    assert sp.simplify(derivs["w22"] - closed["w22"]) == 0
    # Another point, and alpha != 1, still agree.
    assert verify_seed000(seed=3, alpha=0.3, prove=False).passed


def test_seed000_closed_form_is_the_notebooks_dJ_dw11():
    pt = seed_mod.seed000_point(1)
    z = np.array([pt.s1 * (pt.w11 + pt.w12) + pt.b1, pt.s2 * (pt.w21 + pt.w22) + pt.b2])
    pi = np.exp(z) / np.exp(z).sum()
    # dJ/dw11 = s1*((q1 - log pi1 - 1) pi1 (pi1 - 1) + (q2 - log pi2 - 1) pi1 pi2), as in the notebook
    hand = pt.s1 * ((pt.q1 - np.log(pi[0]) - 1) * pi[0] * (pi[0] - 1) + (pt.q2 - np.log(pi[1]) - 1) * pi[0] * pi[1])
    assert seed_mod.tape_gradients(pt)["w11"] == pytest.approx(hand, rel=1e-12)


def test_seed000_symmetry_and_dense_counterexample():
    demo = seed000_symmetry(seed=0)
    assert demo.identical_symbolically
    assert demo.seed_gradients["w11"] == demo.seed_gradients["w12"]
    assert demo.seed_gradients["w21"] == demo.seed_gradients["w22"]
    # A Dense layer: the two weights feeding z1 get s1*g1 and s2*g1, which differ.
    g_from_s1, g_from_s2 = demo.dense_gradients["w11 (s1 -> z1)"], demo.dense_gradients["w12 (s2 -> z1)"]
    assert abs(g_from_s1 - g_from_s2) > 1e-3 * max(abs(g_from_s1), abs(g_from_s2))
    pt = seed_mod.seed000_point(0)
    assert g_from_s1 / g_from_s2 == pytest.approx(pt.s1 / pt.s2, rel=1e-10)
    for k, v in demo.dense_gradients.items():
        assert v == pytest.approx(demo.dense_numeric[k], rel=1e-6, abs=1e-9)
    assert "s1*(w11 + w12)" in str(demo)


# --- the trainer's losses on Keras models ------------------------------------------------


def test_a2c_default_cartpole_model_passes_quickly():
    start = time.perf_counter()
    report = verify_model(batch=32, seed=0)
    elapsed = time.perf_counter() - start
    assert report.passed, report.table()
    assert elapsed < 60, f"took {elapsed:.1f} s"
    assert report.settings["n_params"] == 4675 and report.settings["symbolic_method"] == "chain"
    assert {r.term for r in report.rows} == {"policy_loss", "value_loss", "entropy", "total_loss"}
    assert len(report.rows) == 4 * 8 * 3
    # The stop-gradient: the policy term does not reach the critic, by any method.
    for method in ("tape", "symbolic", "numeric"):
        assert not np.any(report.gradients[method]["policy_loss"]["value/kernel"])
    text = report.table()
    assert "RESULT: PASS" in text and "trunk_1/kernel" in text


def test_soft_case_passes():
    report = verify_model(case="soft", batch=8, seed=1, alpha=0.5)
    assert report.passed, report.table()
    assert {r.term for r in report.rows} == {"soft_policy_loss"}


def test_expanded_sympy_with_mask_and_normalised_advantage():
    model = build_actor_critic(2, 2, (2,), "tanh", seed=3)
    base = verify_model(model, batch=5, seed=1, method="expanded")
    assert base.passed and base.settings["symbolic_method"] == "expanded", base.table()
    from a2c.verify.network import describe, weights_of
    from a2c.verify.point import make_point

    spec = describe(model)
    point = make_point(spec, weights_of(model, spec), batch=6, seed=2, mask=np.array([1, 1, 0, 1, 0, 1.0]))
    for method in ("expanded", "chain"):
        report = verify_model(model, point=point, normalize_advantage=True, method=method)
        assert report.passed, report.table()


def test_relu_model_off_kinks_passes():
    model = build_actor_critic(4, 2, (16, 16), "relu", seed=0)
    report = verify_model(model, batch=16, seed=0)
    assert report.passed, report.table()
    assert any("kinks avoided" in n for n in report.notes)


@pytest.mark.parametrize("relu_prime_at_0", [sp.S.Half, sp.S.One])
@pytest.mark.parametrize("method", ["chain", "expanded"])
def test_wrong_relu_derivative_at_a_kink_fails(relu_prime_at_0, method):
    size = (16,) if method == "chain" else (2,)
    model = build_actor_critic(3 if method == "chain" else 2, 2, size * (2 if method == "chain" else 1), "relu", seed=0)
    point = kink_point(model, batch=6, on_kink=2)  # two all-zero observations: pre-activations exactly 0
    right = verify_model(model, point=point, method=method)
    assert not _failed(right, TAPE_SYMBOLIC), right.table()  # TF and SymPy agree: relu'(0) = 0
    wrong = verify_model(
        model, point=point, method=method, derivatives={"relu": lambda x: sp.Heaviside(x, relu_prime_at_0)}
    )
    assert ("total_loss", "trunk_0/bias") in _failed(wrong, TAPE_SYMBOLIC), wrong.table()
    assert "trunk_0/bias" in wrong.failed_params
    assert "FAIL total_loss d/d trunk_0/bias" in wrong.table()


def test_forgotten_stop_gradient_fails_naming_critic_and_trunk():
    report = verify_model(batch=32, seed=0, tape_loss=loss_without_stop_gradient)
    assert not report.passed
    failed = _failed(report, TAPE_SYMBOLIC)
    assert {
        ("policy_loss", "value/kernel"),
        ("policy_loss", "value/bias"),
        ("policy_loss", "trunk_0/kernel"),
        ("total_loss", "value/kernel"),
    } <= failed
    assert failed == _failed(report, ("tape", "numeric"))  # the numeric side froze the advantage too
    assert not _failed(report, ("symbolic", "numeric"))
    assert not any(r.term in ("value_loss", "entropy") for r in report.failures)


def test_trained_model_with_large_losses_passes_and_bugs_still_fail():
    # A critic trained on unscaled CartPole returns predicts values near 100, so at a
    # check point its value loss is in the thousands and a central difference carries
    # round-off ~eps*|L|/h ~ 1e-7: `a2c verify --model` must pass such a model, with the
    # widened finite-difference tolerance stated, and still catch a real bug. The
    # committed model (README's example) learnt returns scaled by 0.1; its value head
    # scaled by 10 is that unscaled critic.
    from pathlib import Path

    from a2c.agent.model import VALUE_LAYER
    from a2c.verify import numeric
    from a2c.verify.check import ROUNDOFF_MARGIN

    model = keras.models.load_model(Path(__file__).resolve().parents[1] / "results/cartpole_model/model.keras")
    assert verify_model(model, batch=32, seed=0).passed  # the README's example as committed
    value = model.get_layer(VALUE_LAYER)
    value.kernel.assign(value.kernel * 10.0)
    value.bias.assign(value.bias * 10.0)
    report = verify_model(model, batch=32, seed=0)
    assert report.passed, report.table()
    widened = {r.term: r.tolerance.atol for r in report.rows if r.pair == ("tape", "numeric")}
    assert widened["value_loss"] > 1e-6 and widened["entropy"] == 1e-8  # the entropy is of order 1
    assert any(n.startswith("value_loss = ") and "round-off" in n for n in report.notes)
    assert numeric.roundoff_error(1.0) * ROUNDOFF_MARGIN < 1e-8  # order-1 losses keep the documented atol
    tape_exact = {r.term: r.tolerance for r in report.rows if r.pair == TAPE_SYMBOLIC}
    assert all(t.atol == 1e-11 for t in tape_exact.values())  # the exact pair is never widened
    broken = verify_model(model, batch=32, seed=0, tape_loss=loss_without_stop_gradient)
    assert ("policy_loss", "value/kernel") in _failed(broken, ("tape", "numeric"))


@pytest.mark.parametrize("bug", [loss_with_entropy_sign_flipped, loss_with_entropy_negated])
def test_entropy_sign_flip_fails(bug):
    report = verify_model(batch=32, seed=0, tape_loss=bug)
    assert not report.passed
    failed = _failed(report, TAPE_SYMBOLIC)
    assert ("total_loss", "policy_logits/kernel") in failed
    assert ("total_loss", "trunk_1/kernel") in failed
    if bug is loss_with_entropy_negated:
        assert ("entropy", "policy_logits/kernel") in failed
    assert not _failed(report, ("symbolic", "numeric"))


# --- command line ------------------------------------------------------------------------


def test_cli_seed000_json(capsys):
    assert run_verify(_parse("--case", "seed000", "--json")) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["passed"] and data["case"] == "seed000"
    assert {"s1", "s2", "q1", "q2", "w11", "w12", "w21", "w22", "b1", "b2"} <= set(data["point"])
    assert set(data["gradients"]) == {"tape", "symbolic", "numeric", "closed_form"}
    assert set(data["gradients"]["tape"]["J"]) == {"w11", "w12", "w21", "w22", "b1", "b2"}


def test_cli_saved_model_json_and_plot(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    build_actor_critic(4, 2, (8,), "tanh", seed=5).save(run_dir / "model.keras")
    plot = tmp_path / "errors.png"
    assert run_verify(_parse("--model", str(run_dir), "--batch", "4", "--json", "--plot", str(plot))) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["passed"] and plot.stat().st_size > 1000
    assert np.array(data["point"]["obs"]).shape == (4, 4)
    assert len(data["point"]["actions"]) == 4 and len(data["point"]["returns"]) == 4
    assert np.array(data["point"]["weights"]["trunk_0/kernel"]).shape == (4, 8)
    assert np.array(data["gradients"]["numeric"]["total_loss"]["trunk_0/kernel"]).shape == (4, 8)
    assert {tuple(r["pair"]) for r in data["rows"]} == {
        ("tape", "symbolic"),
        ("tape", "numeric"),
        ("symbolic", "numeric"),
    }


def test_cli_exit_1_and_table_on_disagreement(tmp_path, capsys, monkeypatch):
    model_file = tmp_path / "m.keras"
    build_actor_critic(4, 2, (8,), "tanh", seed=0).save(model_file)
    monkeypatch.setattr(tape_mod, "a2c_loss", loss_without_stop_gradient)
    assert run_verify(_parse("--model", str(model_file), "--batch", "4")) == 1
    out = capsys.readouterr().out
    assert "RESULT: FAIL" in out and "FAIL policy_loss d/d value/kernel" in out


def test_cli_model_errors(tmp_path):
    with pytest.raises(ModelFileError, match="not found"):
        run_verify(_parse("--model", str(tmp_path / "missing.keras")))
    with pytest.raises(ModelFileError, match="no model.keras"):
        run_verify(_parse("--model", str(tmp_path)))
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match="cannot load"):
        run_verify(_parse("--model", str(corrupt)))
    inputs = keras.Input((3,))
    keras.Model(inputs, keras.layers.Dense(2)(inputs)).save(tmp_path / "plain.keras")
    with pytest.raises(ModelFileError, match="not an a2c actor-critic"):
        run_verify(_parse("--model", str(tmp_path / "plain.keras")))
    with pytest.raises(ConfigError):
        run_verify(_parse("--case", "seed000", "--model", str(corrupt)))


def _hand_built_actor_critic(shape: tuple[int, ...], dtype: str = "float32") -> keras.Model:
    """build_actor_critic's layers, with the input a2c.agent.model builds for image or uint8
    observations: ``obs_flatten`` for more than one axis, then a casting ``obs_scale``."""
    obs = keras.Input(shape=shape, dtype=dtype, name="obs")
    h = obs
    if len(shape) > 1:
        h = keras.layers.Flatten(name="obs_flatten")(h)
    if not keras.backend.is_float_dtype(dtype):
        h = keras.layers.Rescaling(1 / 255, dtype="float32", name="obs_scale")(h)
    h = keras.layers.Dense(8, activation="tanh", name="trunk_0")(h)
    logits = keras.layers.Dense(2, name="policy_logits")(h)
    probs = keras.layers.Softmax(name="policy")(logits)
    value = keras.layers.Reshape((), name="value_squeeze")(keras.layers.Dense(1, name="value")(h))
    return keras.Model(obs, {"logits": logits, "probs": probs, "value": value}, name="actor_critic")


_FLATTENED = " through Flatten layer 'obs_flatten'"
UNSUPPORTED_INPUTS = [
    ((4, 4), "float32", r"this model takes \(batch, 4, 4\) float32 observations" + _FLATTENED + "$"),
    ((4,), "uint8", r"this model takes \(batch, 4\) uint8 observations$"),
    ((4, 4), "uint8", r"this model takes \(batch, 4, 4\) uint8 observations" + _FLATTENED + "$"),
]


@pytest.mark.parametrize("shape,dtype,takes", UNSUPPORTED_INPUTS)
def test_describe_refuses_image_and_integer_inputs(shape, dtype, takes):
    from a2c.verify.network import describe

    assert describe(_hand_built_actor_critic((4,))).obs_dim == 4  # the builder itself is fine
    with pytest.raises(
        ModelFileError,
        match=r"^verify checks models that take flat float observations "
        r"\(batch, features\); " + takes,
    ):
        verify_model(_hand_built_actor_critic(shape, dtype))


@pytest.mark.parametrize("shape,dtype,takes", UNSUPPORTED_INPUTS[:2])
def test_cli_refuses_unsupported_input_in_one_line(tmp_path, capsys, shape, dtype, takes):
    from a2c.cli.main import main

    path = tmp_path / "model.keras"
    _hand_built_actor_critic(shape, dtype).save(path)
    assert main(["verify", "--case", "a2c", "--model", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("a2c verify: error: verify checks models that take flat float")
    assert re.search(takes, lines[0])


def test_seed000_report_opens_by_saying_what_it_checks():
    report = verify_seed000(seed=0, prove=False)
    lines = report.table().splitlines()
    opening = " ".join(lines[1 : lines.index("")])  # the sentence right under the title, unwrapped
    assert opening == report.summary and opening.startswith("This case re-checks the hand-derived gradient")
    for needle in (
        "entropy-regularised (soft) policy loss",
        "2-input, 2-action softmax policy",
        "notebooks/walkthrough.ipynb",
        "docs/verification.md",
        "a2c/verify/seed000.py",
    ):
        assert needle in opening
    text = report.table()
    assert "seeds/000" not in text and "re-checked w21's" not in text
    assert "compared dJ/dw21 with w21's closed form a second time" in text
    assert json.loads(report.to_json())["summary"] == report.summary
    # the other cases have no summary: their methods still follow the title directly
    other = verify_model(build_actor_critic(2, 2, (3,), "tanh", seed=0), "a2c", batch=2).table()
    assert other.splitlines()[1].startswith("  tape:")


def _assert_fits_and_keeps_everything(report):
    text = report.table()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 100, text
    flat = " ".join(text.split())  # the wrapped text, unwrapped
    for part in [report.title, report.summary, *report.notes, *(f"{k}: {v}" for k, v in report.methods.items())]:
        assert " ".join(part.split()) in flat
    for r in report.rows:  # every comparison's numbers, on its (term, parameter) line
        assert any(
            line.split()[:2] == [r.term, r.param] and f"{r.max_abs:.1e} {r.max_rel:.1e}" in line for line in lines
        ), (r, text)
    assert sum(line.startswith("term ") for line in lines) == -(-len(report.pairs) // 3)  # blocks of <= 3 pairs
    return text


def test_table_fits_in_100_columns_without_losing_anything():
    """`a2c verify` printed 326-column lines (issue 25): the seed000 case's six pairs come in two
    blocks, the default model's three in one; descriptions and notes are wrapped, not cut."""
    seed000 = _assert_fits_and_keeps_everything(verify_seed000(seed=0))
    assert "closed_form-" in seed000 and "check: SymPy simplifies dJ/db2 - closed form to 0: PASS" in seed000
    _assert_fits_and_keeps_everything(verify_model(batch=32, seed=0))


def test_table_marks_each_comparison_outside_its_tolerance():
    good, bad = {"w": np.array([1.0, 2.0])}, {"w": np.array([1.0, 2.5])}
    grads = {"tape": {"J": good}, "symbolic": {"J": bad}, "numeric": {"J": good}}
    methods = {m: "x " * 80 for m in grads}  # long descriptions wrap
    pairs = [("tape", "symbolic"), ("tape", "numeric"), ("symbolic", "numeric")]
    report = Report.build("x", "title", methods, grads, pairs, {})
    text = _assert_fits_and_keeps_everything(report)
    row = next(line for line in text.splitlines() if line.startswith("J "))
    assert row.endswith("5.0e-01 2.0e-01* 0.0e+00 0.0e+00  5.0e-01 2.0e-01* FAIL")
    assert "*: outside the tolerance" in text and "FAIL J d/d w[1]: tape 2 vs symbolic 2.5" in text
    assert json.loads(report.to_json())["methods"] == methods  # the JSON stays unabridged


# ---------------------------------------------------------------- convolutional models (a2c.verify.conv)


def test_tiny_conv_net_gradients_agree_three_ways():
    from a2c.verify.conv import verify_tiny_conv

    report = verify_tiny_conv(seed=1)
    assert report.passed, report.table()
    assert {pair for pair in report.pairs} == {("tape", "symbolic"), ("tape", "numeric"), ("symbolic", "numeric")}
    assert {row.param for row in report.rows} >= {"conv_0/kernel", "conv_0/bias", "conv_1/kernel", "conv_1/bias"}


def test_tiny_conv_check_catches_a_wrong_convolution_derivative(monkeypatch):
    """A wrong SymPy-derived kernel derivative (the patch doubled) must fail the symbolic pairs."""
    from a2c.verify import conv

    right = conv.conv_unit_derivatives

    def doubled(n):
        d_w, d_x, d_b = right(n)
        return (lambda *x: [2 * v for v in d_w(*x)]), d_x, d_b

    monkeypatch.setattr(conv, "conv_unit_derivatives", doubled)
    report = conv.verify_tiny_conv(seed=1)
    assert not report.passed
    assert {row.param for row in report.failures} == {"conv_0/kernel", "conv_1/kernel"}
    assert all("symbolic" in row.pair for row in report.failures)


def test_nature_cnn_model_tape_matches_finite_differences_and_kinks_are_skipped():
    from a2c.envs.spaces import ObsSpec
    from a2c.verify import conv
    from a2c.verify.point import LossSpec

    model = build_actor_critic(ObsSpec((4, 36, 36), "uint8"), 4, (16,), "relu", trunk="nature_cnn", seed=0)
    report = conv.verify_conv_model(model, samples=3)
    assert report.passed, report.table()
    assert all(report.checks.values()) and len(report.checks) == 4  # loss values: the forward passes agree
    # All-zero frames put every first-layer unit exactly on its kink (zero biases): the
    # differences w.r.t. those biases straddle it and are skipped, not compared.
    net = conv.describe_conv(model)
    weights = conv.weights_of(model, net)
    point = conv._point(net, weights, ObsSpec((4, 36, 36), "uint8"), 2, np.random.default_rng(0), False)
    point.obs[:] = 0
    _, used, skipped = conv.numeric_gradients(net, point, LossSpec(), {"conv_0/bias": np.arange(32)}, want=3)
    assert skipped == 32 and used["conv_0/bias"].size == 0


def test_verify_cli_checks_a_convolutional_model(tmp_path, capsys):
    from a2c.artifacts.saving import save_model
    from a2c.cli.main import main
    from a2c.envs.spaces import ObsSpec

    model = build_actor_critic(ObsSpec((4, 36, 36), "uint8"), 3, (8,), "relu", trunk="nature_cnn", seed=2)
    save_model(model, tmp_path / "model.keras")
    assert main(["verify", "--model", str(tmp_path / "model.keras")]) == 0
    out = capsys.readouterr().out
    assert "gradient check of a convolutional model" in out and "2 convolutions on 10x10x2" in out
    assert out.count("RESULT: PASS") == 2
    assert main(["verify", "--model", str(tmp_path / "model.keras"), "--case", "soft"]) == 2


def test_channels_last_small_cnn_model_tape_matches_finite_differences():
    """MinAtar-shaped (10, 10, 4) float frames: read channels-last (no Permute) by a small CNN."""
    from a2c.envs.spaces import ObsSpec
    from a2c.verify import conv

    model = build_actor_critic(ObsSpec((10, 10, 4), "float32"), 3, (8,), "relu", trunk="nature_cnn", seed=0)
    assert not conv.describe_conv(model).channels_first
    report = conv.verify_conv_model(model, samples=3)
    assert report.passed, report.table()
    assert all(report.checks.values())


def test_a_bfloat16_model_is_checked_on_a_float64_copy_of_its_float32_weights():
    """Mixed precision keeps float32 weights; the verifier rebuilds the network in float64 from them, as
    for any convolutional model, and says that the model itself computes in bfloat16."""
    from a2c.envs.spaces import ObsSpec
    from a2c.verify import conv

    model = build_actor_critic(
        ObsSpec((4, 36, 36), "uint8"), 4, (16,), "relu", trunk="nature_cnn", seed=0, precision="bfloat16"
    )
    report = conv.verify_conv_model(model, samples=3)
    assert report.passed, report.table()
    copy = conv.float64_copy(model, conv.weights_of(model, conv.describe_conv(model)))
    assert all(layer.compute_dtype == "float64" for layer in copy.layers if layer.weights)
    assert any("computes in bfloat16" in note for note in report.notes)
