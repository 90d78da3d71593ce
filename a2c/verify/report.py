"""Compare gradients pairwise, decide PASS/FAIL, and present the result (JSON, plot; the text
table is [`a2c.verify.table`][a2c.verify.table]'s).

One module (~310 lines) because the criterion and its presentations must say the same
thing; the tolerances below are the design, not a measurement.

Criterion, per element: ``|a - b| <= max(atol, rtol * max(|a|, |b|))``.
The reported relative error is ``|a - b| / max(|a|, |b|, atol / rtol)``, so a
comparison passes exactly when its max relative error is <= rtol; the floor
``atol / rtol`` keeps gradients that are zero or tiny (the value head under the
policy term, for instance) from producing meaningless ratios.

Tolerances (float64 everywhere, losses of order 1 at the check points):

* two exact methods (tape, symbolic, closed form): they differ only by round-off,
  ~1e-16 relative in practice; ``atol=1e-11, rtol=1e-8`` leaves a wide margin and
  still catches any real mistake (a missing factor, a sign, a convention).
* a pair with the finite differences: their error is ~eps^(2/3) ~ 4e-11 (see
  [`a2c.verify.numeric`][a2c.verify.numeric]; measured 1e-12..5e-11 on the default model);
  ``atol=1e-8, rtol=1e-6`` is 200x above that. Where a term is far from order 1 at
  the point (a trained critic's value loss), the round-off ``eps |L| / h`` dominates:
  [`a2c.verify.verify_model`][a2c.verify.check.verify_model] then raises that term's finite-difference ``atol``
  to ``ROUNDOFF_MARGIN`` (100) times it, and says so in the report's notes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import matplotlib.figure

Grads = dict[str, dict[str, np.ndarray]]  # term -> parameter -> gradient


@dataclass(frozen=True)
class Tolerance:
    """Per-element criterion ``|a - b| <= max(atol, rtol * max(|a|, |b|))``."""

    atol: float
    rtol: float


EXACT_TOLERANCE = Tolerance(atol=1e-11, rtol=1e-8)
NUMERIC_TOLERANCE = Tolerance(atol=1e-8, rtol=1e-6)


def tolerance_for(
    pair: tuple[str, str], tolerances: Mapping[str, Tolerance] | None = None, term: str | None = None
) -> Tolerance:
    """``numeric`` tolerance for pairs with the finite differences, ``exact`` otherwise;
    a ``"numeric:<term>"`` / ``"exact:<term>"`` entry overrides it for one loss term."""
    tolerances = {"exact": EXACT_TOLERANCE, "numeric": NUMERIC_TOLERANCE, **(tolerances or {})}
    kind = "numeric" if "numeric" in pair else "exact"
    return tolerances.get(f"{kind}:{term}", tolerances[kind])


@dataclass(frozen=True)
class Row:
    """One comparison: one loss term, one parameter tensor, one pair of methods."""

    term: str
    param: str
    shape: tuple[int, ...]
    pair: tuple[str, str]
    max_abs: float
    max_rel: float
    worst_index: tuple[int, ...]
    worst_values: tuple[float, float]
    tolerance: Tolerance
    passed: bool

    @property
    def pair_name(self) -> str:
        return f"{self.pair[0]}-{self.pair[1]}"

    def describe(self) -> str:
        """One line naming the term, the parameter, the pair and the worst element."""
        if self.passed:
            return (
                f"PASS {self.term} d/d {self.param} ({self.pair_name}): "
                f"max abs {self.max_abs:.2e}, max rel {self.max_rel:.2e}"
            )
        a, b = self.worst_values
        idx = f"[{', '.join(map(str, self.worst_index))}]" if self.worst_index else ""
        return (
            f"FAIL {self.term} d/d {self.param}{idx}: {self.pair[0]} {a:.10g} vs {self.pair[1]} {b:.10g} "
            f"(worst rel err {self.max_rel:.2e} > rtol {self.tolerance.rtol:g}; "
            f"max abs err over the tensor {self.max_abs:.2e})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "term": self.term,
            "param": self.param,
            "shape": list(self.shape),
            "pair": list(self.pair),
            "max_abs": self.max_abs,
            "max_rel": self.max_rel,
            "worst_index": list(self.worst_index),
            "worst_values": list(self.worst_values),
            "atol": self.tolerance.atol,
            "rtol": self.tolerance.rtol,
            "passed": self.passed,
        }


def compare(term: str, param: str, pair: tuple[str, str], a: np.ndarray, b: np.ndarray, tol: Tolerance) -> Row:
    """Max absolute and relative error of ``a`` vs ``b`` and the verdict."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    diff = np.abs(a - b)
    scale = np.maximum(np.maximum(np.abs(a), np.abs(b)), tol.atol / tol.rtol)
    rel = diff / scale
    bad = ~np.isfinite(diff)
    rel = np.where(bad, np.inf, rel)
    worst = np.unravel_index(int(np.argmax(rel)), a.shape) if a.size else ()
    max_rel = float(rel.max()) if a.size else 0.0
    return Row(
        term=term,
        param=param,
        shape=tuple(a.shape),
        pair=pair,
        max_abs=float(np.where(bad, np.inf, diff).max()) if a.size else 0.0,
        max_rel=max_rel,
        worst_index=tuple(int(i) for i in worst),
        worst_values=(float(a[worst]), float(b[worst])) if a.size else (0.0, 0.0),
        tolerance=tol,
        passed=bool(max_rel <= tol.rtol),
    )


def _tolist(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, Mapping):
        return {k: _tolist(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_tolist(v) for v in x]
    return x


@dataclass
class Report:
    """Outcome of one check: every gradient, every pairwise comparison, and the point.

    ``passed`` is True when every row passes; ``failures`` lists the rows that
    did not, each naming its loss term, parameter and pair of methods.
    """

    case: str
    title: str
    methods: dict[str, str]
    gradients: dict[str, Grads]
    rows: list[Row]
    point: dict[str, Any]
    settings: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: Extra yes/no checks that are not gradient comparisons (e.g. a SymPy identity proof).
    checks: dict[str, bool] = field(default_factory=dict)
    #: One sentence under the title saying what is checked and where to read more, for a
    #: reader who meets the case name for the first time.
    summary: str = ""

    @classmethod
    def build(
        cls,
        case: str,
        title: str,
        methods: dict[str, str],
        gradients: dict[str, Grads],
        pairs: Sequence[tuple[str, str]],
        point: dict[str, Any],
        *,
        tolerances: Mapping[str, Tolerance] | None = None,
        **kwargs: Any,
    ) -> Report:
        """Compare every pair of methods on every term and parameter."""
        first = gradients[pairs[0][0]]
        rows = [
            compare(
                term,
                param,
                pair,
                gradients[pair[0]][term][param],
                gradients[pair[1]][term][param],
                tolerance_for(pair, tolerances, term),
            )
            for term in first
            for param in first[term]
            for pair in pairs
        ]
        return cls(case, title, methods, gradients, rows, point, **kwargs)

    @property
    def passed(self) -> bool:
        return all(row.passed for row in self.rows) and all(self.checks.values())

    @property
    def failures(self) -> list[Row]:
        return [row for row in self.rows if not row.passed]

    @property
    def failed_params(self) -> set[str]:
        """Names of the parameter tensors with at least one failing comparison."""
        return {row.param for row in self.failures}

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return list(dict.fromkeys(row.pair for row in self.rows))

    def row(self, term: str, param: str, pair: tuple[str, str]) -> Row:
        return next(r for r in self.rows if r.term == term and r.param == param and r.pair == pair)

    # -- presentation ----------------------------------------------------------------

    def table(self) -> str:
        """The report as text, no line over 100 columns ([`a2c.verify.table.render`][a2c.verify.table.render])."""
        from a2c.verify.table import render

        return render(self)

    def __str__(self) -> str:
        return self.table()

    def to_dict(self) -> dict[str, Any]:
        """Everything needed to re-check the result by hand: point, gradients, comparisons."""
        return {
            "case": self.case,
            "title": self.title,
            "summary": self.summary,
            "passed": self.passed,
            "methods": self.methods,
            "settings": _tolist(self.settings),
            "point": _tolist(self.point),
            "gradients": _tolist(self.gradients),
            "rows": [r.to_dict() for r in self.rows],
            "checks": self.checks,
            "failures": [r.describe() for r in self.failures],
            "timings_s": self.timings,
            "notes": self.notes,
        }

    def to_json(self, indent: int | None = None) -> str:
        # Python floats print with repr: the shortest text that round-trips exactly.
        return json.dumps(self.to_dict(), indent=indent, allow_nan=True)

    def plot(self, path: str | Path | None = None) -> matplotlib.figure.Figure:
        """Log-scale bars of max abs and max rel error per (term, parameter), one colour per pair.

        Uses the Agg canvas directly (no pyplot state), so it works headless and leaves
        a notebook's backend alone; saved to ``path`` when given. Zero errors are drawn
        at 1e-20 so they stay visible on the log axis; dashed lines are the tolerances.
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        pairs = self.pairs
        groups = list(dict.fromkeys((r.term, r.param) for r in self.rows))
        by_key = {(r.term, r.param, r.pair): r for r in self.rows}
        fig = Figure(figsize=(min(24.0, max(8.0, 0.17 * len(groups) * len(pairs) + 2)), 8), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(2, 1, sharex=True)
        x = np.arange(len(groups))
        width = 0.8 / len(pairs)
        colors = [f"C{i}" for i in range(len(pairs))]
        for ax, attr, label in ((axes[0], "max_abs", "max |a - b|"), (axes[1], "max_rel", "max relative error")):
            for k, (pair, color) in enumerate(zip(pairs, colors)):
                vals = np.array([getattr(by_key[(t, p, pair)], attr) for t, p in groups])
                vals = np.where(np.isfinite(vals), vals, 1e3)
                failed = [not by_key[(t, p, pair)].passed for t, p in groups]
                bars = ax.bar(
                    x + (k - (len(pairs) - 1) / 2) * width,
                    np.maximum(vals, 1e-20),
                    width,
                    color=color,
                    label=f"{pair[0]} vs {pair[1]}",
                )
                for bar, bad in zip(bars, failed):
                    if bad:
                        bar.set_edgecolor("red")
                        bar.set_linewidth(2)
                tol = by_key[(groups[0][0], groups[0][1], pair)].tolerance
                ax.axhline(tol.atol if attr == "max_abs" else tol.rtol, color=color, ls="--", lw=1)
            ax.set_yscale("log")
            ax.set_ylabel(label)
            ax.grid(axis="y", alpha=0.3)
        fig.suptitle(
            f"{self.title}\n{'PASS' if self.passed else 'FAIL'} "
            "(bars: worst error per tensor; dashed: tolerances; red edge: failed; 0 drawn at 1e-20)",
            fontsize=10,
        )
        axes[0].legend(fontsize=8)
        single_term = len({t for t, _ in groups}) == 1
        axes[1].set_xticks(
            x,
            [p if single_term else f"{t}\n{p}" for t, p in groups],
            rotation=90 if len(groups) > 8 else 0,
            fontsize=7 if len(groups) > 8 else 9,
        )
        if path is not None:
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, dpi=120)
        return fig
