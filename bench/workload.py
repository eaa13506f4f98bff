"""The commands every benchmark issues, and template cases made by them.

Every timed command is a real, accepted command by a permitted role: cases walk the happy path
of a domestic case at UMC Utrecht (``PATH``; the provider recorded at opening, :data:`PROVIDER`),
one command at a time. A template is one case walked by the real
service on the in-memory backend; :mod:`bench.seed` clones it in bulk.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from second_opinion import connect
from workflow import Actor, FixedClock
from workflow.audit.chain import AuditRecord
from workflow.cases.case import Case, Transition
from workflow.deadlines.policies import Deadline

DESK = Actor("bench-desk", "coordinator")
GP = Actor("bench-gp", "gp")
DOCTOR = Actor("bench-dr", "second_opinion_doctor")
PROVIDER = "umc-utrecht"
"""Every bench case is opened with its provider chosen: its checklist (the letter) applies, and it
sees every patient (``record_consultation`` before ``review``)."""
PATH: tuple[tuple[str, Actor, dict[str, Any]], ...] = (
    ("record_circumstances", DESK, {"treated_abroad": False, "insured_abroad": False, "has_pathology": False,
                                    "has_imaging": False}),
    ("give_consent", DESK, {"basis": "written", "scope": "full dossier"}),
    ("refer", GP, {}),
    ("receive_item", DOCTOR, {"item": "letter"}),
    ("receive_dossier", DOCTOR, {}),
    ("record_consultation", DOCTOR, {}),
    ("review", DOCTOR, {}),
    ("return_advice", DOCTOR, {"outcome": "agrees"}),
    ("hand_back", DESK, {}),
)  # fmt: skip
REFERRED = 3
"""Steps of PATH that leave a case referred, its dossier deadline running."""
IMAGING_PATH: tuple[tuple[str, Actor, dict[str, Any]], ...] = (
    ("record_circumstances", DESK, {**PATH[0][2], "has_imaging": True}),
    *PATH[1:4],
    ("receive_item", DOCTOR, {"item": "imaging_results"}),
    ("receive_item", DOCTOR, {"item": "imaging"}),
    *PATH[4:],
)
"""PATH for a case with imaging: its checklist asks for the imaging report and the images too,
two more items received (12 audit records when handed back, against PATH's 10)."""

T0 = datetime(2026, 11, 23, 9, tzinfo=UTC)
"""A Monday: cases referred now have their dossier deadline due 2026-12-07 23:59:59 local."""
LATE = datetime(2026, 12, 7, 9, tzinfo=UTC)
"""Cases referred now are not due (not even for a reminder) by NOW."""
NOW = datetime(2026, 12, 7, 23, 5, tzinfo=UTC)
"""The benchmarks' "now": five minutes after the T0 cases' deadlines were breached."""


@dataclass(frozen=True)
class Template:
    case: Case
    records: list[AuditRecord]
    transitions: list[Transition]
    deadlines: list[Deadline]


def template(steps: int, at: datetime, path: tuple[tuple[str, Actor, dict[str, Any]], ...] = PATH) -> Template:
    """One case opened at ``at`` and walked ``steps`` commands along ``path``, a minute apart."""
    clock = FixedClock(at)
    with connect("memory://", clock=clock) as service:
        case_id = service.open_case("PX-TEMPLATE", actor=DESK, provider=PROVIDER).case_id
        for event, actor, data in path[:steps]:
            clock.advance(timedelta(minutes=1))
            service.fire(case_id, event, actor=actor, data=data)
        with service.unit_of_work(False) as uow:
            transitions = uow.transitions.for_case(case_id)
        return Template(service.case(case_id), service.history(case_id), transitions, service.deadlines_of(case_id))


def referred_overdue() -> Template:
    return template(REFERRED, T0)


def referred_running() -> Template:
    return template(REFERRED, LATE)


def handed_back() -> Template:
    return template(len(PATH), T0)


def handed_back_with_imaging() -> Template:
    return template(len(IMAGING_PATH), T0, IMAGING_PATH)
