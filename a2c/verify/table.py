"""The text of a [`Report`][a2c.verify.report.Report] (``a2c verify``'s output and ``Report.table()``).

No line is wider than [`WIDTH`][a2c.verify.table.WIDTH] columns: the comparisons are one line per
(term, parameter) with the max abs / max rel error of each pair of methods, the pairs split into blocks
of columns when they do not fit side by side (the seed000 case compares six pairs), a long pair name on
two header lines, a comparison outside its tolerance marked with [`FAIL_MARK`][a2c.verify.table.FAIL_MARK];
the method descriptions, tolerances, notes and failures are wrapped. The JSON output
([`Report.to_json`][a2c.verify.report.Report.to_json]) holds everything unabridged.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Protocol


# What the table reads of a report, structurally: the table is drawn from a report, and the
# report (a2c.verify.report) calls it, so this module names no class of that one.
class Tolerance(Protocol):
    @property
    def atol(self) -> float: ...

    @property
    def rtol(self) -> float: ...


class Row(Protocol):
    @property
    def term(self) -> str: ...

    @property
    def param(self) -> str: ...

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def pair(self) -> tuple[str, str]: ...

    @property
    def max_abs(self) -> float: ...

    @property
    def max_rel(self) -> float: ...

    @property
    def tolerance(self) -> Tolerance: ...

    @property
    def passed(self) -> bool: ...

    @property
    def pair_name(self) -> str: ...

    def describe(self) -> str: ...


class Report(Protocol):
    title: str
    summary: str
    methods: dict[str, str]
    notes: list[str]
    checks: dict[str, bool]
    timings: dict[str, float]

    @property
    def rows(self) -> Sequence[Row]: ...

    @property
    def passed(self) -> bool: ...

    @property
    def failures(self) -> Sequence[Row]: ...

    @property
    def pairs(self) -> list[tuple[str, str]]: ...


#: The widest line [`render`][a2c.verify.table.render] prints.
WIDTH = 100
#: Marks a comparison outside its tolerance in the table.
FAIL_MARK = "*"
_CELL = 15  # "max_abs max_rel": two numbers as 1.2e-34
_PAIR_W = _CELL + 2  # the two numbers, the FAIL_MARK or a space, a space


def _wrap(text: str, indent: str = "  ") -> list[str]:
    """``text`` in lines of at most ``WIDTH`` columns, continuation lines indented; never split inside a word."""
    return textwrap.wrap(
        text, width=WIDTH, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False
    ) or [""]


def _pair_blocks(
    pairs: list[tuple[str, str]], groups: list[tuple[str, str]], by_key: dict[tuple[str, str, tuple[str, str]], Row]
) -> list[list[str]]:
    """The comparison table, as few blocks of pairs side by side as fit in ``WIDTH`` columns (each block
    repeats the term, parameter and shape columns and says PASS or FAIL for its own pairs)."""
    shapes = {g: "x".join(map(str, by_key[(*g, pairs[0])].shape)) or "()" for g in groups}
    term_w = max(len("term"), *(len(t) for t, _ in groups))
    param_w = max(len("parameter"), *(len(p) for _, p in groups))
    shape_w = max(len("shape"), *(len(s) for s in shapes.values()))
    prefix_w = term_w + 2 + param_w + 2 + shape_w + 2

    def left(term: str, param: str, shape: str) -> str:
        return f"{term:<{term_w}}  {param:<{param_w}}  {shape:<{shape_w}}  "

    fit = max(1, (WIDTH - prefix_w - len("result")) // _PAIR_W)
    n_blocks = -(-len(pairs) // fit)
    per_block = -(-len(pairs) // n_blocks)  # balanced: 6 pairs that fit 4 at a time are shown 3 and 3
    blocks = []
    for first in range(0, len(pairs), per_block):
        chunk = pairs[first : first + per_block]
        names = [textwrap.wrap(f"{a}-{b}", width=_PAIR_W - 1) for a, b in chunk]  # breaks after a hyphen
        depth = max(len(n) for n in names)
        names = [[""] * (depth - len(n)) + n for n in names]  # bottom-aligned over their columns
        head = [" " * prefix_w + "".join(f"{n[row]:<{_PAIR_W}}" for n in names) for row in range(depth)]
        head[-1] = left("term", "parameter", "shape") + head[-1][prefix_w:]
        sub = " " * prefix_w + "".join(f"{'max_abs max_rel':<{_PAIR_W}}" for _ in chunk) + "result"
        block = [h.rstrip() for h in head] + [sub]
        for term, param in groups:
            rows = [by_key[(term, param, pair)] for pair in chunk]
            line = left(term, param, shapes[(term, param)])
            for r in rows:
                line += f"{r.max_abs:>7.1e} {r.max_rel:>7.1e}{' ' if r.passed else FAIL_MARK} "
            block.append(line + ("PASS" if all(r.passed for r in rows) else "FAIL"))
        blocks.append(block)
    return blocks


def render(report: Report) -> str:
    """A fixed-width table, no line over [`WIDTH`][a2c.verify.table.WIDTH] columns: one line per
    (term, parameter) with max abs / max rel per pair, the pairs split into blocks when they do not fit
    side by side; the descriptions, tolerances and notes wrapped under it."""
    lines = _wrap(report.title)
    if report.summary:
        lines += _wrap(report.summary, indent="") + [""]
    for name, desc in report.methods.items():
        lines += _wrap(f"  {name}: {desc}", indent="      ")
    groups = list(dict.fromkeys((r.term, r.param) for r in report.rows))
    by_key = {(r.term, r.param, r.pair): r for r in report.rows}
    for block in _pair_blocks(report.pairs, groups, by_key):
        lines += [""] + block
    if report.failures:
        lines.append(f"{FAIL_MARK}: outside the tolerance (the FAIL lines below name the worst element)")
    lines.append("")
    lines += _tolerance_lines(report)
    for n in report.notes:
        lines += _wrap(f"note: {n}")
    for name, ok in report.checks.items():
        lines += _wrap(f"check: {name}: {'PASS' if ok else 'FAIL'}")
    if report.timings:
        lines += _wrap("time: " + ", ".join(f"{k} {v:.2f} s" for k, v in report.timings.items()))
    for r in report.failures:
        lines += _wrap(r.describe())
    n_fail = len(report.failures)
    extra = f", {sum(report.checks.values())} of {len(report.checks)} checks" if report.checks else ""
    lines.append(
        f"RESULT: {'PASS' if report.passed else 'FAIL'} "
        f"({len(report.rows) - n_fail} of {len(report.rows)} comparisons within tolerance{extra})"
    )
    return "\n".join(lines)


def _tolerance_lines(report: Report) -> list[str]:
    """The criterion, then one line per tolerance naming the pairs that use it."""
    tols: dict[str, dict[str, Tolerance]] = {}  # pair -> term -> tolerance
    for r in report.rows:
        tols.setdefault(r.pair_name, {})[r.term] = r.tolerance

    def describe_tolerance(by_term: dict[str, Tolerance]) -> str:
        if len(set(by_term.values())) == 1:
            t = next(iter(by_term.values()))
            return f"atol={t.atol:g} rtol={t.rtol:g}"
        return ", ".join(f"{term} atol={t.atol:.2g} rtol={t.rtol:g}" for term, t in by_term.items())

    pairs_by_tolerance: dict[str, list[str]] = {}
    for pair, by_term in tols.items():
        pairs_by_tolerance.setdefault(describe_tolerance(by_term), []).append(pair)
    lines = ["tolerance, per element: |a-b| <= max(atol, rtol*max(|a|,|b|))"]
    for tolerance, pairs in pairs_by_tolerance.items():
        lines += _wrap(f"  {', '.join(pairs)}: {tolerance}", indent="      ")
    return lines
