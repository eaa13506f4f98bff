"""Figures: one row each, printed as a table and written as JSON.

Every figure is a ratio of the library's cost to a floor measured in the same run on the same
machine (higher is slower), except the sweep's, which is a growth factor (its time among the
most open deadlines over its time among the fewest), and the workers', whose ratio is the time
of N worker processes over one's.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Figure:
    id: str
    what: str
    unit: str
    value: float
    floor: float
    ratio: float
    goal: str | None = None
    met: bool | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def table(figures: list[Figure]) -> str:
    header = f"{'figure':<26}{'unit':<16}{'library':>12}{'floor':>12}{'ratio':>9}  {'goal':<14}{'met':<5}"
    lines = [header, "-" * len(header)]
    for f in figures:
        met = "" if f.met is None else ("yes" if f.met else "NO")
        lines.append(f"{f.id:<26}{f.unit:<16}{_num(f.value):>12}{_num(f.floor):>12}{f.ratio:>9.2f}  "
                     f"{f.goal or '':<14}{met:<5}")  # fmt: skip
    return "\n".join(lines)


def _num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def write_json(path: str | Path, meta: dict[str, Any], figures: list[Figure]) -> None:
    document = {"meta": meta, "figures": {f.id: asdict(f) for f in figures}}
    Path(path).write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
