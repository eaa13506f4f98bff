"""A program that embeds second-opinion, as README.md's "The Python API" says embedders do, using
the public API only (``second_opinion``'s ``__all__``). ``test_embedding.py`` type-checks it with
``mypy --strict`` against the installed package: every name it uses must carry complete hints.

Run it: ``python tests/embedding/example_app.py`` (on ``memory://``, nothing to initialise).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

from second_opinion import (
    Actor,
    AuditRecord,
    Case,
    CaseService,
    FixedClock,
    InvalidTransition,
    Progress,
    Receipt,
    SecondOpinionError,
    VerifyReport,
    connect,
)

OPENED = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
DESK = Actor("desk-7", "coordinator")
GP = Actor("gp-12", "gp")
PATIENT = Actor("pat-7", "patient")


class Meter:
    """Progress of a long verification, as an embedding program might log it."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int | None]] = []

    def __call__(self, done: int, total: int | None, /) -> None:
        self.seen.append((done, total))


def intake(service: CaseService, patient_ref: str) -> str:
    receipt: Receipt = service.open_case(patient_ref, actor=DESK, provider="umc-utrecht",
                                         idempotency_key=f"intake-{patient_ref}")  # fmt: skip
    service.fire(receipt.case_id, "give_consent", actor=PATIENT,
                 data={"basis": "written", "scope": "full dossier to the second-opinion provider"})  # fmt: skip
    moved: Receipt = service.fire(receipt.case_id, "refer", actor=GP, expect_version=2)
    return moved.case_id


def main(url: str = "memory://") -> int:
    with connect(url, clock=FixedClock(OPENED), channel="embedded:example") as service:
        case_id = intake(service, "PX-0001")
        try:
            service.fire(case_id, "receive_dossier", actor=Actor("dr-3", "second_opinion_doctor"))
        except InvalidTransition as refused:  # recorded in the audit trail, then raised
            print(f"refused: {refused}")
        except SecondOpinionError as other:
            print(f"error: {other}", file=sys.stderr)
            return 1
        case: Case = service.case(case_id)
        history: list[AuditRecord] = service.history(case_id)
        states: list[str] = [c.state for c in service.cases(state="referred")]
        meter = Meter()
        told: Progress = meter  # a class with the right __call__ is a Progress
        report: VerifyReport = service.verify(progress=told)
        print(f"{case.id}: {case.state}, version {case.version}, {len(history)} records; referred: {len(states)}")
        print(f"verified {report.cases} case(s), {report.records} record(s): {'ok' if report.ok else 'FAILED'}")
        for finding in report.findings:
            print(f"finding: {finding}", file=sys.stderr)
        return 0 if report.ok and meter.seen[-1] == (report.cases, report.cases) else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
