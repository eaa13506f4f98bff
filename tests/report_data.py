"""A small dataset whose report figures are worked out by hand (docs/reports.md has the rules).

T0 is Monday 2026-11-23, 09:00 UTC (10:00 in Amsterdam). Working days are on ``nl-business``
(Royal Doctors' calendar: weekends and the employers' holidays; none falls in these weeks).

- A, Royal Doctors: opened and dossier complete Mon 23 Nov; advice Thu 3 Dec.
  Lead time 10 calendar days; working days after 23 Nov up to 3 Dec: 24-27 Nov, 30 Nov-3 Dec = 8.
  Dossier to report: 10 days, 8 working days, counted 8 (no pause): met.
- B, Royal Doctors: opened Mon 23 Nov; dossier Tue 24 Nov; information requested Wed 25 Nov (the
  clock pauses: 1 working day used), received Mon 30 Nov (day 0 again); advice Fri 4 Dec.
  Lead time 11 days, 9 working days (24-27 Nov, 30 Nov-4 Dec). Dossier to report: 10 days, 8
  working days elapsed (25-27 Nov, 30 Nov-4 Dec), counted 1 + 4 (1-4 Dec) = 5: met.
- C, Royal Doctors: opened and dossier complete Mon 23 Nov; due Thu 17 Dec (18 working days); the
  sweep of Fri 18 Dec records the breach; advice Mon 21 Dec. Lead time 28 days, 20 working days
  (18 to 17 Dec, then 18 and 21 Dec); counted 20: breached (December).
- D, domestic: referred Mon 23 Nov; the dossier never comes: due Mon 7 Dec (10 working days on
  nl-atw), breached by the same sweep (December).

Percentiles (linear, type 7) over three values x1 <= x2 <= x3: median x2; p90 at position
0.9 * 2 = 1.8, so x2 + 0.8 * (x3 - x2).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.conftest import CONSULTANT, DOCTOR, T0, fire_example, walk
from workflow import CaseService, FixedClock
from workflow.service.deadlines import DeadlineService

RD_ITEMS = ("medical_history", "examinations", "lab_reports")
AT_END = datetime(2026, 12, 21, 10, 0, tzinfo=UTC)
"""When the last command ran: the report's now."""


def _at(clock: FixedClock, day: int, month: int = 11) -> None:
    clock.set(datetime(2026, month, day, 10, 0, tzinfo=UTC))


def _royal(service: CaseService, ref: str) -> str:
    case_id = service.open_case(ref, actor=CONSULTANT, route="royal-doctors").case_id
    for event in ("record_circumstances", "give_consent"):
        fire_example(service, case_id, event)
    service.fire(case_id, "refer", actor=CONSULTANT)
    return case_id


def _dossier(service: CaseService, case_id: str) -> None:
    for item in RD_ITEMS:
        fire_example(service, case_id, "receive_item", data={"item": item})
    fire_example(service, case_id, "receive_dossier")


def _advice(service: CaseService, case_id: str) -> None:
    fire_example(service, case_id, "review")
    fire_example(service, case_id, "return_advice")


def build(service: CaseService, clock: FixedClock) -> dict[str, str]:
    """The four cases above, in organisation ``local``; returns their ids by letter."""
    clock.set(T0)
    a, b, c = (_royal(service, f"PX-R{n}") for n in (1, 2, 3))
    d = service.open_case("PX-D1", actor=CONSULTANT).case_id
    walk(service, d, "referred")
    _dossier(service, a)
    _dossier(service, c)
    _at(clock, 24)
    _dossier(service, b)
    _at(clock, 25)
    service.fire(b, "request_information", actor=DOCTOR, reason="the scan is missing")
    _at(clock, 30)
    service.fire(b, "receive_information", actor=DOCTOR)
    _at(clock, 3, 12)
    _advice(service, a)
    _at(clock, 4, 12)
    _advice(service, b)
    _at(clock, 18, 12)
    DeadlineService(service.runtime).sweep()
    clock.set(AT_END - timedelta(minutes=1))
    _advice(service, c)
    clock.set(AT_END)
    return {"A": a, "B": b, "C": c, "D": d}
