"""How ``a2c`` was started, and what that means for what it imports and the commands it prints.

The ``a2c`` console script and ``python -m a2c`` start differently. ``python -m`` puts the current
directory first on ``sys.path``, so ``--env mypkg.envs:Env-v0`` imports ``mypkg`` from there; a console
script puts its own ``bin`` directory there instead.
[`put_cwd_on_path`][a2c.cli.invocation.put_cwd_on_path] makes both import alike. And after ``make train``
(which runs ``.venv/bin/a2c``) a bare ``a2c`` is usually not on PATH:
[`a2c_command`][a2c.cli.invocation.a2c_command] is the command that runs this ``a2c`` again, for the
"next steps" the CLI prints.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path


def put_cwd_on_path() -> None:
    """Put the current directory first on ``sys.path``, as ``python -m`` does, unless it is there already."""
    try:
        cwd = os.getcwd()
    except OSError:  # the directory was removed under the process: nothing to import from it
        return
    if not any(os.path.abspath(str(entry) or os.curdir) == cwd for entry in sys.path):
        sys.path.insert(0, cwd)


def a2c_command(argv0: str | None = None) -> str:
    """The command (shell words) that runs this ``a2c`` again from the current directory.

    ``a2c`` when the ``a2c`` that PATH finds is the running script, else the script's path as the user
    can type it (relative to the current directory when it lies inside it, e.g. ``.venv/bin/a2c``);
    under ``python -m a2c`` the same for the interpreter (``python -m a2c`` or ``.venv/bin/python -m a2c``).
    Called from Python (a test, a notebook) rather than as a program, it is ``a2c``.
    """
    argv0 = sys.argv[0] if argv0 is None else argv0
    path = Path(argv0)
    if path.name == "__main__.py" and path.parent.name == "a2c":
        # A venv's python is a symlink to the base interpreter, which lacks the venv's packages:
        # only the very path counts as the same program here.
        return f"{_program(sys.executable, 'python', resolve=False)} -m a2c"
    if path.stem == "a2c" and path.is_file():
        return _program(argv0, "a2c", resolve=True)
    return "a2c"


def tool_command(name: str) -> str:
    """A console script installed beside this interpreter (``tensorboard``): its name when PATH finds
    one, else its path in this interpreter's ``bin`` directory when it is there, else its name."""
    if shutil.which(name):
        return name
    beside = Path(sys.executable).parent / name
    return shlex.quote(_as_typed(str(beside))) if beside.is_file() else name


def _program(path: str, name: str, *, resolve: bool) -> str:
    """``name`` when PATH finds this very program under that name, else ``path`` as the user can type it."""
    found = shutil.which(name)
    if found is not None:
        if resolve:
            try:
                if os.path.samefile(found, path):
                    return name
            except OSError:
                pass
        elif os.path.abspath(found) == os.path.abspath(path):
            return name
    return shlex.quote(_as_typed(path))


def _as_typed(path: str) -> str:
    """``path`` relative to the current directory when it lies inside it (``./x`` rather than a bare
    ``x``, which a shell would look up on PATH); otherwise as given."""
    p = Path(path)
    if p.is_absolute():
        try:
            p = p.relative_to(Path.cwd())
        except (ValueError, OSError):
            return path
    text = str(p)
    return text if os.sep in text or (os.altsep and os.altsep in text) else os.path.join(os.curdir, text)
