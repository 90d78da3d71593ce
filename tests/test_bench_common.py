"""benchmarks/common.py: the censored medians and the eval-clock reader the benchmarks share."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH_DIR))

import common  # noqa: E402

from a2c.run.logger import EVAL_COLUMNS, METRIC_COLUMNS  # noqa: E402


def test_imports_the_benchmarks_module_without_torch_or_tensorflow():
    assert Path(common.__file__).resolve() == BENCH_DIR / "common.py"
    # In a fresh interpreter: other tests of the session may have imported these already.
    code = (
        f"import sys; sys.path.insert(0, {str(BENCH_DIR)!r}); import common; "
        "print(sorted(m for m in ('torch', 'stable_baselines3', 'tensorflow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(
    "values, expected",
    [
        ([3.0, None, 1.0], 3.0),  # None = never reached = +inf: the median is the 2nd of 1, 3, inf
        ([2.0, None, 4.0, 1.0], 3.0),  # 1, 2, 4, inf -> (2 + 4) / 2
        ([None, None, 1.0], None),  # most never reached: the median is infinite
        ([1.0, None], None),  # (1 + inf) / 2 is infinite too
        ([5.0], 5.0),
        ([], None),
    ],
)
def test_median_censored(values, expected):
    assert common.median_censored(values) == expected


def test_median_of_known_ignores_none():
    assert common.median_of_known([3.0, None, 1.0]) == 2.0
    assert common.median_of_known([None, None]) is None
    assert common.median_of_known([]) is None


def test_column_medians_keeps_key_order_and_median():
    rows = [{"a": 1.0, "b": None}, {"a": 3.0, "b": 2.0}, {"a": 2.0, "b": 4.0}]
    out = common.column_medians(rows, ("b", "a"))
    assert list(out) == ["b", "a"]
    assert out == {"b": 4.0, "a": 2.0}  # b: 2, 4, inf
    assert common.column_medians(rows, ("b",), common.median_of_known) == {"b": 3.0}


def test_fmt():
    assert common.fmt(None, ".2f", "never") == "never"
    assert common.fmt(None) == "n/a"
    assert common.fmt(1234.5678) == "1235"
    assert common.fmt(0.12345, ".3f") == "0.123"


def _write_csv(path: Path, columns, rows) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(columns), restval="")
        w.writeheader()
        w.writerows(rows)


def _metrics(run_dir: Path, steps_and_seconds) -> None:
    _write_csv(
        run_dir / "metrics.csv",
        METRIC_COLUMNS,
        [
            {"global_step": s, "update": s // 40, "time/elapsed_seconds": t, "train/entropy": 0.69}
            for s, t in steps_and_seconds
        ],
    )


def test_read_eval_clock_takes_the_training_clock_from_metrics(tmp_path):
    _metrics(tmp_path, [(40, 0.5), (80, 1.25), (120, 1.75), (160, 2.5)])
    _write_csv(
        tmp_path / "evaluations.csv",
        EVAL_COLUMNS,
        [
            {"global_step": 80, "eval/mean_return": 21.5, "eval/min_return": 9, "eval/episodes": 2},
            {"global_step": 160, "eval/mean_return": 480.0, "eval/min_return": 470.5, "eval/episodes": 2},
            # the final evaluation of the same model and seeds repeats the last step: kept once, the first
            {"global_step": 160, "eval/mean_return": 100.0, "eval/min_return": 1.0, "eval/episodes": 5},
        ],
    )
    evals = common.read_eval_clock(tmp_path)
    assert evals == [
        {"global_step": 80, "train_seconds": 1.25, "mean_return": 21.5, "min_return": 9.0},
        {"global_step": 160, "train_seconds": 2.5, "mean_return": 480.0, "min_return": 470.5},
    ]
    assert all(isinstance(e["global_step"], int) and isinstance(e["min_return"], float) for e in evals)


def test_read_eval_clock_prefers_the_evaluations_own_clock(tmp_path):
    _metrics(tmp_path, [(40, 0.5), (80, 1.25)])
    _write_csv(
        tmp_path / "evaluations.csv",
        EVAL_COLUMNS,
        [
            {"global_step": 40, "eval/mean_return": 10.0, "eval/min_return": 8.0, "time/elapsed_seconds": 0.4},
            {"global_step": 80, "eval/mean_return": 12.0, "eval/min_return": 9.0, "time/elapsed_seconds": ""},
        ],
    )
    assert [e["train_seconds"] for e in common.read_eval_clock(tmp_path)] == [0.4, 1.25]


def test_read_eval_clock_needs_a_metrics_row_at_each_evaluation(tmp_path):
    _metrics(tmp_path, [(40, 0.5)])
    _write_csv(
        tmp_path / "evaluations.csv",
        EVAL_COLUMNS,
        [{"global_step": 80, "eval/mean_return": 10.0, "eval/min_return": 8.0}],
    )
    with pytest.raises(SystemExit, match="no metrics.csv row at evaluation step 80"):
        common.read_eval_clock(tmp_path)
