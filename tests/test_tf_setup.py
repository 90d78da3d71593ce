"""a2c.common.tf_setup's XLA flags: added once, never over the user's own, and honoured by XLA."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from a2c.common import tf_setup


def test_flags_are_appended_once_and_the_users_setting_wins(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")
    tf_setup.add_xla_flags()
    tf_setup.add_xla_flags()
    assert os.environ["XLA_FLAGS"].split() == ["--xla_dump_to=/tmp/x", *tf_setup.XLA_CPU_FLAGS]
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_experimental_ynn_fusion_type=dot")
    tf_setup.add_xla_flags()
    assert os.environ["XLA_FLAGS"] == "--xla_cpu_experimental_ynn_fusion_type=dot"
    monkeypatch.delenv("XLA_FLAGS")
    tf_setup.add_xla_flags()
    assert os.environ["XLA_FLAGS"] == " ".join(tf_setup.XLA_CPU_FLAGS)


def test_xla_lowers_dots_through_ynnpack_after_the_import():
    """In a fresh process (XLA reads its flags at the first compilation): importing the module is enough,
    and the optimised HLO of a dense layer holds YNNPACK fusions, so TensorFlow still knows the flag."""
    code = textwrap.dedent(
        """
        import os
        os.environ.pop("XLA_FLAGS", None)
        import tensorflow as tf
        import a2c.common.tf_setup

        x = tf.ones([64, 64])
        f = tf.function(lambda a: tf.tanh(a @ a) * 2.0, jit_compile=True, autograph=False)
        print("__ynn_fusion" in f.experimental_get_compiler_ir(x)(stage="optimized_hlo"))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "True"
