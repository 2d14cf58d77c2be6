"""The bench's table: each row one measured value, its ratios and its target, printed and saved alike.

A row is data first (``Row``: numbers in ``values``, ``checks`` against targets); the printed line
and the JSON entry are both made from it, so results.json holds every number the table shows.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Check", "Row", "render", "to_json"]

_OPS: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, "<=": operator.le, "<": operator.lt}


@dataclass(frozen=True, slots=True)
class Check:
    """``value op target`` (e.g. ``21.3 >= 30`` "x DepthCache"): whether this run meets a target."""

    name: str
    value: float
    op: str
    target: float
    unit: str = ""

    @property
    def met(self) -> bool:
        return _OPS[self.op](self.value, self.target)

    def text(self) -> str:
        verdict = "MET" if self.met else f"MISSED by {_miss(self):.0%}"
        return f"{self.name} {_num(self.value)}{self.unit} (target {self.op} {_num(self.target)}{self.unit}: {verdict})"


@dataclass(frozen=True, slots=True)
class Row:
    """``values``: every number of the row, by name, shown as ``name value`` unless listed in ``shown``."""

    key: str
    label: str
    values: dict[str, float | int | str | None]
    checks: list[Check] = field(default_factory=list)
    note: str = ""
    shown: tuple[str, ...] | None = None  # which values the line prints (all by default)

    def text(self) -> str:
        names = self.shown if self.shown is not None else tuple(self.values)
        parts = [f"{name} {_num(self.values[name])}" for name in names]
        parts += [c.text() for c in self.checks]
        line = f"{self.label}: " + ", ".join(parts)
        return line + (f"  [{self.note}]" if self.note else "")


def _miss(check: Check) -> float:
    """How far from the target, as a share of it (lower-is-better targets: over it)."""
    if check.target == 0:
        return float("inf")
    return abs(check.value - check.target) / abs(check.target)


def _num(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # nan
            return "n/a"
        return f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "n/a" if value is None else str(value)


def render(rows: list[Row]) -> str:
    return "\n".join(row.text() for row in rows)


def to_json(rows: list[Row]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for row in rows:
        entry = asdict(row)
        entry.pop("shown")
        entry["checks"] = [dict(asdict(c), met=c.met) for c in row.checks]
        entry["line"] = row.text()
        out[row.key] = entry
    return out
