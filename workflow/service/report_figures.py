"""The figures of a report, as pure functions over cases, transitions and deadlines (no I/O).

:mod:`workflow.service.reports` reads the rows (in bounded batches, one snapshot) and hands them
here; every definition below is spelled out for people in docs/reports.md, and each is tested on
small hand-computed samples (tests/service/test_report_figures.py).

- Percentiles use **linear interpolation between closest ranks** (Hyndman and Fan's type 7, the
  default of numpy and of ``statistics.quantiles(method="inclusive")``): for sorted values
  ``x[0..n-1]`` the p-th percentile lies at position ``h = (n - 1) * p / 100``, that is
  ``x[floor(h)] + (h - floor(h)) * (x[floor(h) + 1] - x[floor(h)])``. So the median of an even
  number of values is the mean of the middle two, and no percentile lies outside the values.
- Calendar days are whole days between the Europe/Amsterdam dates of two moments; working days
  follow the deadline counting rule (:func:`workflow.deadlines.calendars.working_days_between`:
  the days after the first date up to and including the last that are working days).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from workflow.clock import AMSTERDAM
from workflow.deadlines.calendars import Calendar, local_date
from workflow.deadlines.policies import BREACHED, LATE, MET, RUNNING, Deadline

P90 = 90.0


def percentile(values: Sequence[float], p: float) -> float | None:
    """The ``p``-th percentile (0-100) by linear interpolation (type 7); None for no values."""
    if not 0 <= p <= 100:
        raise ValueError(f"percentile {p!r} is not between 0 and 100")
    if not values:
        return None
    ordered = sorted(values)
    h = (len(ordered) - 1) * p / 100
    low = math.floor(h)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (h - low) * (ordered[high] - ordered[low]))


@dataclass(frozen=True)
class Spread:
    """How many values, their median and their 90th percentile (None when there are none)."""

    n: int
    median: float | None
    p90: float | None

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(len(values), percentile(values, 50), percentile(values, P90))

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "median": _rounded(self.median), "p90": _rounded(self.p90)}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


class WorkingDayIndex:
    """Working days between two dates on one calendar in O(1) after a one-off walk of the range.

    ``between(a, b)`` is :func:`~workflow.deadlines.calendars.working_days_between` (working days
    after ``a`` up to and including ``b``), computed as the difference of running counts, so that
    a report over 100k cases walks each calendar day once, not once per case."""

    def __init__(self, calendar: Calendar) -> None:
        self.calendar = calendar
        self._first: date | None = None
        self._counts: list[int] = []  # working days from _first up to and including _first + i

    def _cover(self, first: date, last: date) -> None:
        if self._first is not None and self._first <= first and last < self._first + timedelta(len(self._counts)):
            return
        lo = first if self._first is None else min(first, self._first)
        hi = last if self._first is None else max(last, self._first + timedelta(len(self._counts) - 1))
        counts, running, day = [], 0, lo
        while day <= hi:
            running += self.calendar.day_off(day) is None
            counts.append(running)
            day += timedelta(days=1)
        self._first, self._counts = lo, counts

    def between(self, start: date, end: date) -> int:
        if end < start:
            raise ValueError(f"{end.isoformat()} is before {start.isoformat()}")
        self._cover(start, end)
        assert self._first is not None
        return self._counts[(end - self._first).days] - self._counts[(start - self._first).days]


def calendar_days(start: datetime, end: datetime) -> int:
    """Whole days between the Europe/Amsterdam dates of two moments."""
    return (local_date(end) - local_date(start)).days


def month_of(at: datetime) -> str:
    """``YYYY-MM`` of a moment in Europe/Amsterdam."""
    return at.astimezone(AMSTERDAM).strftime("%Y-%m")


# --- deadlines ------------------------------------------------------------------------------------


def outcome(d: Deadline, now: datetime) -> tuple[str, datetime] | None:
    """What a deadline contributes to the on-time share, and when it was decided.

    - met (stopped by its stop event in time, or while paused): ``("met", stopped_at)``;
    - breached: recorded by the sweep (``breached``, also when stopped later), stopped after its
      due moment before a sweep saw it (``late``), or still running with its due moment passed
      (the sweep has not run yet): ``("breached", due_at)``, the moment it was missed;
    - anything else (running and not yet due, paused, cancelled): None, it counts nowhere.
    """
    if d.state == MET and d.stopped_at is not None:
        return MET, d.stopped_at
    if d.due_at is not None and (d.state in (BREACHED, LATE) or (d.state == RUNNING and d.due_at <= now)):
        return BREACHED, d.due_at
    return None


def counted_working_days(d: Deadline, index: WorkingDayIndex) -> int | None:
    """The working days a stopped deadline's clock ran (pauses left out), or None if not stopped.

    The clock's own accounting: the days used up by each pause (``working_days_used`` in its
    history note) plus, unless it was stopped while paused, the working days from the start of the
    last running stretch (``started_at``) to the stop."""
    if d.stopped_at is None:
        return None
    # the history holds one note per change of the clock, the stop last: pauses (with
    # ``working_days_used``), resumes (without) and the stop (without)
    history = [h for h in d.explanation.get("history", []) if isinstance(h, Mapping)]
    used = sum(int(h["working_days_used"]) for h in history if "working_days_used" in h)
    before_stop = history[:-1]
    if before_stop and "working_days_used" in before_stop[-1]:  # stopped while paused
        return used
    return used + index.between(local_date(d.started_at), local_date(d.stopped_at))


def breaches_by_month(deadlines: Iterable[Deadline], now: datetime, months: Sequence[str]) -> dict[str, int]:
    """Breached deadlines (see :func:`outcome`) by the Europe/Amsterdam month of their due moment,
    for each of ``months`` (zero where none)."""
    counts = dict.fromkeys(months, 0)
    for d in deadlines:
        found = outcome(d, now)
        if found is not None and found[0] == BREACHED:
            month = month_of(found[1])
            if month in counts:
                counts[month] += 1
    return counts
