"""Edge cases an outside review found, kept as regressions: pausing too late, reviewing while
information is awaited, calendar data that changes after the fact, backdated pauses, a policy
removed from the table, and arithmetic that could overflow."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from second_opinion import connect
from tests.cli.test_cli import Cli
from tests.conftest import CONSULTANT, T0, fire_example
from tests.service.test_deadlines import RD_DUE, only, receive_royal_doctors_dossier, royal_doctors_case
from workflow import CaseService, FixedClock, GuardRefused
from workflow.deadlines.calendars import Calendars, Closure
from workflow.deadlines.policies import LATE, PAUSED, RUNNING, Deadline
from workflow.ports import Notification
from workflow.service.deadlines import DeadlineService


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def service(clock: FixedClock) -> CaseService:
    return connect("memory://", clock=clock)


def with_calendar(service: CaseService, clock: FixedClock, *closures: date) -> CaseService:
    """The same storage, read by a deployment whose calendar data has the given closures."""
    calendars = Calendars("org", [Closure("org", day, "closed") for day in closures])
    return CaseService(service.unit_of_work, clock, calendars=calendars)


def test_a_pause_after_the_due_moment_does_not_stop_the_clock(service: CaseService, clock: FixedClock) -> None:
    case_id = royal_doctors_case(service)
    clock.set(datetime(2027, 1, 20, 10, tzinfo=UTC))  # weeks after 17 Dec, before any sweep
    fire_example(service, case_id, "request_information")
    assert only(service, case_id).state == RUNNING  # stays overdue: the sweep records the breach
    fire_example(service, case_id, "receive_information")
    fire_example(service, case_id, "review")
    fire_example(service, case_id, "return_advice")
    assert only(service, case_id).state == LATE and service.verify().ok


def test_no_review_while_information_is_awaited(service: CaseService, clock: FixedClock) -> None:
    case_id = royal_doctors_case(service)
    fire_example(service, case_id, "request_information")
    with pytest.raises(GuardRefused, match="not_awaiting"):
        fire_example(service, case_id, "review")
    assert only(service, case_id).state == PAUSED


def test_closures_added_later_need_a_recompute_and_then_verify(service: CaseService, clock: FixedClock) -> None:
    case_id = royal_doctors_case(service)
    clock.set(datetime(2026, 11, 25, 10, tzinfo=UTC))
    fire_example(service, case_id, "request_information")
    clock.set(datetime(2026, 11, 27, 10, tzinfo=UTC))
    fire_example(service, case_id, "receive_information")
    # a closure before the resume changes nothing that is still running
    assert with_calendar(service, clock, date(2026, 11, 24)).verify().ok
    # a closure ahead moves the due moment: verify says so until recompute has run
    later = with_calendar(service, clock, date(2026, 12, 1))
    (finding,) = later.verify().findings
    assert "due_at differs" in finding.problem and "deadlines recompute" in finding.problem
    (change,) = DeadlineService(later.runtime).recompute()
    assert change["new_due_at"] == "2026-12-22T22:59:59.000000Z"  # one working day later than 21 Dec
    assert later.verify().ok


def test_a_closed_deadline_is_not_reopened_by_new_calendar_data(service: CaseService, clock: FixedClock) -> None:
    case_id = royal_doctors_case(service)
    fire_example(service, case_id, "review")
    clock.set(datetime(2026, 12, 18, 10, tzinfo=UTC))
    fire_example(service, case_id, "return_advice")
    assert only(service, case_id).state == LATE
    # with a closure on 1 December the same advice would have been in time; the row stays late
    assert with_calendar(service, clock, date(2026, 12, 1)).verify().ok


def test_backdated_pause_and_resume_count_from_the_last_change(service: CaseService, clock: FixedClock) -> None:
    clock.set(T0 - timedelta(days=3))
    case_id = service.open_case("PX-BACK", actor=CONSULTANT, route="royal-doctors").case_id
    clock.set(T0)
    for event in ("record_circumstances", "give_consent"):
        fire_example(service, case_id, event)
    service.fire(case_id, "refer", actor=CONSULTANT)
    receive_royal_doctors_dossier(service, case_id)
    started = only(service, case_id)
    clock.advance(timedelta(days=2))
    fire_example(service, case_id, "request_information", occurred_at=T0 - timedelta(days=1))  # before the clock
    paused = only(service, case_id)
    assert (paused.state, paused.working_days) == (PAUSED, 18)  # counted from the start: nothing used
    fire_example(service, case_id, "receive_information", occurred_at=T0 - timedelta(hours=12))  # before the pause
    resumed = only(service, case_id)
    assert (resumed.started_at, resumed.due_at) == (started.started_at, started.due_at)
    assert service.verify().ok


def test_a_deadline_of_a_removed_policy_is_parked_and_others_go_on(service: CaseService, clock: FixedClock) -> None:
    kept = royal_doctors_case(service)
    orphan = royal_doctors_case(service)
    with service.unit_of_work(True) as uow:
        uow.deadlines.save(Deadline(orphan, "retired-policy", RUNNING, "nl-atw", 1, T0, T0, T0, 0, {}, None, T0))
        uow.commit()
    clock.set(RD_DUE)
    report = DeadlineService(service.runtime).sweep()
    assert report.parked == [f"{orphan}/retired-policy"] and report.breaches == 2
    assert only(service, kept).state == "breached"
    assert DeadlineService(service.runtime).sweep().cases == 0  # the parked row is not claimed again


def test_backoff_is_capped_for_any_number_of_attempts(service: CaseService, clock: FixedClock) -> None:
    case_id = royal_doctors_case(service)
    deadlines = DeadlineService(service.runtime)
    failing = Notification("k", case_id, "deadline_breached", "webhook", "http://x", {}, T0, T0, attempts=60, id=1)
    with service.unit_of_work(True) as uow:
        uow.outbox.add(failing)
        uow.commit()
    after = deadlines.failed(failing, "HTTP 500", max_attempts=100)
    assert after.next_attempt_at == clock.now() + timedelta(hours=1)


def test_out_of_range_times_and_intervals_are_clean_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cli = Cli(tmp_path / "edge.sqlite3")
    cli.run("init")
    result = cli.run("deadlines", "--due-before", "9999-12-31T23:00:00-05:00", code=1)
    assert "out of the range of representable times" in result.stderr
    assert "Invalid value" in cli.run("worker", "--interval", "inf", code=2).stderr
    assert "Invalid value" in cli.run("worker", "--max-attempts", "500", code=2).stderr
