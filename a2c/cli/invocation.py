"""How ``a2c`` was started, and what that means for what it imports.

The ``a2c`` console script and ``python -m a2c`` start differently. ``python -m`` puts the current
directory first on ``sys.path``, so ``--env mypkg.envs:Env-v0`` imports ``mypkg`` from there; a console
script puts its own ``bin`` directory there instead.
[`put_cwd_on_path`][a2c.cli.invocation.put_cwd_on_path] makes both import alike.
"""

from __future__ import annotations

import os
import sys


def put_cwd_on_path() -> None:
    """Put the current directory first on ``sys.path``, as ``python -m`` does, unless it is there already."""
    try:
        cwd = os.getcwd()
    except OSError:  # the directory was removed under the process: nothing to import from it
        return
    if not any(os.path.abspath(str(entry) or os.curdir) == cwd for entry in sys.path):
        sys.path.insert(0, cwd)
