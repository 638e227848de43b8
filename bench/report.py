"""Metrics, targets, the Rich table and the JSON file of one benchmark run.

Every number is kept per round (not only its median) so the spread can be
shown: a ratio between two medians means little if the rounds disagree. The
ratio is always ``orch / plain``; whether that is good depends on the metric,
so each metric says which direction is better and each target says which way
it must fall.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.table import Table

Better = Literal["higher", "lower"]


@dataclass(frozen=True)
class Target:
    """A pass/fail line: on the ratio orch/plain (``kind="ratio"``) or on orch's own value."""

    kind: Literal["ratio", "orch"]
    op: Literal[">=", "<="]
    value: float
    unit: str = ""

    def check(self, orch: float | None, ratio: float | None) -> bool | None:
        subject = ratio if self.kind == "ratio" else orch
        if subject is None:
            return None
        return subject >= self.value if self.op == ">=" else subject <= self.value

    def text(self) -> str:
        sign = "≥" if self.op == ">=" else "≤"
        if self.kind == "ratio":
            return f"orch/plain {sign} {self.value:g}×"
        return f"orch {sign} {self.value:g}{(' ' + self.unit) if self.unit else ''}"


@dataclass
class Metric:
    """One row: a measured quantity, one value per round for each side."""

    scenario: str
    name: str
    unit: str
    better: Better
    orch: list[float] = field(default_factory=list)
    plain: list[float] = field(default_factory=list)
    target: Target | None = None
    note: str = ""

    @staticmethod
    def _median(values: list[float]) -> float | None:
        return statistics.median(values) if values else None

    @property
    def orch_median(self) -> float | None:
        return self._median(self.orch)

    @property
    def plain_median(self) -> float | None:
        return self._median(self.plain)

    @property
    def ratio(self) -> float | None:
        o, p = self.orch_median, self.plain_median
        if o is None or p is None or p == 0:
            return None
        return o / p

    @property
    def passed(self) -> bool | None:
        return None if self.target is None else self.target.check(self.orch_median, self.ratio)

    def orch_wins(self) -> bool | None:
        """Whether orch is the better side on this metric (None without both sides)."""
        r = self.ratio
        if r is None:
            return None
        return r > 1 if self.better == "higher" else r < 1

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "unit": self.unit,
            "better": self.better,
            "orch": _side(self.orch),
            "plain": _side(self.plain),
            "ratio": self.ratio,
            "ratio_kind": "orch/plain",
            "orch_better": self.orch_wins(),
            "target": None
            if self.target is None
            else {
                "kind": self.target.kind,
                "op": self.target.op,
                "value": self.target.value,
                "text": self.target.text(),
            },
            "passed": self.passed,
            "note": self.note,
        }


def _side(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"median": None, "min": None, "max": None, "values": []}
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "values": values,
    }


@dataclass
class ScenarioResult:
    """Everything one scenario produced: rows for the table, and raw detail for the JSON."""

    key: str
    title: str
    metrics: list[Metric] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def metric(self, name: str, unit: str, better: Better, **kw: Any) -> Metric:
        m = Metric(self.key, name, unit, better, **kw)
        self.metrics.append(m)
        return m


def fmt(value: float | None) -> str:
    """Three significant digits, no exponent for everyday magnitudes."""
    if value is None:
        return "—"
    if value == 0:
        return "0"
    mag = abs(value)
    if mag >= 1000:
        return f"{value:,.0f}"
    if mag >= 100:
        return f"{value:.0f}"
    if mag >= 10:
        return f"{value:.1f}"
    if mag >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _spread(values: list[float]) -> str:
    return f"{fmt(min(values))}–{fmt(max(values))}" if values else "—"


def _ratio_cell(m: Metric) -> str:
    r = m.ratio
    if r is None:
        return "—"
    wins = m.orch_wins()
    who = "orch better" if wins else ("plain better" if r != 1 else "even")
    return f"{r:.2f}× ({who})"


def _result_cell(m: Metric) -> str:
    if m.passed is None:
        return "[dim]info[/dim]" if m.target is None else "[yellow]n/a[/yellow]"
    return "[green]PASS[/green]" if m.passed else "[red]FAIL[/red]"


def render(results: list[ScenarioResult], console: Console, *, title: str) -> None:
    """One table for the whole run, then the notes that qualify its numbers."""
    table = Table(title=title, show_lines=False, expand=False)
    right = {"justify": "right", "no_wrap": True}
    for col, kw in (
        ("sc", {"no_wrap": True}),
        ("metric", {}),
        ("unit", {"no_wrap": True}),
        ("orch median", right),
        ("plain median", right),
        ("orch min–max", right),
        ("plain min–max", right),
        ("ratio orch/plain", right),
        ("target", {"no_wrap": True}),
        ("", {"no_wrap": True}),
    ):
        table.add_column(col, **kw)
    for res in results:
        for i, m in enumerate(res.metrics):
            table.add_row(
                res.key if i == 0 else "",
                m.name,
                f"{m.unit} {'↑' if m.better == 'higher' else '↓'}",
                fmt(m.orch_median),
                fmt(m.plain_median),
                _spread(m.orch),
                _spread(m.plain),
                _ratio_cell(m),
                m.target.text() if m.target else "—",
                _result_cell(m),
                end_section=i == len(res.metrics) - 1,
            )
    console.print(table)
    console.print("↑ / ↓: higher / lower is better. Ratios are orch/plain of the medians.")
    for res in results:
        for note in res.notes:
            console.print(f"[bold]{res.key}[/bold]: {note}", highlight=False)


def write_json(
    path: Path, results: list[ScenarioResult], *, machine: dict[str, Any], meta: dict[str, Any]
) -> None:
    doc = {
        **meta,
        "machine": machine,
        "scenarios": {
            r.key: {
                "title": r.title,
                "seconds": r.seconds,
                "metrics": [m.as_json() for m in r.metrics],
                "notes": r.notes,
                "details": r.details,
            }
            for r in results
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
