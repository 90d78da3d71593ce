"""HostCall: the flat call path gives exactly what the public tf.function call gives."""

from typing import NamedTuple

import numpy as np
import pytest
import tensorflow as tf

from a2c.agent import dispatch
from a2c.agent.dispatch import HostCall


class Pair(NamedTuple):
    x: np.ndarray
    k: np.ndarray


def _stateful(seed: int):
    """A function with captured variables and an RNG, like the trainer's calls."""
    w = tf.Variable(tf.random.stateless_normal([3, 2], seed=[1, 2]))
    gen = tf.random.Generator.from_seed(seed)
    spec = Pair(tf.TensorSpec([4, 3], tf.float32), tf.TensorSpec([4], tf.int32))

    @tf.function(input_signature=[spec], jit_compile=True)
    def fn(p: Pair) -> dict[str, tf.Tensor]:
        w.assign_add(tf.ones_like(w) * 0.5)
        y = p.x @ w + gen.uniform([4, 2])
        return {"y": y, "k2": p.k * 2}

    return fn, w, gen


def test_flat_path_matches_public_call_and_state_advances_alike():
    fast_fn, w_fast, gen_fast = _stateful(3)
    public_fn, w_public, gen_public = _stateful(3)
    call = HostCall(fast_fn)
    assert call.fast
    rng = np.random.default_rng(0)
    for _ in range(5):
        p = Pair(rng.normal(size=(4, 3)), np.arange(4))  # float64 in: converted like the public path
        a = call(p)
        b = public_fn(Pair(tf.constant(p.x, tf.float32), tf.constant(p.k, tf.int32)))
        assert set(a) == {"y", "k2"}
        np.testing.assert_array_equal(a["y"].numpy(), b["y"].numpy())
        np.testing.assert_array_equal(a["k2"].numpy(), b["k2"].numpy())
    np.testing.assert_array_equal(w_fast.numpy(), w_public.numpy())
    np.testing.assert_array_equal(gen_fast.state.numpy(), gen_public.state.numpy())
    assert fast_fn.experimental_get_tracing_count() == 1


def test_wrong_shape_is_refused_not_recompiled():
    fn, _, _ = _stateful(0)
    call = HostCall(fn)
    with pytest.raises(ValueError, match=r"input 0 has shape \(5, 3\), expected \(4, 3\)"):
        call(Pair(np.zeros((5, 3)), np.zeros(4)))
    with pytest.raises(TypeError, match="arguments shaped like"):
        call(np.zeros((4, 3)))
    assert fn.experimental_get_tracing_count() == 1


def test_input_buffer_is_not_shared():
    @tf.function(input_signature=[tf.TensorSpec([3], tf.float32)])
    def identity(x: tf.Tensor) -> tf.Tensor:
        return tf.identity(x)

    x = np.ones(3, np.float32)
    out = HostCall(identity)(x)
    x[:] = 7.0
    np.testing.assert_array_equal(out.numpy(), np.ones(3))


def test_public_path_under_a_tape_and_without_the_entry_point(monkeypatch):
    fn, w, _ = _stateful(1)
    call = HostCall(fn)
    p = Pair(np.ones((4, 3), np.float32), np.zeros(4, np.int32))
    with tf.GradientTape() as tape:  # the flat path runs the inference function: not here
        tape.watch(w)
        assert not call._flat_call.applies()
        out = call(p)
    assert out["y"].shape == (4, 2)
    monkeypatch.setattr(dispatch, "_flat_entry_point", lambda concrete, specs: None)
    slow = HostCall(fn)
    assert not slow.fast
    assert slow(p)["k2"].numpy().tolist() == [0, 0, 0, 0]
    assert slow(Pair(np.ones((4, 3)), [1, 2, 3, 4]))["k2"].numpy().tolist() == [2, 4, 6, 8]  # converted


def test_needs_an_input_signature():
    with pytest.raises(ValueError, match="input_signature"):
        HostCall(tf.function(lambda x: x))


def test_run_functions_eagerly_runs_the_python_body():
    calls = []

    @tf.function(input_signature=[tf.TensorSpec([2], tf.float32)])
    def double(x: tf.Tensor) -> tf.Tensor:
        calls.append(1)  # a Python side effect: only seen when the body runs as Python
        return 2.0 * x

    call = HostCall(double)
    traced = len(calls)
    call(np.ones(2))
    assert len(calls) == traced  # the flat path runs the traced graph
    tf.config.run_functions_eagerly(True)
    try:
        np.testing.assert_array_equal(call(np.ones(2)).numpy(), [2.0, 2.0])
        assert len(calls) == traced + 1
    finally:
        tf.config.run_functions_eagerly(False)


def test_unknown_dimensions_are_accepted_and_checked():
    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="obs")])
    def total(x: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum(x, axis=-1)

    call = HostCall(total)
    assert call.fast
    np.testing.assert_array_equal(call(np.ones((3, 2))).numpy(), [2.0, 2.0, 2.0])
    with pytest.raises(ValueError, match=r"input 0 \(obs\) has shape \(3, 5\), expected \(None, 2\)"):
        call(np.ones((3, 5)))


def test_check_numerics_and_non_tensor_outputs_take_the_public_path():
    @tf.function(input_signature=[tf.TensorSpec([2], tf.float32)])
    def log(x: tf.Tensor) -> tf.Tensor:
        return tf.math.log(x)

    call = HostCall(log)
    assert np.isnan(call(np.array([-1.0, 1.0])).numpy()[0])  # no hooks: TF returns NaN
    tf.debugging.enable_check_numerics()
    try:
        with pytest.raises(tf.errors.InvalidArgumentError):  # the hook sees the NaN, as it would publicly
            call(np.array([-1.0, 1.0]))
    finally:
        tf.debugging.disable_check_numerics()

    @tf.function(input_signature=[tf.TensorSpec([2], tf.float32)])
    def with_none(x: tf.Tensor) -> dict:
        return {"y": 2.0 * x, "nothing": None}

    mixed = HostCall(with_none)
    assert not mixed.fast
    out = mixed(np.ones(2))
    assert out["nothing"] is None and out["y"].numpy().tolist() == [2.0, 2.0]
