"""Time only moves forward: ``recorded_at`` never goes back, per case or in the order of storage,
and the access log's ``at`` never goes back in its own order (issue 14).

A clock behind the last record by more than the tolerance (default 2 s) is refused with
``ClockBehind`` and nothing is written, not even the record of a refusal (it would carry the bad
time); within the tolerance the record takes the last record's time. The clock is a
:class:`FixedClock` moved by hand: no test waits for time to pass.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from second_opinion.bootstrap import ENV_CLOCK_TOLERANCE, clock_tolerance_from_env
from tests.conftest import BACKENDS, DESK, T0, fire_example, walk
from workflow import CaseService
from workflow.access.rules import Principal
from workflow.clock import DEFAULT_TOLERANCE, FixedClock, forward
from workflow.errors import ClockBehind, ConfigurationError
from workflow.service.access import AccessService
from workflow.service.deadlines import DeadlineService
from workflow.service.tokens import TokenService

SECOND = timedelta(seconds=1)
NTP = r"the clock reads .*, 3\.000 s behind the last record at .*; check the server's time \(NTP\)"


def audit_rows(service: CaseService) -> list[tuple[str, int, object]]:
    return [(r.case_id, r.seq, r.recorded_at) for r in service.export()]


# --- refused beyond the tolerance, nothing written ------------------------------------------------


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_a_fire_with_the_clock_set_back_is_refused_and_writes_nothing(service: CaseService, clock: FixedClock) -> None:
    case_id = service.open_case("PX-0001", actor=DESK).case_id
    before, case = audit_rows(service), service.case(case_id)
    clock.set(T0 - 3 * SECOND)
    with pytest.raises(ClockBehind, match=NTP):
        fire_example(service, case_id, "record_circumstances")
    with pytest.raises(ClockBehind):  # a command that would be refused is not even recorded as refused
        service.fire(case_id, "review", actor=DESK)
    assert audit_rows(service) == before and service.case(case_id) == case


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_an_open_with_the_clock_set_back_is_refused_and_writes_nothing(service: CaseService, clock: FixedClock) -> None:
    service.open_case("PX-0001", actor=DESK)
    before = audit_rows(service)
    clock.set(T0 - 3 * SECOND)
    with pytest.raises(ClockBehind, match=NTP):
        service.open_case("PX-0002", actor=DESK)
    assert audit_rows(service) == before and [c.patient_ref for c in service.cases()] == ["PX-0001"]


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_the_sweep_with_the_clock_set_back_is_refused_and_writes_nothing(
    service: CaseService, clock: FixedClock
) -> None:
    deadlines = DeadlineService(service.runtime)
    due_case = service.open_case("PX-0001", actor=DESK).case_id
    walk(service, due_case, "referred")  # a deadline due in ten working days
    (deadline,) = service.deadlines_of(due_case)
    assert deadline.due_at is not None
    clock.set(deadline.due_at + timedelta(days=10))
    service.open_case("PX-0002", actor=DESK)  # the last record: ten days after the deadline fell due
    before = audit_rows(service)
    clock.set(deadline.due_at + timedelta(days=1))  # due, but behind the last record
    with pytest.raises(ClockBehind, match="behind the last record"):
        deadlines.sweep()
    assert audit_rows(service) == before and service.deadlines_of(due_case) == [deadline]
    assert deadlines.notifications() == []


@pytest.mark.parametrize("db_url", ["memory", "sqlite"], indirect=True)
def test_recompute_with_the_clock_set_back_is_refused_and_writes_nothing(
    service: CaseService, clock: FixedClock
) -> None:
    case_id = service.open_case("PX-0001", actor=DESK).case_id
    walk(service, case_id, "referred")
    before, running = audit_rows(service), service.deadlines_of(case_id)
    clock.set(clock.now() - 3 * SECOND)
    with pytest.raises(ClockBehind, match=NTP):
        DeadlineService(service.runtime).recompute()
    assert audit_rows(service) == before and service.deadlines_of(case_id) == running


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_an_access_read_with_the_clock_set_back_is_refused_and_logs_nothing(
    service: CaseService, clock: FixedClock
) -> None:
    _, token = TokenService(service.runtime).create("desk-7", "coordinator", "org-a")
    caller = Principal(token)
    case_id = service.open_case("PX-0001", actor=caller.actor, organisation="org-a").case_id
    access = AccessService(service.runtime)
    clock.set(T0 + timedelta(hours=1))
    access.case(caller, case_id)  # the access log's last record: an hour after the audit's
    logged = access.verify_log()
    clock.set(T0 + timedelta(minutes=59))  # ahead of every audit record, behind the access log
    with pytest.raises(ClockBehind, match=r"60\.000 s behind the last access record at .*\(NTP\)"):
        access.case(caller, case_id)
    assert access.verify_log() == logged


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_the_worker_logs_a_refused_sweep_in_one_line_and_carries_on(
    service: CaseService, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    from jobs.delivery import Delivery
    from jobs.worker import Worker

    due_case = service.open_case("PX-0001", actor=DESK).case_id
    walk(service, due_case, "referred")
    (deadline,) = service.deadlines_of(due_case)
    assert deadline.due_at is not None
    clock.set(deadline.due_at + timedelta(days=10))
    service.open_case("PX-0002", actor=DESK)
    clock.set(deadline.due_at + timedelta(days=1))
    deadlines = DeadlineService(service.runtime)
    worker = Worker(deadlines, Delivery(deadlines))
    worker._safe_tick()  # what the scheduler calls
    (line,) = [r for r in caplog.records if r.name == "second_opinion.worker"]
    assert line.getMessage().startswith("sweep refused: the clock reads ") and line.exc_info is None
    assert "check the server's time (NTP); retrying in 30 s" in line.getMessage()
    clock.set(deadline.due_at + timedelta(days=10))  # the time put right: the next tick sweeps
    swept, _ = worker.tick()
    assert swept.breaches == 1


# --- within the tolerance: the last record's time, so the order holds ------------------------------


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_a_clock_a_little_behind_records_at_the_last_records_time(service: CaseService, clock: FixedClock) -> None:
    case_id = service.open_case("PX-0001", actor=DESK).case_id
    clock.set(T0 - SECOND)
    receipt = fire_example(service, case_id, "record_circumstances")
    assert receipt.recorded_at == receipt.occurred_at == "2026-11-23T09:00:00.000000Z"
    clock.set(T0 - DEFAULT_TOLERANCE)  # the tolerance itself is still within it
    opened = service.open_case("PX-0002", actor=DESK)
    assert opened.recorded_at == "2026-11-23T09:00:00.000000Z"
    times = [r.recorded_at for r in service.export()]
    assert times == sorted(times) and len(times) == 3


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_an_access_record_a_little_behind_takes_the_last_ones_time(service: CaseService, clock: FixedClock) -> None:
    _, token = TokenService(service.runtime).create("desk-7", "coordinator", "org-a")
    caller = Principal(token)
    case_id = service.open_case("PX-0001", actor=caller.actor, organisation="org-a").case_id
    access = AccessService(service.runtime)
    clock.set(T0 + timedelta(hours=1))
    access.case(caller, case_id)
    clock.set(T0 + timedelta(hours=1) - SECOND)
    access.case(caller, case_id)
    with service.unit_of_work(False) as uow:
        assert [r.at for r in uow.access.all()] == [T0 + timedelta(hours=1)] * 2


# --- global order, and the case's first record -----------------------------------------------------


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_order_holds_across_cases(service: CaseService, clock: FixedClock) -> None:
    """Per case alone is not enough: case B's record must not be dated before case A's later one,
    or an export from A's time on would miss it."""
    first = service.open_case("PX-0001", actor=DESK).case_id
    second = service.open_case("PX-0002", actor=DESK).case_id
    clock.set(T0 + 10 * SECOND)
    fire_example(service, first, "record_circumstances")
    clock.set(T0 + 5 * SECOND)  # B's own last record is at T0: only A's says the clock went back
    with pytest.raises(ClockBehind, match=r"5\.000 s behind the last record"):
        fire_example(service, second, "record_circumstances")
    clock.set(T0 + 9 * SECOND)
    assert fire_example(service, second, "record_circumstances").recorded_at == "2026-11-23T09:00:10.000000Z"
    exported = service.export()
    times = [r.recorded_at for r in exported]
    assert times == sorted(times)
    assert [(r.case_id, r.seq) for r in service.export(T0 + 10 * SECOND)] == [(first, 2), (second, 2)]


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_nothing_is_recorded_before_the_case_was_opened(service: CaseService, clock: FixedClock) -> None:
    """``occurred_at`` is the caller's claim and may lie in the past (never before the opening);
    ``recorded_at`` is the server's and never precedes the case's first record."""
    case_id = service.open_case("PX-0001", actor=DESK).case_id
    clock.set(T0 - timedelta(hours=1))
    with pytest.raises(ClockBehind, match=r"3600\.000 s behind the last record at 2026-11-23T09:00:00"):
        fire_example(service, case_id, "record_circumstances")
    clock.set(T0 + timedelta(hours=1))
    late = fire_example(service, case_id, "record_circumstances", occurred_at=T0 + timedelta(minutes=5))
    assert late.occurred_at < late.recorded_at
    first, *rest = service.history(case_id)
    assert all(r.recorded_at >= first.recorded_at for r in rest)


# --- the tolerance --------------------------------------------------------------------------------


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_a_tolerance_of_zero_refuses_any_step_back(service: CaseService, clock: FixedClock) -> None:
    strict = CaseService.on(replace(service.runtime, clock_tolerance=timedelta(0)))
    case_id = strict.open_case("PX-0001", actor=DESK).case_id
    clock.set(T0 - timedelta(microseconds=1))
    with pytest.raises(ClockBehind, match=r"0\.000 s behind"):
        fire_example(strict, case_id, "record_circumstances")
    clock.set(T0)
    assert fire_example(strict, case_id, "record_circumstances").recorded_at == "2026-11-23T09:00:00.000000Z"


def test_forward_keeps_the_clock_ahead_and_clamps_within_the_tolerance() -> None:
    assert forward(T0, None, SECOND) == T0
    assert forward(T0 + SECOND, T0, SECOND) == T0 + SECOND
    assert forward(T0 - SECOND, T0, SECOND) == T0
    with pytest.raises(ClockBehind) as behind:
        forward(T0 - 2 * SECOND, T0, SECOND)
    assert behind.value.behind_seconds == 2.0 and behind.value.last == "2026-11-23T09:00:00.000000Z"


@pytest.mark.parametrize(
    ("value", "expected"), [(None, DEFAULT_TOLERANCE), ("", DEFAULT_TOLERANCE), ("0", timedelta(0)),
                            (" 0.25 ", timedelta(milliseconds=250)), ("3600", timedelta(hours=1))],
)  # fmt: skip
def test_the_tolerance_is_read_from_the_environment(value: str | None, expected: timedelta) -> None:
    assert clock_tolerance_from_env({} if value is None else {ENV_CLOCK_TOLERANCE: value}) == expected


@pytest.mark.parametrize("value", ["two", "-1", "nan", "inf", "3601", "1e400"])
def test_a_bad_tolerance_is_refused_naming_the_variable(value: str) -> None:
    with pytest.raises(ConfigurationError, match=f"{ENV_CLOCK_TOLERANCE}: .* is not a number of seconds"):
        clock_tolerance_from_env({ENV_CLOCK_TOLERANCE: value})
