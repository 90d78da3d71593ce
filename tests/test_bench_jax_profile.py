"""bench_jax.py's count of the kernels a compiled training program launches per update, on a
hand-written HLO module (exact counts) and on one TensorFlow's XLA optimised (no JAX needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import tensorflow as tf

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_jax as bj  # noqa: E402

# An update loop of unknown trip count (ENTRY's while) whose body runs a 3-step rollout loop
# (XLA knows its trip count): per rollout step a dot and a fusion, plus the loop condition's compare.
_MODULE = """HloModule toy, is_scheduled=true

%fused_tanh (p.1: f32[4]) -> f32[4] {
  %p.1 = f32[4]{0} parameter(0)
  ROOT %t.1 = f32[4]{0} tanh(%p.1)
}

%rollout_body (arg.1: (s32[], f32[4])) -> (s32[], f32[4]) {
  %arg.1 = (s32[], f32[4]{0}) parameter(0)
  %i.1 = s32[] get-tuple-element(%arg.1), index=0
  %x.1 = f32[4]{0} get-tuple-element(%arg.1), index=1
  %d.1 = f32[4]{0} dot(%x.1, %x.1), lhs_contracting_dims={}, rhs_contracting_dims={}
  %f.1 = f32[4]{0} fusion(%d.1), kind=kLoop, calls=%fused_tanh
  %one.1 = s32[] constant(1)
  %b.1 = f32[4]{0} bitcast(%f.1)
  ROOT %r.1 = (s32[], f32[4]{0}) tuple(%i.1, %b.1)
}

%rollout_cond (arg.2: (s32[], f32[4])) -> pred[] {
  %arg.2 = (s32[], f32[4]{0}) parameter(0)
  %i.2 = s32[] get-tuple-element(%arg.2), index=0
  %n.2 = s32[] constant(3)
  ROOT %c.2 = pred[] compare(%i.2, %n.2), direction=LT
}

%update_body (arg.3: (s32[], f32[4])) -> (s32[], f32[4]) {
  %arg.3 = (s32[], f32[4]{0}) parameter(0)
  %w.3 = (s32[], f32[4]{0}) while(%arg.3), condition=%rollout_cond, body=%rollout_body, KNOWN
  %x.3 = f32[4]{0} get-tuple-element(%w.3), index=1
  %g.3 = f32[4]{0} dot(%x.3, %x.3), lhs_contracting_dims={}, rhs_contracting_dims={}
  %s.3 = f32[4]{0} subtract(%x.3, %g.3)
  %i.3 = s32[] get-tuple-element(%w.3), index=0
  ROOT %r.3 = (s32[], f32[4]{0}) tuple(%i.3, %s.3)
}

%update_cond (arg.4: (s32[], f32[4])) -> pred[] {
  %arg.4 = (s32[], f32[4]{0}) parameter(0)
  %i.4 = s32[] get-tuple-element(%arg.4), index=0
  %n.4 = s32[] constant(100)
  ROOT %c.4 = pred[] compare(%i.4, %n.4), direction=LT
}

ENTRY %main (a.5: f32[4], k.5: s32[]) -> f32[4] {
  %a.5 = f32[4]{0} parameter(0)
  %z.5 = s32[] constant(0)
  %t.5 = (s32[], f32[4]{0}) tuple(%z.5, %a.5)
  %w.5 = (s32[], f32[4]{0}) while(%t.5), condition=%update_cond, body=%update_body
  ROOT %o.5 = f32[4]{0} get-tuple-element(%w.5), index=1
}
"""
MODULE = _MODULE.replace("KNOWN", 'backend_config={"known_trip_count":{"n":"3"}}')


def test_opcode_of_plain_and_tuple_shaped_instructions():
    assert bj.hlo_opcode("%f = f32[64]{0} fusion(%a), kind=kLoop, calls=%c") == "fusion"
    assert bj.hlo_opcode("%w = (s32[], f32[4]{0}, /*index=2*/f32[2]{0}) while(%t), body=%b") == "while"
    assert bj.hlo_opcode("ROOT %r = (s32[], f32[4]{0}) tuple(%i, %b)") == "tuple"


def test_counts_per_update_and_per_rollout_step():
    prof = bj.hlo_profile(MODULE, n_steps=3)
    # rollout: 3 x (dot + fusion + compare); the update's own dot and subtract.
    assert prof["kernels_per_rollout_step"] == 2
    assert prof["kernels_per_update"] == 3 * 3 + 2
    assert prof["module_instructions"] == sum(line.startswith("  ") for line in MODULE.splitlines())


def test_a_loop_of_unknown_trip_count_runs_n_steps_times():
    unknown = _MODULE.replace(", KNOWN", "")
    assert bj.hlo_profile(unknown, n_steps=7)["kernels_per_update"] == 7 * 3 + 2
    # A known trip count other than n_steps is not the rollout loop.
    assert bj.hlo_profile(MODULE, n_steps=7)["kernels_per_rollout_step"] == 0


def _program(layers: int) -> tf.types.experimental.GenericFunction:
    w = tf.Variable(tf.fill([8, 8], 0.1))

    @tf.function(jit_compile=True)
    def run(x: tf.Tensor, k: tf.Tensor) -> tf.Tensor:
        def step(t, h):
            for _ in range(layers):
                h = tf.tanh(h @ w)
            return t + 1, h

        def update(i, h):
            _, h = tf.while_loop(lambda t, _: t < 5, step, (0, h), maximum_iterations=5)
            return i + 1, h * 0.5 + 1.0

        return tf.while_loop(lambda i, _: i < k, update, (0, x))[1]

    return run


def test_counts_on_tensorflows_optimised_hlo():
    """Each layer more in the rollout step is a dot and a tanh more per step, five steps per update."""
    x, k = tf.ones([4, 8]), tf.constant(3)
    profiles = [
        bj.hlo_profile(_program(layers).experimental_get_compiler_ir(x, k)(stage="optimized_hlo"), n_steps=5)
        for layers in (2, 3)
    ]
    assert profiles[1]["kernels_per_rollout_step"] - profiles[0]["kernels_per_rollout_step"] == 2
    assert profiles[1]["kernels_per_update"] - profiles[0]["kernels_per_update"] == 5 * 2


def test_dump_flags_go_before_a_sides_own(tmp_path):
    """XLA's flag parser stops at a token that is not a flag, as the JAX workers' thread setting."""
    env = bj.dump_env({"XLA_FLAGS": "--a=1 intra_op_parallelism_threads=1", "OTHER": "x"}, tmp_path, "jit_train")
    flags = env["XLA_FLAGS"].split()
    assert flags[0] == f"--xla_dump_to={tmp_path}" and flags[-2:] == ["--a=1", "intra_op_parallelism_threads=1"]
    assert env["OTHER"] == "x"
