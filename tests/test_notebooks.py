"""The walkthrough notebook runs top to bottom, and its committed copy is executed and small.

The run uses tiny parameters (2,000 training steps, 2 evaluation episodes) and takes
about a minute; ``make notebook`` runs the same code path (notebooks/execute.py) with
the notebook's own, full parameters to regenerate the committed outputs.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
WALKTHROUGH = NOTEBOOKS / "walkthrough.ipynb"
TINY = {"TOTAL_STEPS": 2000, "EVAL_EPISODES": 2, "CONTINUOUS_STEPS": 4096}
MAX_COMMITTED_BYTES = 2_000_000


def _executor() -> ModuleType:
    spec = importlib.util.spec_from_file_location("notebooks_execute", NOTEBOOKS / "execute.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _outputs(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]


def _mime_count(nb: nbformat.NotebookNode, mime: str) -> int:
    return sum(mime in o.get("data", {}) for o in _outputs(nb))


def test_kernel_runs_this_python(tmp_path: Path) -> None:
    """The kernel is sys.executable (the venv's Python), not whatever 'python3' is installed."""
    probe = nbformat.v4.new_notebook()
    probe.cells = [nbformat.v4.new_code_cell("import sys\nprint(sys.executable)")]
    probe.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(probe, tmp_path / "probe.ipynb")
    out = _executor().execute(tmp_path / "probe.ipynb", tmp_path / "out.ipynb")
    assert out.cells[0].outputs[0].text.strip() == sys.executable
    assert (tmp_path / "out.ipynb").is_file()


def test_walkthrough_runs_top_to_bottom(tmp_path: Path) -> None:
    run_dir, cwd = tmp_path / "run", tmp_path / "cwd"
    cwd.mkdir()
    # papermill raises PapermillExecutionError (cell and traceback) if any cell fails.
    nb = _executor().execute(
        WALKTHROUGH, tmp_path / "walkthrough.ipynb", parameters={**TINY, "RUN_DIR": str(run_dir)}, cwd=cwd
    )
    assert not [o for o in _outputs(nb) if o.output_type == "error"]
    # Every section produced its output: plots, the trained and exported model, the GIF.
    assert _mime_count(nb, "image/png") >= 5
    assert _mime_count(nb, "image/gif") == 1
    assert _mime_count(nb, "text/latex") >= 6  # SymPy's derivatives
    text = "\n".join(o.get("text", "") for o in _outputs(nb))
    assert "RESULT: PASS" in text and "RESULT: FAIL" not in text  # both gradient checks
    for path in ("summary.json", "model.keras", "exported/saved_model.pb", "episode.gif"):
        assert (run_dir / path).is_file(), path
    assert list(cwd.iterdir()) == [], "the notebook wrote outside RUN_DIR"


@pytest.fixture(scope="module")
def committed() -> nbformat.NotebookNode:
    return nbformat.read(WALKTHROUGH, as_version=4)


def test_parameters_cell(committed: nbformat.NotebookNode) -> None:
    cells = [c for c in committed.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1
    names = {
        t.id
        for node in ast.parse(cells[0].source).body
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    assert {"TOTAL_STEPS", "EVAL_EPISODES", "RUN_DIR"} <= names
    assert committed.cells.index(cells[0]) < 4, "the parameters cell belongs near the top"


def test_committed_notebook_is_executed_clean_and_small(committed: nbformat.NotebookNode) -> None:
    """Committed with the outputs of a full top-to-bottom run (`make notebook`)."""
    assert WALKTHROUGH.stat().st_size < MAX_COMMITTED_BYTES
    code = [c for c in committed.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), "run top to bottom, once"
    assert not any("injected-parameters" in c.metadata.get("tags", []) for c in committed.cells), (
        "regenerate with the notebook's own parameters (make notebook)"
    )
    assert not [o for o in _outputs(committed) if o.output_type == "error"]
    assert not [o.text[:200] for o in _outputs(committed) if o.output_type == "stream" and o.name == "stderr"]
    assert _mime_count(committed, "image/gif") == 1
    text = "\n".join(o.get("text", "") for o in _outputs(committed))
    match = re.search(r"final greedy evaluation: ([\d.]+)", text)
    assert match and float(match.group(1)) >= 400, "the committed notebook shows a trained agent"
