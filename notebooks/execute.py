"""Execute a notebook with papermill in a kernel that runs *this* Python interpreter.

    python notebooks/execute.py notebooks/walkthrough.ipynb          # in place, its own parameters
    python notebooks/execute.py notebooks/walkthrough.ipynb -o out.ipynb -p TOTAL_STEPS 2000

``make notebook`` runs the first line; ``tests/test_notebooks.py`` calls :func:`execute`
with tiny parameters. What it adds to plain ``papermill``:

* the kernel is ``sys.executable`` (the virtual environment's Python), whatever
  ``python3`` kernelspecs the user or the system have installed: a temporary kernelspec
  directory is put first on ``JUPYTER_PATH`` for the duration of the run;
* the kernel starts in the notebook's folder (as in Jupyter) unless ``cwd`` is given;
* stream outputs are coalesced (a progress bar is stored as its final state, not as
  hundreds of carriage-return updates) and per-cell timing metadata is dropped, so the
  committed notebook stays small and diffs cleanly;
* the output file is written only once every cell ran without error (an in-place run
  that fails leaves the committed notebook as it was); a failing cell raises
  ``papermill.PapermillExecutionError`` naming the cell and the exception.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

KERNEL_NAME = "python3"


@contextlib.contextmanager
def this_python_kernel() -> Iterator[str]:
    """A ``python3`` kernelspec running ``sys.executable``, first on JUPYTER_PATH while active."""
    old = os.environ.get("JUPYTER_PATH")
    with tempfile.TemporaryDirectory(prefix="a2c-kernel-") as tmp:
        spec_dir = Path(tmp) / "kernels" / KERNEL_NAME
        spec_dir.mkdir(parents=True)
        (spec_dir / "kernel.json").write_text(
            json.dumps(
                {
                    "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                    "display_name": "Python 3 (ipykernel)",
                    "language": "python",
                }
            )
        )
        os.environ["JUPYTER_PATH"] = os.pathsep.join([tmp, *([old] if old else [])])
        try:
            yield KERNEL_NAME
        finally:
            if old is None:
                os.environ.pop("JUPYTER_PATH", None)
            else:
                os.environ["JUPYTER_PATH"] = old


def _clean(nb: Any) -> Any:
    """Drop run-specific metadata (timings, papermill's bookkeeping, empty tag lists)."""
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.metadata.get("tags") == []:
            del cell.metadata["tags"]
    return nb


def execute(
    notebook: str | Path,
    output: str | Path | None = None,
    *,
    parameters: Mapping[str, Any] | None = None,
    cwd: str | Path | None = None,
    timeout: float | None = None,
) -> Any:
    """Run ``notebook`` top to bottom and return the executed notebook node.

    ``output``: where to write it (default: in place); ``parameters`` override the
    ``parameters``-tagged cell; ``cwd``: the kernel's working directory (default: the
    notebook's folder); ``timeout``: seconds allowed per cell (default: no limit).
    """
    import nbformat
    import papermill

    notebook = Path(notebook)
    output = Path(output) if output is not None else notebook
    with this_python_kernel() as kernel_name:
        nb = papermill.execute_notebook(
            str(notebook),
            None,
            parameters=dict(parameters or {}),
            kernel_name=kernel_name,
            cwd=str(cwd if cwd is not None else notebook.parent),
            progress_bar=False,
            execution_timeout=timeout,
            coalesce_streams=True,
        )
    _clean(nb)
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{output.stem}.", suffix=".ipynb", dir=output.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            nbformat.write(nb, f)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's file is private; give it an ordinary file's mode
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return nb


def _value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("-o", "--output", type=Path, default=None, help="output notebook (default: in place)")
    parser.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="override a parameter (VALUE is a Python literal, else a string)",
    )
    parser.add_argument("--cwd", type=Path, default=None, help="kernel working directory (default: the notebook's)")
    args = parser.parse_args(argv)
    parameters = {name: _value(value) for name, value in args.parameter}
    execute(args.notebook, args.output, parameters=parameters, cwd=args.cwd)
    print(f"executed {args.notebook} -> {args.output or args.notebook}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
