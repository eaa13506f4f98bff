"""The scrape-time reads behind the metrics gauges (``DeadlineStore.tally``, ``Outbox.backlog``,
``Readings.take``) give the same answer on every backend, and count only what is open."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import BACKENDS, DESK, SQL_BACKENDS, T0, walk
from tests.contract.test_deadline_index import _plan
from workflow import CaseService, FixedClock
from workflow.ports import DeadlineTally
from workflow.service.deadlines import DeadlineService
from workflow.service.readings import Readings


def _open(service: CaseService, to_state: str) -> str:
    case_id = service.open_case(f"PX-{to_state}", actor=DESK).case_id
    walk(service, case_id, to_state)
    return case_id


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_tally_counts_open_deadlines_by_policy_and_state(service: CaseService, clock: FixedClock) -> None:
    _open(service, "referred")
    _open(service, "referred")
    _open(service, "dossier_received")  # its deadline stopped: not counted
    _open(service, "requested")  # no deadline at all
    with service.runtime.uow(False) as uow:
        near = uow.deadlines.tally(T0 + timedelta(days=3))
        far = uow.deadlines.tally(T0 + timedelta(days=60))
        assert uow.outbox.backlog() == (0, None)
    assert near == [DeadlineTally("domestic-dossier", "running", 2, 0)]
    assert far == [DeadlineTally("domestic-dossier", "running", 2, 2)]


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_breached_deadlines_and_the_outbox_backlog(service: CaseService, clock: FixedClock) -> None:
    _open(service, "referred")
    swept_at = clock.advance(timedelta(days=30))
    report = DeadlineService(service.runtime).sweep()
    assert report.breaches == 1
    clock.advance(timedelta(minutes=5))
    with service.runtime.uow(False) as uow:
        assert uow.deadlines.tally(clock.now()) == [DeadlineTally("domestic-dossier", "breached", 1, 0)]
        pending, oldest = uow.outbox.backlog()
    assert pending == 2 and oldest == swept_at  # the reminder and the breach, on the log channel
    reading = Readings(service.runtime).take()
    assert reading.outbox_pending == 2 and reading.outbox_oldest_seconds == 300.0
    assert reading.deadlines == (DeadlineTally("domestic-dossier", "breached", 1, 0),)


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_delivered_notifications_leave_the_backlog(service: CaseService, clock: FixedClock) -> None:
    _open(service, "referred")
    clock.advance(timedelta(days=30))
    deadlines = DeadlineService(service.runtime)
    deadlines.sweep()
    for claimed in deadlines.claim_notifications():
        deadlines.settle([(claimed, None)], max_attempts=3)
    with service.runtime.uow(False) as uow:
        assert uow.outbox.backlog() == (0, None)


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
def test_the_tally_reads_through_the_index_of_open_deadlines(db_url: str) -> None:
    """Its cost follows the deadlines not stopped, not every deadline ever opened."""
    plan = _plan(db_url, "deadline_tally", lambda c: {**c.constants["deadline_tally"], "soon": c.ts_in(T0)})
    assert "ix_deadlines_open_due_at" in plan, plan


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
def test_the_backlog_reads_through_the_pending_index(db_url: str) -> None:
    plan = _plan(db_url, "outbox_backlog", lambda c: dict(c.constants.get("outbox_backlog", {})))
    assert "ix_outbox_pending_next_attempt" in plan, plan
