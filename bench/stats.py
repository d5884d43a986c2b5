"""Percentiles and the printed/written report."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear interpolation between closest ranks; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True, slots=True)
class Figure:
    section: str
    figure: str
    value: int | float | str
    unit: str = ""
    target: str = ""  # as the issue states it ("≥ 0.40", "≤ 50 ms")
    ratio: float | None = None  # to the no-I/O ceiling, for intake throughput
    passed: bool | None = None  # None: a figure without a target

    def verdict(self) -> str:
        return "" if self.passed is None else ("pass" if self.passed else "FAIL")

    def rendered_value(self) -> str:
        value = self.value
        if isinstance(value, float):
            if math.isnan(value):
                return "n/a"
            return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
        if isinstance(value, int):
            return f"{value:,}"
        return value


def table(figures: Sequence[Figure]) -> str:
    head = ("figure", "value", "unit", "target", "ratio", "pass")
    section = None
    lines: list[tuple[str, ...] | None] = []
    for fig in figures:
        if fig.section != section:
            section = fig.section
            lines.append(None)
            lines.append((f"[{section}]", "", "", "", "", ""))
        ratio = "" if fig.ratio is None or math.isnan(fig.ratio) else f"{fig.ratio:.2f}"
        lines.append((fig.figure, fig.rendered_value(), fig.unit, fig.target, ratio, fig.verdict()))
    rows = [head, *(x for x in lines if x)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]

    def fmt(row: tuple[str, ...]) -> str:
        name, value, unit, target, ratio, verdict = row
        return (
            f"{name:<{widths[0]}}  {value:>{widths[1]}}  {unit:<{widths[2]}}  "
            f"{target:<{widths[3]}}  {ratio:>{widths[4]}}  {verdict}"
        ).rstrip()

    out = [fmt(head), "-" * (sum(widths) + 2 * (len(head) - 1))]
    for line in lines:
        out.append("" if line is None else fmt(line))
    return "\n".join(out[:2] + out[3:])  # no blank line right under the rule


def write_json(path: Path, figures: Sequence[Figure], details: dict[str, Any]) -> None:
    def clean(value: Any) -> Any:
        if isinstance(value, float) and math.isnan(value):
            return None
        return value

    document = {
        "figures": [
            {
                "section": f.section,
                "figure": f.figure,
                "value": clean(f.value),
                "unit": f.unit,
                "target": f.target or None,
                "ratio_to_ceiling": clean(f.ratio),
                "passed": f.passed,
            }
            for f in figures
        ],
        **details,
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
