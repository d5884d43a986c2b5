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
    rows = [("figure", "value", "unit")]
    section = None
    lines: list[tuple[str, str, str] | None] = []
    for fig in figures:
        if fig.section != section:
            section = fig.section
            lines.append(None)
            lines.append((f"[{section}]", "", ""))
        lines.append((fig.figure, fig.rendered_value(), fig.unit))
    widths = [max(len(r[i]) for r in rows + [x for x in lines if x]) for i in range(3)]

    def fmt(row: tuple[str, str, str]) -> str:
        return f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]}".rstrip()

    out = [fmt(rows[0]), "-" * (sum(widths) + 4)]
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
            {"section": f.section, "figure": f.figure, "value": clean(f.value), "unit": f.unit}
            for f in figures
        ],
        **details,
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
