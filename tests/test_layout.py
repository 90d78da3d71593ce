"""The package's layout contracts that a running interpreter can see.

`make imports` (import-linter, configured in pyproject.toml) checks the layers and the
TensorFlow-free modules statically; this checks the same promise at run time, where a
package's ``__init__`` or a module-level side effect could still pull TensorFlow in.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

TF_FREE = ["a2c.config", "a2c.config.resolve", "a2c.envs.spaces", "a2c.cli.parser", "a2c.cli.main"]


@pytest.mark.parametrize("module", TF_FREE)
def test_light_modules_do_not_load_tensorflow(module):
    code = (
        f"import importlib, json, sys; importlib.import_module({module!r}); "
        "print(json.dumps(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == []


def test_help_and_a_refused_flag_cost_no_tensorflow():
    code = (
        "import json, sys\n"
        "from a2c.cli.main import main\n"
        "rc = main(['train', '--lr', '-1'])\n"
        "print(json.dumps([rc, 'tensorflow' in sys.modules]))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(run.stdout.splitlines()[-1]) == [2, False]
    assert "lr" in run.stderr and "Traceback" not in run.stderr


def test_the_package_version_matches_its_metadata():
    from importlib.metadata import version

    import a2c

    assert a2c.__version__ == version("a2c") == "0.2.0"
