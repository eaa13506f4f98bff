"""The case life cycle, as one table.

This module is the single place where states, events, who may fire them, what data they need
and which guards they pass are written down. The engine (:mod:`workflow.engine`), the CLI help,
``docs/states.md`` and the Mermaid diagram are all derived from :data:`DEFINITION`; changing a
rule is an edit to the rows below, nothing else.

Sources (``../shared/seeds/``): the main path of a second opinion (request, referral by the
treating doctor or the GP, transfer of the dossier, review, advice, back to the first provider)
follows seeds 000, 002 and 004; "the second-opinion doctor gives only a view and does not take
over the treatment" (000, 003) is why the path ends at ``back_to_first_provider``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# --- the shapes of a row ----------------------------------------------------------------------


@dataclass(frozen=True)
class GuardInput:
    """What a guard may look at: the case as it stands and the command being decided."""

    state: str
    event: str
    role: str
    reason: str | None
    data: Mapping[str, Any]


@dataclass(frozen=True)
class Guard:
    """A named rule that can refuse an otherwise allowed event; ``check`` returns why, or None."""

    name: str
    description: str
    check: Callable[[GuardInput], str | None]


@dataclass(frozen=True)
class State:
    name: str
    description: str
    terminal: bool = False
    source: str = ""


@dataclass(frozen=True)
class Role:
    name: str
    description: str


@dataclass(frozen=True)
class Route:
    """How a case is organised; routes get their own rules in a later table (seed 004)."""

    name: str
    description: str
    source: str = ""


@dataclass(frozen=True)
class Event:
    name: str
    sources: tuple[str, ...]
    dest: str
    description: str
    roles: tuple[str, ...]
    reason_required: bool = False
    required_data: tuple[str, ...] = ()
    guards: tuple[Guard, ...] = ()
    source: str = ""


@dataclass(frozen=True)
class Definition:
    """A complete, self-consistent life cycle; :meth:`__post_init__` refuses a broken table."""

    states: tuple[State, ...]
    roles: tuple[Role, ...]
    events: tuple[Event, ...]
    routes: tuple[Route, ...]
    initial: str
    open_roles: tuple[str, ...]
    _events_by_state: dict[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)
    _events_by_name: dict[str, Event] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [s.name for s in self.states]
        problems = []
        if len(set(names)) != len(names):
            problems.append("duplicate state names")
        if self.initial not in names:
            problems.append(f"initial state {self.initial!r} is not a state")
        roles = {r.name for r in self.roles}
        seen_events: set[str] = set()
        for ev in self.events:
            if ev.name in seen_events:
                problems.append(f"event {ev.name!r} defined twice")
            seen_events.add(ev.name)
            for st in (*ev.sources, ev.dest):
                if st not in names:
                    problems.append(f"event {ev.name!r} names unknown state {st!r}")
            for st in ev.sources:
                if st in names and self.state(st).terminal:
                    problems.append(f"event {ev.name!r} leaves terminal state {st!r}")
            for role in ev.roles:
                if role not in roles:
                    problems.append(f"event {ev.name!r} names unknown role {role!r}")
        for role in self.open_roles:
            if role not in roles:
                problems.append(f"open_roles names unknown role {role!r}")
        if not self.routes:
            problems.append("no routes")
        if problems:
            raise ValueError("invalid definition: " + "; ".join(problems))
        by_state = {s.name: tuple(ev.name for ev in self.events if s.name in ev.sources) for s in self.states}
        object.__setattr__(self, "_events_by_state", by_state)
        object.__setattr__(self, "_events_by_name", {ev.name: ev for ev in self.events})

    def state(self, name: str) -> State:
        for s in self.states:
            if s.name == name:
                return s
        raise KeyError(name)

    def event(self, name: str) -> Event | None:
        return self._events_by_name.get(name)

    def events_from(self, state: str) -> tuple[str, ...]:
        """Events the table allows in ``state`` (before roles and guards)."""
        return self._events_by_state.get(state, ())

    @property
    def route_names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.routes)

    @property
    def role_names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.roles)

    @property
    def event_names(self) -> tuple[str, ...]:
        return tuple(ev.name for ev in self.events)

    @property
    def open_states(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.states if not s.terminal)


# --- the table --------------------------------------------------------------------------------

STATES = (
    State("requested", "The patient's wish for a second opinion is registered.", source="000, 002"),
    State("referred", "A doctor (treating doctor or GP) has referred the patient.", source="000, 001"),
    State("dossier_received", "The second-opinion doctor has the medical dossier.", source="002, 004"),
    State("reviewed", "The second-opinion doctor has assessed the dossier (and patient).", source="002"),
    State("advice_returned", "The advice has been given to the patient.", source="002, 004"),
    State(
        "back_to_first_provider",
        "The patient is back with the first provider, who stays the treating doctor.",
        terminal=True,
        source="000, 003",
    ),
    State("withdrawn", "The patient or the desk stopped the case; a reason is recorded.", terminal=True),
    State("declined", "The request was declined before review; a reason is recorded.", terminal=True),
)

ROLES = (
    Role("coordinator", "Care-coordination desk: an insurer's care consultant or a hospital's second-opinion desk."),
    Role("referrer", "The treating doctor or the GP, who refers the patient (seed 000)."),
    Role("second_opinion_doctor", "The doctor who gives the second opinion."),
    Role("patient", "The patient, who may stop the case at any time."),
    Role("auditor", "Reads the audit trail; fires no events."),
)

_OPEN = tuple(s.name for s in STATES if not s.terminal)
_DESK = "coordinator"
_DOCTOR = "second_opinion_doctor"

EVENTS = (
    Event(
        "refer",
        ("requested",),
        "referred",
        "Record the referral by the treating doctor or GP.",
        roles=(_DESK, "referrer"),
        source="000, 001",
    ),
    Event(
        "receive_dossier",
        ("referred",),
        "dossier_received",
        "Record that the dossier has arrived.",
        roles=(_DESK, _DOCTOR),
        source="002, 003",
    ),
    Event(
        "review",
        ("dossier_received",),
        "reviewed",
        "Record that the review is done.",
        roles=(_DESK, _DOCTOR),
        source="002",
    ),
    Event(
        "return_advice",
        ("reviewed",),
        "advice_returned",
        "Record that the advice was given.",
        roles=(_DESK, _DOCTOR),
        source="002, 004",
    ),
    Event(
        "hand_back",
        ("advice_returned",),
        "back_to_first_provider",
        "The patient returns to the first provider with the advice.",
        roles=(_DESK,),
        source="000, 003",
    ),
    Event(
        "withdraw",
        _OPEN,
        "withdrawn",
        "Stop the case; a reason is required.",
        roles=(_DESK, "patient"),
        reason_required=True,
    ),
    Event(
        "decline",
        ("requested", "referred"),
        "declined",
        "Decline the request; a reason is required.",
        roles=(_DESK, _DOCTOR),
        reason_required=True,
    ),
)

ROUTES = (
    Route("domestic", "Second opinion from a provider in the Netherlands, basic insurance.", "000, 001, 002"),
    Route("royal-doctors", "The insurer's international second opinion through Royal Doctors.", "004"),
    Route("online", "The insurer's online second-opinion service (2e arts online).", "004"),
)

DEFINITION = Definition(
    states=STATES,
    roles=ROLES,
    events=EVENTS,
    routes=ROUTES,
    initial="requested",
    open_roles=(_DESK, "referrer", "patient"),
)

OPEN_EVENT = "open"
"""The audit trail's name for the command that creates a case (it is not a transition)."""
