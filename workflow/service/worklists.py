"""Work lists: the cases a coordinator works from, one page at a time.

What is overdue (a due moment passed, the deadline not stopped: running or breached), what is due
within N working days, with the working days late or left counted on each deadline's own calendar;
filters on patient reference, state, route, provider, organisation, assignee and last change; a
fixed set of orders; keyset pagination with a validated cursor. One read unit of work per page
(one snapshot). Filters and orders run in SQL, on the columns storage derives (see
:mod:`workflow.listing`); only "due within" is refined here, per deadline calendar, inside a
range SQL has already narrowed.

Stability under concurrent writes: a page continues strictly after the (sort key, case id) of the
last row shown. Ordered by opening (the default), the key never changes, so a walk shows every case
that existed when it started exactly once, whatever is written between pages. A key that changes
(last change, due moment) can move a case across the cursor: ordered by ``updated`` ascending a
case changed during the walk shows again at its new place; see docs/api.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from workflow.cases.case import Case
from workflow.clock import AMSTERDAM, utc_iso
from workflow.deadlines.calendars import CALENDARS, add_working_days, end_of_day, local_date
from workflow.deadlines.calendars import working_days_between as between
from workflow.deadlines.policies import Deadline, calendar_of
from workflow.errors import ValidationError
from workflow.listing import (
    CaseFilter,
    Listed,
    Position,
    check_limit,
    decode_cursor,
    encode_cursor,
    is_open,
    parse_sort,
    query_fingerprint,
    sort_key,
)
from workflow.ports import UnitOfWork
from workflow.service import inputs
from workflow.service.recording import readable
from workflow.service.runtime import Runtime
from workflow.service.views import Views

MAX_DUE_WITHIN = 250
"""``due within N working days``: a year of working days is the longest horizon a work list needs."""


@dataclass(frozen=True)
class WorkListQuery:
    """A page of a work list as asked (by the CLI, the API or a program); every field optional."""

    patient_ref: str | None = None
    state: str | None = None
    route: str | None = None
    provider: str | None = None
    organisation: str | None = None
    assignee: str | None = None
    updated_since: datetime | None = None
    overdue: bool = False
    due_within: int | None = None
    due_before: datetime | None = None
    sort: str | None = None
    limit: int | None = None
    cursor: str | None = None

    def fingerprint(self) -> str:
        """What a cursor is bound to: every filter and the order, not the page size or position."""
        parts = {k: v for k, v in self.__dict__.items() if k not in ("limit", "cursor")}
        return query_fingerprint({**parts, "overdue": self.overdue or None})


@dataclass(frozen=True)
class Row:
    """A case on a work list: its work-list due moment, the open deadline it comes from, and the
    working days late (due moment passed) or left, counted on that deadline's own calendar."""

    case: Case
    due_at: datetime | None
    deadline: Deadline | None
    working_days_late: int | None
    working_days_left: int | None

    def as_dict(self) -> dict[str, Any]:
        due = None if self.deadline is None else self.deadline.due_at
        return {
            # the due moment alone: Deadline.as_dict would decode the explanation, read lazily here
            "due_at": None if due is None else utc_iso(due),
            "due_local": None if due is None else due.astimezone(AMSTERDAM).isoformat(),
            "deadline": None if self.deadline is None else self.deadline.id,
            "deadline_state": None if self.deadline is None else self.deadline.state,
            "working_days_late": self.working_days_late,
            "working_days_left": self.working_days_left,
        }


@dataclass(frozen=True)
class Page:
    rows: list[Row]
    next_cursor: str | None

    @property
    def cases(self) -> list[Case]:
        return [r.case for r in self.rows]


def check(runtime: Runtime, query: WorkListQuery) -> None:
    """Every value of ``query`` within its rule, before anything is read; :class:`ValidationError` naming it."""
    definition = runtime.definition
    inputs.check_state(definition, query.state)
    if query.route is not None:
        inputs.check_route(definition, query.route)
    for name in ("patient_ref", "provider", "assignee"):  # (an organisation no case has matches none, as always)
        value = getattr(query, name)
        if value is not None:
            inputs.check_id(name, value)
    if query.due_within is not None:
        n = query.due_within
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_DUE_WITHIN:
            raise ValidationError("due_within", f"{n!r} must be a whole number of working days from 0 to "
                                  f"{MAX_DUE_WITHIN}")  # fmt: skip
        if query.overdue:
            raise ValidationError("due_within", "overdue and due within exclude each other: ask for one list")
    for name in ("updated_since", "due_before"):
        value = getattr(query, name)
        if value is not None:
            inputs.in_supported_years(name, value)
    parse_sort(query.sort)
    check_limit(query.limit)


class WorkLists:
    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime

    def page(self, query: WorkListQuery, *, visible: CaseFilter | None = None) -> Page:
        """One page of the work list ``query`` asks for, within ``visible`` (the caller's
        organisation and, for a patient, their own reference; None: every case)."""
        check(self._rt, query)
        order, descending = parse_sort(query.sort)
        limit = check_limit(query.limit)
        fingerprint = query.fingerprint()
        position = None if query.cursor is None else decode_cursor(query.cursor, fingerprint)
        now = self._rt.clock.now()
        where = self._filter(query, now, visible)
        if where is None or (query.organisation is not None and not inputs.IDENTIFIER.fullmatch(query.organisation)):
            return Page([], None)  # no case has such an organisation (checked at opening); its bytes are not sent
        with readable(), self._rt.uow(False) as uow:
            rows, last = self._collect(uow, where, order, descending, position, limit, query, now)
        if len(rows) <= limit:
            return Page(rows, None)
        return Page(rows[:limit], encode_cursor(last[limit - 1], fingerprint))

    def counts(self, query: WorkListQuery, *, visible: CaseFilter | None = None) -> dict[str, int]:
        """Cases per state for the filters of ``query`` (a board's columns); order and page ignored.
        "Due within" counts by the SQL range (the latest cut-off of the calendars)."""
        check(self._rt, query)
        where = self._filter(query, self._rt.clock.now(), visible)
        if where is None or (query.organisation is not None and not inputs.IDENTIFIER.fullmatch(query.organisation)):
            return {}
        with readable(), self._rt.uow(False) as uow:
            return uow.cases.counts(where)

    def deadlines(
        self, *, overdue: bool = False, due_within: int | None = None, due_before: datetime | None = None
    ) -> list[tuple[Deadline, int | None, int | None]]:
        """Open deadlines that are overdue (due moment passed), or due within N working days on
        their own calendar, by due moment; each with (working days late, working days left)."""
        check(self._rt, WorkListQuery(overdue=overdue, due_within=due_within, due_before=due_before))
        now = self._rt.clock.now()
        views = Views(self._rt)
        if overdue:
            found = views.deadlines(overdue=True, due_before=due_before)
        else:
            cutoff = self._latest_cutoff(now, due_within or 0)
            cutoff += timedelta(microseconds=1)  # the cut-off moment itself is within
            found = views.deadlines(due_from=now, due_before=cutoff if due_before is None else min(cutoff, due_before))
        rows = [(d, *working_days(d, now, self._rt)) for d in found]
        if due_within is None:
            return rows
        return [(d, late, left) for d, late, left in rows if left is not None and left <= due_within]

    def _filter(self, query: WorkListQuery, now: datetime, visible: CaseFilter | None) -> CaseFilter | None:
        asked = CaseFilter(
            organisation=query.organisation, state=query.state, route=query.route, provider=query.provider,
            assignee=query.assignee, patient_ref=query.patient_ref, updated_since=query.updated_since,
            due_before=query.due_before,
        )  # fmt: skip
        if query.overdue:
            asked = replace(asked, due_before=now if query.due_before is None else min(now, query.due_before))
        if query.due_within is not None:
            asked = replace(asked, due_from=now, due_to=self._latest_cutoff(now, query.due_within))
        if visible is None:
            return asked
        for name in ("organisation", "patient_ref"):
            mine, theirs = getattr(visible, name), getattr(asked, name)
            if mine is not None and theirs is not None and mine != theirs:
                return None  # nothing the caller may see has that value
            if mine is not None:
                asked = replace(asked, **{name: mine})
        return asked

    def _latest_cutoff(self, now: datetime, n: int) -> datetime:
        """The end of the Nth working day from today on the calendar that reaches furthest: every
        deadline due within N working days on its own calendar is due by then."""
        today = local_date(now)
        return max(end_of_day(add_working_days(self._rt.calendars(name), today, n).end) for name in CALENDARS)

    def _collect(
        self, uow: UnitOfWork, where: CaseFilter, order: str, descending: bool, position: Position | None,
        limit: int, query: WorkListQuery, now: datetime,
    ) -> tuple[list[Row], list[Position]]:  # fmt: skip
        """Up to ``limit + 1`` rows after ``position``, with the position of each. Ordered by due
        moment, the cases with one come first, then those without (by id): two phases of keyset."""
        phases = [(order, where)]
        dated_only = any(v is not None for v in (where.due_before, where.due_from, where.due_to))
        if order == "due_at" and not dated_only:
            phases.append(("id", replace(where, dated=False)))
        starts: list[Position | None] = [position, *[None] * (len(phases) - 1)]
        if len(phases) == 2 and position is not None and position.key is None:
            phases, starts = phases[1:], [position]  # the cursor is in the second phase already
        rows: list[Row] = []
        positions: list[Position] = []
        for (column, phase_where), after in zip(phases, starts, strict=True):
            while len(rows) <= limit:
                want = limit + 1 - len(rows)
                batch = uow.cases.page(phase_where, column, descending=descending, after=after, limit=want)
                # explanations stay undecoded: a row shows the deadline's due moment, not how it was counted
                deadlines = uow.deadlines.for_cases([b.case.id for b in batch], lazy=True) if batch else None
                for listed in batch:
                    after = Position(sort_key(listed, column) if column != "id" else None, listed.case.id)
                    row = self._row(listed, [] if deadlines is None else deadlines.of(listed.case.id), now)
                    if query.due_within is not None and (
                        row.working_days_left is None or row.working_days_left > query.due_within
                    ):
                        continue  # within the SQL range, beyond N working days on its own calendar
                    rows.append(row)
                    positions.append(after)
                if len(batch) < want:
                    break
            if len(rows) > limit:
                break
        return rows, positions

    def _row(self, listed: Listed, deadlines: Sequence[Deadline], now: datetime) -> Row:
        open_ = sorted((d for d in deadlines if is_open(d)), key=lambda d: (d.due_at, d.id))
        if not open_ or listed.due_at is None:
            return Row(listed.case, listed.due_at, None, None, None)
        first = open_[0]
        late, left = working_days(first, now, self._rt)
        return Row(listed.case, listed.due_at, first, late, left)


def working_days(d: Deadline, now: datetime, runtime: Runtime) -> tuple[int | None, int | None]:
    """(working days late, working days left) of an open deadline at ``now``, on its own calendar:
    late counts the working days after the due date up to and including today (0 on the due day
    itself, after its end, and over a weekend right after it); left counts the working days after
    today up to and including the due date (0: due today). One of the two is None."""
    if d.due_at is None:
        return None, None
    calendar = calendar_of(d, runtime.calendars)
    today, due_day = local_date(now), local_date(d.due_at)
    try:
        if d.due_at < now:
            return between(calendar, due_day, max(today, due_day)).working_days, None
        return None, between(calendar, today, max(today, due_day)).working_days
    except ValidationError:  # a date outside the calendars' years: no count rather than no list
        return None, None
