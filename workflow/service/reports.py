"""Reports: aggregate figures per route over a period, read side of the service layer.

:class:`Reports` reads, in one read unit of work (one snapshot), the cases of one organisation
(or all, for the operator's CLI), the transitions of ``return_advice`` in the period (one named
query, ``transitions_of_event_between``), and the transitions and deadlines of the cases it needs
in batches of :data:`BATCH` case ids (``for_cases``); the figures themselves are the pure
functions of :mod:`workflow.service.report_figures`. A report names no case and no patient: it
holds counts and spreads only. Who may read one, and the access record it leaves, is
:meth:`workflow.service.access.AccessService.report`. Definitions: docs/reports.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar

from workflow.cases.case import Case
from workflow.clock import AMSTERDAM, as_utc, utc_iso
from workflow.deadlines.calendar_data import FIRST_YEAR
from workflow.deadlines.calendars import LAST_YEAR, Calendar, local_date
from workflow.deadlines.policies import BREACHED, MET, Deadline, DeadlinePolicy, calendar_of
from workflow.errors import ValidationError
from workflow.service import inputs
from workflow.service.recording import readable
from workflow.service.report_figures import (
    Spread,
    WorkingDayIndex,
    breaches_by_month,
    calendar_days,
    counted_working_days,
    outcome,
)
from workflow.service.runtime import Runtime

BATCH = 1000
"""Case ids per ``for_cases`` read: bounded statements (and parameter arrays) at any size."""
MAX_PERIOD_DAYS = 5 * 366
"""The longest period a report covers (five years)."""
END_EVENT = "return_advice"
"""Lead time runs from the case's opening (the request) to this event (the advice returned)."""
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_T = TypeVar("_T")


@dataclass(frozen=True)
class Period:
    """Dates in Europe/Amsterdam, both included."""

    first: date
    last: date

    @property
    def since(self) -> datetime:
        """00:00 Europe/Amsterdam of the first day, in UTC."""
        return as_utc(datetime.combine(self.first, time(0), AMSTERDAM), "from")

    @property
    def until(self) -> datetime:
        """00:00 Europe/Amsterdam of the day after the last, in UTC (excluded)."""
        return as_utc(datetime.combine(self.last + timedelta(days=1), time(0), AMSTERDAM), "to")

    def holds(self, at: datetime) -> bool:
        return self.since <= at < self.until

    @property
    def months(self) -> list[str]:
        """Every month the period touches, ``YYYY-MM``, in order."""
        out, year, month = [], self.first.year, self.first.month
        while (year, month) <= (self.last.year, self.last.month):
            out.append(f"{year:04d}-{month:02d}")
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return out


def _date(option: str, text: str) -> date:
    if not isinstance(text, str) or not _DATE.fullmatch(text):
        raise ValidationError(option, "is not a date written YYYY-MM-DD")  # what was typed is not repeated
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValidationError(option, f"{text} is not a date in the calendar") from None
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise ValidationError(option, f"{text} is outside the supported years {FIRST_YEAR}-{LAST_YEAR}")
    return day


def period(first: str | None, last: str | None, now: datetime) -> Period:
    """The period from ``--from``/``--to`` (``YYYY-MM-DD``, Europe/Amsterdam, both included).

    Without ``to``: today. Without ``from``: the first day of the eleventh month before ``to``'s
    (twelve calendar months, the current one included). At most :data:`MAX_PERIOD_DAYS` days."""
    end = _date("to", last) if last is not None else local_date(now)
    if first is not None:
        start = _date("from", first)
    else:
        year, month = divmod(end.year * 12 + end.month - 1 - 11, 12)
        start = date(year, month + 1, 1)
    if start > end:
        raise ValidationError("from", f"{start.isoformat()} is after to {end.isoformat()}")
    if (end - start).days + 1 > MAX_PERIOD_DAYS:
        raise ValidationError("from", f"the period has {(end - start).days + 1} days; at most {MAX_PERIOD_DAYS}")
    return Period(start, end)


@dataclass(frozen=True)
class TermFigures:
    """Complete dossier to report, against one deadline policy's term (Royal Doctors' 18 days)."""

    policy: str
    term_working_days: int
    calendar: str
    calendar_days: Spread
    working_days: Spread
    counted_working_days: Spread
    within_term: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy, "term_working_days": self.term_working_days, "calendar": self.calendar,
            "calendar_days": self.calendar_days.as_dict(), "working_days": self.working_days.as_dict(),
            "counted_working_days": self.counted_working_days.as_dict(), "within_term": self.within_term,
        }  # fmt: skip


@dataclass(frozen=True)
class RouteFigures:
    route: str
    advice_returned: int
    lead_time_calendar_days: Spread
    lead_time_working_days: Spread | None
    calendar: str | None
    dossier_to_report: tuple[TermFigures, ...]
    deadlines_met: int
    deadlines_breached: int
    breaches_per_month: dict[str, int]
    cases_per_state: dict[str, int]

    @property
    def share_on_time(self) -> float | None:
        decided = self.deadlines_met + self.deadlines_breached
        return None if decided == 0 else self.deadlines_met / decided

    def as_dict(self) -> dict[str, Any]:
        share = self.share_on_time
        return {
            "route": self.route,
            "advice_returned": self.advice_returned,
            "lead_time": {
                "calendar_days": self.lead_time_calendar_days.as_dict(),
                "working_days": None if self.lead_time_working_days is None else self.lead_time_working_days.as_dict(),
                "calendar": self.calendar,
            },
            "dossier_to_report": [t.as_dict() for t in self.dossier_to_report],
            "deadlines": {
                "met": self.deadlines_met,
                "breached": self.deadlines_breached,
                "share_on_time": None if share is None else round(share, 4),
            },
            "breaches_per_month": dict(self.breaches_per_month),
            "cases_per_state": dict(self.cases_per_state),
        }


@dataclass(frozen=True)
class Report:
    """Figures per route over a period; counts and spreads only, no case and no patient."""

    period: Period
    generated_at: datetime
    organisation: str | None
    routes: tuple[RouteFigures, ...]

    def route(self, name: str) -> RouteFigures:
        return next(r for r in self.routes if r.route == name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.period.first.isoformat(),
            "to": self.period.last.isoformat(),
            "timezone": "Europe/Amsterdam",
            "generated_at": utc_iso(self.generated_at),
            "organisation": self.organisation,
            "percentile_method": "linear interpolation between closest ranks (type 7)",
            "routes": [r.as_dict() for r in self.routes],
        }


def batches(items: Sequence[_T], size: int = BATCH) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Reports:
    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime
        self._indexes: dict[str, WorkingDayIndex] = {}

    def _index(self, calendar: Calendar) -> WorkingDayIndex:
        """One running count per calendar for the whole report (see :class:`WorkingDayIndex`)."""
        if calendar.name not in self._indexes:
            self._indexes[calendar.name] = WorkingDayIndex(calendar)
        return self._indexes[calendar.name]

    def summary(self, organisation: str | None, route: str | None, span: Period) -> Report:
        """The report of ``organisation``'s cases (every organisation's: None) on ``route`` (all: None)."""
        definition = self._rt.definition
        if route is not None:
            inputs.check_route(definition, route)
        if organisation is not None and not inputs.IDENTIFIER.fullmatch(organisation):
            raise ValidationError("organisation", "is not an identifier")
        now = self._rt.clock.now()
        routes = [route] if route is not None else list(definition.route_names)
        # the routes with a term that ends on the advice need each finished case's start of that term
        termed = {name for name in routes for p in self._rt.policies if name in p.routes and END_EVENT in p.stops_on}
        since, until = span.since, span.until
        with readable(), self._rt.uow(False) as uow:
            cases = {c.id: c for c in uow.cases.list(None, organisation=organisation, route=route)}
            returned = uow.transitions.of_event_between(END_EVENT, since, until)
            ended = {t.case_id: t.occurred_at for t in returned if t.case_id in cases}
            finished = sorted(i for i in ended if cases[i].route in termed)
            steps: dict[str, dict[str, datetime]] = {}
            for chunk in batches(finished):
                found = uow.transitions.for_cases(chunk)
                for case_id in chunk:
                    steps[case_id] = {t.event: t.occurred_at for t in found.of(case_id)}
            # deadlines can be decided in the period only on cases opened before it ends
            candidates = [i for i, c in cases.items() if c.opened_at < until]
            deadlines: list[Deadline] = []
            for chunk in batches(candidates):
                found_deadlines = uow.deadlines.for_cases(chunk, lazy=True)
                for case_id in chunk:
                    deadlines.extend(found_deadlines.of(case_id))
        figures = tuple(
            self._route(name, [c for c in cases.values() if c.route == name], ended, steps, deadlines, span, now)
            for name in routes
        )
        return Report(span, now, organisation, figures)

    def _route(
        self, name: str, cases: list[Case], ended: dict[str, datetime], steps: dict[str, dict[str, datetime]],
        deadlines: list[Deadline], span: Period, now: datetime,
    ) -> RouteFigures:  # fmt: skip
        ids = {c.id for c in cases}
        policies = [p for p in self._rt.policies if name in p.routes]
        calendar = policies[0].calendar if policies else None
        index = None if calendar is None else self._index(self._rt.calendars(calendar))
        done = [c for c in cases if c.id in ended]
        lead_days = [float(calendar_days(c.opened_at, ended[c.id])) for c in done]
        lead_work = None if index is None else Spread.of(
            [float(index.between(local_date(c.opened_at), local_date(ended[c.id]))) for c in done])
        mine = [d for d in deadlines if d.case_id in ids]
        since, until = span.since, span.until
        decided = [o for d in mine if (o := outcome(d, now)) is not None and since <= o[1] < until]
        terms = tuple(self._term(p, [d for d in mine if d.policy == p.name and d.case_id in ended], steps)
                      for p in policies if END_EVENT in p.stops_on)  # fmt: skip
        states = {s.name: 0 for s in self._rt.definition.states}
        for c in cases:
            states[c.state] = states.get(c.state, 0) + 1
        return RouteFigures(
            route=name, advice_returned=len(done), lead_time_calendar_days=Spread.of(lead_days),
            lead_time_working_days=lead_work, calendar=calendar, dossier_to_report=terms,
            deadlines_met=sum(1 for o in decided if o[0] == MET),
            deadlines_breached=sum(1 for o in decided if o[0] == BREACHED),
            breaches_per_month=breaches_by_month(mine, now, span.months), cases_per_state=states,
        )  # fmt: skip

    def _term(
        self, policy: DeadlinePolicy, stopped: list[Deadline], steps: dict[str, dict[str, datetime]]
    ) -> TermFigures:
        days, work, counted = [], [], []
        for d in stopped:
            start, end = steps.get(d.case_id, {}).get(policy.starts_on), steps.get(d.case_id, {}).get(END_EVENT)
            if start is None or end is None or d.stopped_at is None:
                continue
            index = self._index(calendar_of(d, self._rt.calendars))
            days.append(float(calendar_days(start, end)))
            work.append(float(index.between(local_date(start), local_date(end))))
            used = counted_working_days(d, index)
            if used is not None:
                counted.append(float(used))
        return TermFigures(
            policy=policy.name, term_working_days=policy.working_days, calendar=policy.calendar,
            calendar_days=Spread.of(days), working_days=Spread.of(work), counted_working_days=Spread.of(counted),
            within_term=sum(1 for c in counted if c <= policy.working_days),
        )  # fmt: skip
