"""The commands every benchmark issues, and template cases made by them.

Every timed command is a real, accepted command by a permitted role: cases walk the happy path
of a domestic case (``PATH``), one command at a time. A template is one case walked by the real
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
PATH: tuple[tuple[str, Actor, dict[str, Any]], ...] = (
    ("record_circumstances", DESK, {"treated_abroad": False, "insured_abroad": False, "has_pathology": False,
                                    "has_imaging": False}),
    ("give_consent", DESK, {"basis": "written", "scope": "full dossier"}),
    ("refer", GP, {}),
    ("receive_item", DOCTOR, {"item": "letter"}),
    ("receive_dossier", DOCTOR, {}),
    ("record_consultation", DOCTOR, {}),  # UMC Utrecht always sees the patient (issue 15)
    ("review", DOCTOR, {}),
    ("return_advice", DOCTOR, {"outcome": "agrees"}),
    ("hand_back", DESK, {}),
)  # fmt: skip
REFERRED = 3
"""Steps of PATH that leave a case referred, its dossier deadline running."""

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


def template(steps: int, at: datetime) -> Template:
    """One case opened at ``at`` and walked ``steps`` commands along PATH, a minute apart."""
    clock = FixedClock(at)
    with connect("memory://", clock=clock) as service:
        case_id = service.open_case("PX-TEMPLATE", actor=DESK, provider="umc-utrecht").case_id  # (issue 15: chosen)
        for event, actor, data in PATH[:steps]:
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
