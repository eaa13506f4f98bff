"""What the case page shows of a deadline and of the case's facts, shaped for the templates.

A deadline's day-by-day explanation is the one ``deadlines --explain`` and ``calendar add
--explain`` print (:meth:`workflow.deadlines.calendars.Count.lines`): day 0 (not counted), every
day skipped with its kind, name and source, and the working day it ends on; then each pause and
resume from the deadline's history.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from workflow.deadlines.policies import Deadline, parse_utc

SHOWN_ELSEWHERE = frozenset({"coverage", "checklist"})
"""Facts the case page shows in sections of their own."""


@dataclass(frozen=True)
class Skipped:
    day: str
    kind: str
    name: str
    source: str


@dataclass(frozen=True)
class Change:
    event: str
    at: datetime | None
    used: int | None
    left: int | None


@dataclass(frozen=True)
class DeadlineView:
    policy: str
    state: str
    calendar: str
    due_at: datetime | None
    working_days: int
    start: str | None
    end: str | None
    counted: int | None
    skipped: tuple[Skipped, ...]
    warnings: tuple[str, ...]
    changes: tuple[Change, ...]


def deadline(d: Deadline) -> DeadlineView:
    e = d.explanation
    skipped = tuple(
        Skipped(str(s.get("date", "")), str(s.get("kind", "")), str(s.get("name", "")), str(s.get("source", "")))
        for s in e.get("skipped", []) if isinstance(s, Mapping)
    )  # fmt: skip
    changes = tuple(
        Change(str(h.get("event", "")), _instant(h.get("at")), _int(h.get("working_days_used")),
               _int(h.get("working_days_left")))
        for h in e.get("history", []) if isinstance(h, Mapping)
    )  # fmt: skip
    return DeadlineView(
        policy=d.policy, state=d.state, calendar=d.calendar, due_at=d.due_at, working_days=d.working_days,
        start=_text(e.get("start")), end=_text(e.get("end")), counted=_int(e.get("working_days")),
        skipped=skipped, warnings=tuple(str(w) for w in e.get("warnings", [])), changes=changes,
    )  # fmt: skip


def facts(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The case's facts but those with a section of their own, as (name, JSON text)."""
    return [(k, json.dumps(v, ensure_ascii=False, sort_keys=True)) for k, v in sorted(values.items())
            if k not in SHOWN_ELSEWHERE]  # fmt: skip


def _instant(value: Any) -> datetime | None:
    try:
        return parse_utc(value) if isinstance(value, str) else None
    except Exception:  # a stored explanation is shown as far as it reads
        return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
