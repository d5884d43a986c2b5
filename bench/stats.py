"""Percentiles and the printed/written report."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear interpolation between closest ranks; NaN for no values. An infinite value (a
    request never answered, an order never seen credited) makes every rank it reaches infinite."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    if rank == low or math.isinf(ordered[high]):
        return ordered[low] if rank == low else ordered[high]
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def finite(value: Any) -> Any:
    """JSON has no NaN or infinity: None stands for them, in nested data too."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Figure:
    section: str
    figure: str
    value: int | float | str | None  # None: not measured (NaN, as JSON gives it back)
    unit: str = ""
    target: str = ""  # as the issue states it (">= 0.70", "<= 50 ms")
    ratio: float | None = None  # value / target, for a figure with a numeric target
    passed: bool | None = None  # None: a figure without a target

    def verdict(self) -> str:
        return "" if self.passed is None else ("pass" if self.passed else "FAIL")

    def rendered_value(self) -> str:
        value = self.value
        if value is None:
            return "n/a"
        if isinstance(value, float):
            if math.isnan(value):
                return "n/a"
            if math.isinf(value):
                return "never"
            return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
        if isinstance(value, int):
            return f"{value:,}"
        return value


def against(
    section: str,
    figure: str,
    value: float,
    unit: str,
    op: str,
    limit: float,
    *,
    also: bool = True,
    why_not: str = "",
) -> Figure:
    """A figure with a numeric target (`op` is ">=" or "<="): its ratio to the target, and
    pass only when it meets it and `also` holds (e.g. no request failed in that run). A NaN
    value (not measured) fails."""
    met = value >= limit if op == ">=" else value <= limit
    unit = f"{unit} ({why_not})" if why_not and not also else unit
    return Figure(
        section,
        figure,
        value,
        unit,
        target=f"{op} {limit:g}",
        ratio=value / limit if limit and math.isfinite(value) else None,
        passed=bool(met and also and not math.isnan(value)),
    )


WIDE = 24  # a value longer than this (a sentence) gets a line of its own


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
    rows = [head, *(x for x in lines if x and len(x[1]) <= WIDE)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]

    def fmt(row: tuple[str, ...]) -> str:
        name, value, unit, target, ratio, verdict = row
        if len(value) > WIDE:
            return f"{name}: {value} {unit}".rstrip() + (f"  {verdict}" if verdict else "")
        return (
            f"{name:<{widths[0]}}  {value:>{widths[1]}}  {unit:<{widths[2]}}  "
            f"{target:<{widths[3]}}  {ratio:>{widths[4]}}  {verdict}"
        ).rstrip()

    out = [fmt(head), "-" * (sum(widths) + 2 * (len(head) - 1))]
    for line in lines:
        out.append("" if line is None else fmt(line))
    return "\n".join(out[:2] + out[3:])  # no blank line right under the rule


def write_json(path: Path, figures: Sequence[Figure], details: dict[str, Any]) -> None:
    document = {
        "figures": [
            {
                "section": f.section,
                "figure": f.figure,
                "value": f.value,
                "unit": f.unit,
                "target": f.target or None,
                "ratio_to_target": f.ratio,
                "passed": f.passed,
            }
            for f in figures
        ],
        **details,
    }
    path.write_text(json.dumps(finite(document), indent=2, default=str) + "\n")
