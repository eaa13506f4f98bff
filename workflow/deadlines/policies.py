"""Deadline policies as data, and the pure rules that start, pause, resume, stop and enforce them.

A policy says which route(s) it applies to, which event starts the clock, which events stop,
pause and resume it, how many working days it runs, on which calendar, when reminders go out and
who hears of a breach. A deadline keeps the calendar it was started on (its ``calendar`` field):
choosing another calendar for a policy applies to deadlines started afterwards, never moves a
running one. :func:`on_event` is called in the same transaction as every accepted
command and returns the deadline rows to write; :func:`pending_actions` is what the worker's
sweep asks of a deadline that has fallen due. Neither does I/O: storage and the worker do that.

Pausing, in working days: pausing on date P uses up the working days after day 0 up to and
including P; resuming on date R makes R the new day 0 for the days that were left. So pausing and
resuming on the same day changes nothing, and each working day after P up to and including R is
added to the deadline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time
from functools import lru_cache
from typing import Any

from workflow.cases.definitions import DEFINITION
from workflow.clock import AMSTERDAM, as_utc, parse_instant, utc_iso
from workflow.deadlines.calendars import (
    DEFAULT_CALENDAR,
    Calendar,
    base_name,
    due_moment,
    local_date,
    working_days_before,
    working_days_between,
)

RUNNING, PAUSED, MET, LATE, BREACHED, CANCELLED = "running", "paused", "met", "late", "breached", "cancelled"
"""met: stopped in time; late: stopped after the due moment before a sweep saw it; breached: the
sweep recorded the breach (a later stop leaves it breached); cancelled: the case ended otherwise."""

REMINDER, BREACH, RECOMPUTED = "deadline_reminder", "deadline_breached", "deadline_recomputed"


@dataclass(frozen=True)
class Reminder:
    working_days_before: int
    notify: tuple[str, ...]


@dataclass(frozen=True)
class DeadlinePolicy:
    name: str
    description: str
    routes: tuple[str, ...]
    starts_on: str
    stops_on: tuple[str, ...]
    working_days: int
    pauses_on: tuple[str, ...] = ()
    resumes_on: tuple[str, ...] = ()
    calendar: str = DEFAULT_CALENDAR
    reminders: tuple[Reminder, ...] = ()
    notify_on_breach: tuple[str, ...] = ()
    escalate_to: str | None = None
    configurable: bool = True
    source: str = ""


def _route_days(route: str) -> int:
    rules = DEFINITION.route(route)
    assert rules is not None and rules.report_due_working_days is not None
    return rules.report_due_working_days


POLICIES = (
    DeadlinePolicy(
        "royal-doctors-report",
        "The Royal Doctors report within 18 working days after the complete dossier is received.",
        routes=("royal-doctors",), starts_on="receive_dossier", stops_on=("return_advice",),
        working_days=_route_days("royal-doctors"), calendar="nl-business", pauses_on=("request_information",),
        resumes_on=("receive_information",),
        reminders=(Reminder(5, ("care_consultant",)), Reminder(2, ("care_consultant", "coordinator"))),
        notify_on_breach=("care_consultant",), escalate_to="coordinator", configurable=False,
        source="004 (the term, a service promise: so the business calendar); pausing while information is "
        "awaited is this library's default",
    ),
    DeadlinePolicy(
        "domestic-dossier",
        "Dossier not received within 10 working days after referral: the first provider is reminded.",
        routes=("domestic",), starts_on="refer", stops_on=("receive_dossier",), working_days=10,
        reminders=(Reminder(3, ("first_provider",)),), notify_on_breach=("first_provider", "coordinator"),
        source="this library's default; no seed sets a term, so organisations set their own (nl-atw: kept as "
        "shipped, the strictest reading)",
    ),
)  # fmt: skip


def policy_named(name: str, policies: Sequence[DeadlinePolicy] = POLICIES) -> DeadlinePolicy | None:
    return next((p for p in policies if p.name == name), None)


@dataclass(frozen=True)
class Deadline:
    """One policy's clock on one case. ``started_at`` is day 0 of the running stretch (the
    resume moment after a pause) and ``working_days`` the days that stretch has."""

    case_id: str
    policy: str
    state: str
    calendar: str
    working_days: int
    started_at: datetime
    due_at: datetime | None
    next_action_at: datetime | None
    reminders_sent: int
    explanation: Mapping[str, Any]
    stopped_at: datetime | None
    updated_at: datetime

    @property
    def id(self) -> str:
        return f"{self.case_id}/{self.policy}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "policy": self.policy,
            "state": self.state,
            "calendar": self.calendar,
            "due_at": None if self.due_at is None else utc_iso(self.due_at),
            "due_local": None if self.due_at is None else self.due_at.astimezone(AMSTERDAM).isoformat(),
            "next_action_at": None if self.next_action_at is None else utc_iso(self.next_action_at),
            "reminders_sent": self.reminders_sent,
            "stopped_at": None if self.stopped_at is None else utc_iso(self.stopped_at),
            "explanation": dict(self.explanation),
        }


CalendarFor = Callable[[str], Calendar]


def calendar_of(d: Deadline, calendar_for: CalendarFor) -> Calendar:
    """The calendar ``d`` was computed on (organisation closures as configured today): a policy
    switched to another calendar must not move the due moment of a deadline already running."""
    return calendar_for(base_name(d.calendar))


def _schedule(policy: DeadlinePolicy, calendar: Calendar, due_at: datetime) -> list[datetime]:
    """Reminder moments, earliest first: the start (00:00 Amsterdam) of the working day that
    lies ``working_days_before`` working days before the due date."""
    return list(_moments(calendar, local_date(due_at), _ordered(policy)))


@lru_cache(maxsize=4096)
def _moments(calendar: Calendar, due_day: date, reminders: tuple[Reminder, ...]) -> tuple[datetime, ...]:
    # calendars are immutable, so deadlines due on one day share their reminder moments
    return tuple(
        as_utc(datetime.combine(working_days_before(calendar, due_day, r.working_days_before), time(0), AMSTERDAM),
               "reminder")
        for r in reminders
    )  # fmt: skip


@lru_cache(maxsize=256)
def _ordered(policy: DeadlinePolicy) -> tuple[Reminder, ...]:
    return tuple(sorted(policy.reminders, key=lambda r: -r.working_days_before))


def _next_action(d: Deadline, policy: DeadlinePolicy, calendar: Calendar) -> datetime | None:
    if d.state != RUNNING or d.due_at is None:
        return None
    moments = _schedule(policy, calendar, d.due_at)
    pending = moments[d.reminders_sent :]
    return pending[0] if pending else d.due_at


def _run(
    policy: DeadlinePolicy, calendar: Calendar, base: Deadline, start: datetime, days: int, now: datetime
) -> Deadline:
    due = due_moment(calendar, start, days)
    moments = _schedule(policy, calendar, due.due_at)
    already = base.reminders_sent if base.state == PAUSED else sum(1 for m in moments if m <= start)
    history = list(base.explanation.get("history", []))
    explanation = {**due.as_dict(), "policy_working_days": policy.working_days, "history": history}
    pending = moments[already:]
    return replace(
        base, state=RUNNING, calendar=calendar.name, working_days=days, started_at=start, due_at=due.due_at,
        reminders_sent=already, explanation=explanation, updated_at=now,
        next_action_at=pending[0] if pending else due.due_at,
    )  # fmt: skip


def on_event(
    policies: Iterable[DeadlinePolicy],
    calendar_for: CalendarFor,
    *,
    case_id: str,
    route: str,
    event: str,
    terminal: bool,
    at: datetime,
    now: datetime,
    existing: Mapping[str, Deadline],
    started_on: Mapping[str, str] | None = None,
) -> list[Deadline]:
    """The deadline rows an accepted event creates or changes (``existing`` by policy name).

    A new deadline starts on its policy's calendar, or on ``started_on[policy]`` when given (a
    rebuild names the calendar the stored row was started on); an existing one keeps its own."""
    changed = []
    for policy in policies:
        if route not in policy.routes:
            continue
        current = existing.get(policy.name)
        if current is None:
            if event == policy.starts_on:
                calendar = calendar_for(base_name((started_on or {}).get(policy.name, policy.calendar)))
                blank = Deadline(case_id, policy.name, RUNNING, calendar.name, policy.working_days, at, None, None, 0,
                                 {}, None, now)  # fmt: skip
                changed.append(_run(policy, calendar, blank, at, policy.working_days, now))
            continue
        updated = _change(policy, calendar_of(current, calendar_for), current, event, terminal, at, now)
        if updated is not None:
            changed.append(updated)
    return changed


def _change(
    policy: DeadlinePolicy, calendar: Calendar, d: Deadline, event: str, terminal: bool, at: datetime, now: datetime
) -> Deadline | None:
    note: dict[str, Any] = {"event": event, "at": utc_iso(at)}
    history = [*d.explanation.get("history", []), note]
    if d.state == BREACHED and event in policy.stops_on:
        return replace(d, stopped_at=at, updated_at=now, explanation={**d.explanation, "history": history})
    if d.state not in (RUNNING, PAUSED):
        return None
    if event in policy.stops_on or terminal:
        if event not in policy.stops_on:
            state = CANCELLED
        elif d.state == PAUSED or (d.due_at is not None and at <= d.due_at):
            state = MET
        else:
            state = LATE
        return replace(d, state=state, stopped_at=at, next_action_at=None, updated_at=now,
                       explanation={**d.explanation, "history": history})  # fmt: skip
    # A backdated pause or resume counts from the moment the clock last changed, never before it.
    since = _last_change(d)
    if event in policy.pauses_on and d.state == RUNNING:
        if d.due_at is not None and at > d.due_at:
            return None  # too late to pause: the deadline was missed, and the sweep records the breach
        at = max(at, since)
        used = working_days_between(calendar, local_date(d.started_at), local_date(at)).working_days
        left = max(d.working_days - used, 0)
        note.update(at=utc_iso(at), working_days_used=used, working_days_left=left)
        return replace(d, state=PAUSED, working_days=left, due_at=None, next_action_at=None, updated_at=now,
                       explanation={**d.explanation, "due_at": None, "history": history})  # fmt: skip
    if event in policy.resumes_on and d.state == PAUSED:
        at = max(at, since)
        note.update(at=utc_iso(at))
        resumed = replace(d, explanation={**d.explanation, "history": history})
        return _run(policy, calendar, resumed, at, d.working_days, now)
    return None


def parse_utc(text: str) -> datetime:
    return parse_instant(text, "deadline history")


def _last_change(d: Deadline) -> datetime:
    """When the clock last started, paused or resumed (from its history)."""
    history = d.explanation.get("history", [])
    moments = [d.started_at, *(parse_utc(h["at"]) for h in history if "at" in h)]
    return max(moments)


@dataclass(frozen=True)
class Action:
    """Something the sweep must record: a reminder or the breach, with whom to tell."""

    kind: str
    index: int
    fell_due_at: datetime
    notify: tuple[str, ...]
    escalate_to: str | None

    def key(self, deadline: Deadline) -> str:
        return f"{deadline.id}/{self.kind}/{self.index}"


def pending_actions(
    d: Deadline, policy: DeadlinePolicy, calendar: Calendar, now: datetime
) -> tuple[list[Action], Deadline]:
    """Every reminder and the breach that have fallen due by ``now``, in order, and the row after them."""
    if d.state != RUNNING or d.due_at is None:
        return [], d
    ordered = _ordered(policy)
    moments = _schedule(policy, calendar, d.due_at)
    actions = []
    sent = d.reminders_sent
    while sent < len(moments) and moments[sent] <= now:
        actions.append(Action(REMINDER, sent + 1, moments[sent], ordered[sent].notify, None))
        sent += 1
    after = replace(d, reminders_sent=sent, updated_at=now)
    if d.due_at <= now:
        actions.append(Action(BREACH, 0, d.due_at, policy.notify_on_breach, policy.escalate_to))
        after = replace(after, state=BREACHED, next_action_at=None)
    else:
        after = replace(after, next_action_at=_next_action(after, policy, calendar))
    return actions, after


def recomputed(d: Deadline, policy: DeadlinePolicy, calendar: Calendar, now: datetime) -> Deadline:
    """The same running deadline under the current calendar data (after a new decree, say)."""
    if d.state != RUNNING:
        return d
    return _run(policy, calendar, replace(d, state=PAUSED), d.started_at, d.working_days, now)


def replay_deadlines(
    records: Iterable[Any],
    route: str,
    policies: Sequence[DeadlinePolicy],
    calendar_for: CalendarFor,
    terminal_states: Iterable[str],
    started_on: Mapping[str, str] | None = None,
) -> dict[str, Deadline]:
    """Rebuild a case's deadline rows from its audit records (accepted commands drive the
    clocks; ``noted`` records replay the sweep's reminders, breaches and recomputations).
    ``started_on`` names, by policy, the calendar a stored row was started on (see :func:`on_event`)."""
    terminal = set(terminal_states)
    rows: dict[str, Deadline] = {}
    case_id = ""
    for r in records:
        case_id = r.case_id
        if r.outcome == "accepted":
            changed = on_event(
                policies, calendar_for, case_id=case_id, route=route, event=r.event, terminal=r.to_state in terminal,
                at=r.occurred_at, now=r.recorded_at, existing=rows, started_on=started_on,
            )  # fmt: skip
            rows.update((d.policy, d) for d in changed)
        elif r.outcome == "noted":
            policy_name = str(r.payload.get("deadline", "")).rsplit("/", 1)[-1]
            d, policy = rows.get(policy_name), policy_named(policy_name, policies)
            if d is None or policy is None:
                continue
            calendar = calendar_of(d, calendar_for)
            if r.event == REMINDER:
                d = replace(d, reminders_sent=d.reminders_sent + 1, updated_at=r.recorded_at)
                rows[policy_name] = replace(d, next_action_at=_next_action(d, policy, calendar))
            elif r.event == BREACH:
                rows[policy_name] = replace(d, state=BREACHED, next_action_at=None, updated_at=r.recorded_at)
            elif r.event == RECOMPUTED:
                rows[policy_name] = recomputed(d, policy, calendar, r.recorded_at)
    return rows


def difference(stored: Deadline, rebuilt: Deadline, calendar: Calendar | None) -> str | None:
    """The first field in which a stored deadline row disagrees with its rebuilt twin, or None.

    What is compared does not depend on calendar data, which may change between the day a row
    was written and the day it is verified (a new decree, other closures): the state (met and
    late count as one, since which one it is depends on the calendar of the day), reminders
    sent, when it stopped, when its running stretch started and, for a clock never paused, its
    length. A running row's due moment must follow from its own start and length under today's
    calendar, which ``deadlines recompute`` restores after calendar data changed.
    """
    def state(d: Deadline) -> str:
        return "stopped" if d.state in (MET, LATE) else d.state

    if (stored.policy, state(stored)) != (rebuilt.policy, state(rebuilt)):
        return "state"
    for name in ("reminders_sent", "stopped_at", "started_at"):
        if getattr(stored, name) != getattr(rebuilt, name):
            return name
    paused = any("working_days_used" in h for h in rebuilt.explanation.get("history", []))
    if not paused and stored.state in (RUNNING, PAUSED) and stored.working_days != rebuilt.working_days:
        return "working_days"
    running = stored.state == RUNNING and calendar is not None
    if running and stored.due_at != due_moment(calendar, stored.started_at, stored.working_days).due_at:  # type: ignore[arg-type]
        return "due_at"
    return None
