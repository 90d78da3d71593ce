"""The recurrent gradient check (a2c.verify.recurrent): passes on the project's unroll, fails on
each classic recurrent bug injected into the tape's unroll."""

from __future__ import annotations

import pytest
import tensorflow as tf

from a2c.agent.model import unroll
from a2c.verify.recurrent import verify_recurrent, verify_recurrent_default


def _no_reset(model, obs, state, starts, training=False):
    """Bug: the state is carried into a new episode (no reset at an episode start)."""
    return unroll(model, obs, state, tf.zeros_like(starts), training)


def _stop_gradient(model, obs, state, starts, training=False):
    """Bug: the carried state is cut from the gradient between steps (truncated inside the window)."""
    outs = []
    for t in range(int(starts.shape[0])):
        out = model([obs[t], state * (1.0 - starts[t])[:, None]], training=training)
        state = tf.stop_gradient(out["state"])
        outs.append(out)
    return {k: tf.stack([o[k] for o in outs]) for k in outs[0]}


def _mask_on_output(model, obs, state, starts, training=False):
    """Bug: the episode-start mask is applied to the cell's output state instead of the state
    entering the cell."""
    outs = []
    for t in range(int(starts.shape[0])):
        out = model([obs[t], state], training=training)
        state = out["state"] * (1.0 - starts[t])[:, None]
        outs.append(out)
    return {k: tf.stack([o[k] for o in outs]) for k in outs[0]}


def test_lstm_passes_through_time():
    report = verify_recurrent("lstm")
    assert report.passed, report.table()
    params = {r["param"] for r in report.rows}
    assert {"recurrent/kernel", "recurrent/recurrent_kernel", "recurrent/bias", "initial_state"} <= params


@pytest.mark.parametrize("bug", [_no_reset, _stop_gradient, _mask_on_output], ids=lambda f: f.__name__)
def test_injected_bugs_fail(bug):
    report = verify_recurrent("lstm", unroll_fn=bug)
    assert not report.passed
    # the two reference methods still agree with each other: the tape is what is wrong
    assert all(r["ok"] for r in report.rows if r["pair"] == "symbolic/numeric")
    assert any(not r["ok"] for r in report.rows if r["pair"] == "tape/symbolic")


@pytest.mark.slow
def test_gru_passes_through_time():
    report = verify_recurrent("gru")
    assert report.passed, report.table()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_default_recurrent_model_tape_vs_finite_differences(kind):
    report = verify_recurrent_default(kind)
    assert report.passed, report.table()


def test_cli_routes_a_recurrent_env_to_the_checks_through_time_and_refuses_plot(capsys):
    from a2c.cli.main import main

    assert main(["verify", "--env", "CartPoleNoVel-v1", "--plot", "x.png"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "recurrent models are checked on their env's preset model" in err[0]


@pytest.mark.slow
def test_cli_verifies_the_recurrent_preset_model(capsys):
    from a2c.cli.main import main

    assert main(["verify", "--env", "CartPoleNoVel-v1"]) == 0
    out = capsys.readouterr().out
    assert "initial_state" in out and "tape/symbolic" in out and out.count("passed: True") == 2
