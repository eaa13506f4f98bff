"""The read paths that work on many rows at once, on every backend: the overdue listing (its
filters in the store, explanations decoded only when read), ``verify`` reading many cases per
query, and delivery writing a claimed batch's outcomes in one transaction."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from jobs.delivery import Delivery
from tests.conftest import BACKENDS, DESK, SQL_BACKENDS, T0, fire_example, walk
from tests.contract.test_audit_tamper import sql
from workflow import AuditIntegrityError, CaseService, FixedClock
from workflow.clock import AMSTERDAM
from workflow.deadlines.policies import MET, RUNNING
from workflow.service.deadlines import Channel, DeadlineService

DAY = timedelta(days=1)


def referred_cases(service: CaseService, clock: FixedClock, n: int) -> list[str]:
    """``n`` domestic cases referred a day apart (so due a day apart), from T0 on; the clock is
    left at the last one's time (setting it back would be refused: recorded_at never goes back)."""
    ids = []
    for i in range(n):
        clock.set(T0 + i * DAY)
        case_id = service.open_case(f"PX-B{i}", actor=DESK).case_id
        walk(service, case_id, "referred")
        ids.append(case_id)
    return ids


# --- the overdue listing ------------------------------------------------------------------------


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_overdue_and_due_before_are_filtered_in_the_store(service: CaseService, clock: FixedClock) -> None:
    deadlines = DeadlineService(service.runtime)
    ids = referred_cases(service, clock, 4)
    fire_example(service, ids[0], "receive_item")
    fire_example(service, ids[0], "receive_dossier")  # the first case's deadline is met: no longer running
    due = {d.case_id: d.due_at for d in deadlines.deadlines()}
    assert [d.case_id for d in deadlines.deadlines()] == ids and deadlines.deadlines()[0].state == MET
    assert all(due[a] < due[b] for a, b in itertools.pairwise(ids))  # type: ignore[operator]

    clock.set(due[ids[2]] + timedelta(hours=1))  # the second and third are overdue
    assert [d.case_id for d in deadlines.deadlines(overdue=True)] == ids[1:3]
    # strictly before: a deadline due at exactly the moment asked for is not in
    assert [d.case_id for d in deadlines.deadlines(overdue=True, due_before=due[ids[2]])] == ids[1:2]
    assert [d.case_id for d in deadlines.deadlines(overdue=True, due_before=due[ids[3]] + DAY)] == ids[1:3]
    # without overdue: every state, the met one included
    assert [d.case_id for d in deadlines.deadlines(due_before=due[ids[2]])] == ids[:2]
    # bounds that fall outside the years a timestamp holds once in UTC
    assert deadlines.deadlines(due_before=datetime(1, 1, 1, tzinfo=AMSTERDAM)) == []
    late = datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5)))
    assert [d.case_id for d in deadlines.deadlines(due_before=late)] == ids
    with service.unit_of_work(False) as uow:
        assert [d.case_id for d in uow.deadlines.list(RUNNING, due_before=due[ids[3]])] == ids[1:3]
        assert [d.case_id for d in uow.deadlines.list(RUNNING)] == ids[1:]
        assert uow.deadlines.list(MET, due_before=due[ids[0]]) == []

    # what a listing returns is the deadline as a case shows it, explanation and all
    listed = deadlines.deadlines(overdue=True)
    for d in listed:
        (same,) = service.deadlines_of(d.case_id)
        assert d == same and d.as_dict() == same.as_dict() and d.explanation["working_days"] == 10


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
def test_an_unreadable_explanation_fails_only_where_it_is_read(
    db_url: str, service: CaseService, clock: FixedClock
) -> None:
    deadlines = DeadlineService(service.runtime)
    (case_id,) = referred_cases(service, clock, 1)
    sql(db_url, "UPDATE deadlines SET explanation = '{not json' WHERE case_id = :c", c=case_id)
    clock.set(T0 + 30 * DAY)
    (listed,) = deadlines.deadlines(overdue=True)  # the listing itself reads no explanation
    assert listed.case_id == case_id and listed.state == RUNNING
    with pytest.raises(AuditIntegrityError, match=f"the explanation of deadline {case_id}/domestic-dossier"):
        listed.as_dict()
    with pytest.raises(AuditIntegrityError, match=f"deadline {case_id}/domestic-dossier cannot be read"):
        service.deadlines_of(case_id)


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
def test_a_listed_deadline_can_be_saved_back(service: CaseService, clock: FixedClock) -> None:
    (case_id,) = referred_cases(service, clock, 1)
    (listed,) = DeadlineService(service.runtime).deadlines()
    with service.unit_of_work(True) as uow:
        uow.deadlines.save(listed)
        uow.commit()
    (again,) = service.deadlines_of(case_id)
    assert again == listed and service.verify().ok


# --- verify, many cases per query ---------------------------------------------------------------


def opened(service: CaseService, n: int) -> list[str]:
    ids = []
    for i in range(n):
        case_id = service.open_case(f"PX-V{i}", actor=DESK).case_id
        fire_example(service, case_id, "give_consent")
        fire_example(service, case_id, "record_circumstances")
        ids.append(case_id)
    return ids


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_verify_gives_the_same_report_whatever_the_batch(service: CaseService, clock: FixedClock) -> None:
    referred_cases(service, clock, 3)
    opened(service, 4)
    whole = service.verify()
    # referred: open and the four commands of PATHS["referred"]; opened: open and two commands
    assert whole.ok and whole.cases == 7 and whole.records == 3 * 5 + 4 * 3
    for size in (1, 2, 3, 7, 100):
        service.verify_batch = size
        assert service.verify() == whole


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
def test_verify_finds_a_tampered_case_in_the_middle_of_a_batch(db_url: str, service: CaseService) -> None:
    opened(service, 7)
    ids = [c.id for c in service.cases()]  # verify's order (opened at one moment: by id)
    sql(db_url, "UPDATE audit_records SET actor_id = 'someone-else' WHERE case_id = :c AND seq = 2", c=ids[3],
        bypass=True)  # fmt: skip
    sql(db_url, "UPDATE audit_records SET payload = '{not json' WHERE case_id = :c AND seq = 3", c=ids[4],
        bypass=True)  # fmt: skip
    reports = []
    for size in (500, 3, 2, 1):  # ids[3] and ids[4]: mid-batch, at a batch's start or end, alone
        service.verify_batch = size
        report = service.verify()
        assert report.cases == 7 and report.records == 6 * 3  # the unreadable case's records are not counted
        assert [(f.case_id, f.seq) for f in report.findings] == [(ids[3], 2), (ids[4], None)]
        assert "altered" in report.findings[0].problem
        assert f"audit record 3 of case {ids[4]} cannot be read" in report.findings[1].problem
        reports.append(report)
    assert all(r == reports[0] for r in reports)
    assert service.verify(ids[2]).ok and not service.verify(ids[3]).ok


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
def test_verify_reads_a_batch_in_three_queries(db_url: str, service: CaseService, clock: FixedClock) -> None:
    referred_cases(service, clock, 5)
    statements: list[str] = []
    with counted(service, statements) as spied:
        assert spied.verify().ok
    reads = [s for s in statements if "_records" in s or "case_transitions" in s or "FROM deadlines" in s]
    assert len(reads) == 3, statements


@contextmanager
def counted(service: CaseService, statements: list[str]) -> Iterator[CaseService]:
    """Record the SQL text of every statement the service's units of work run."""
    factory = service.unit_of_work

    class Spy:
        def __init__(self, cursor: Any) -> None:
            self._cursor = cursor

        def __getattr__(self, name: str) -> Any:
            return getattr(self._cursor, name)

        def execute(self, sql: str, *args: Any) -> Any:
            statements.append(sql)
            return self._cursor.execute(sql, *args)

    class Unit:
        def __init__(self, write: bool) -> None:
            self._uow: Any = factory(write)

        def __enter__(self) -> Any:
            inside = self._uow.__enter__()
            runner = inside.audit._run
            runner.cursor = Spy(runner.cursor)
            return inside

        def __exit__(self, *exc: Any) -> None:
            self._uow.__exit__(*exc)

    yield CaseService.on(replace(service.runtime, uow=Unit))


# --- delivery, one transaction a batch ----------------------------------------------------------


def due_notifications(
    service: CaseService, clock: FixedClock, channels: tuple[Channel, ...], n: int
) -> DeadlineService:
    referred_cases(service, clock, n)
    clock.set(T0 + 60 * DAY)
    deadlines = DeadlineService(service.runtime, channels)
    assert deadlines.sweep().breaches == n  # a reminder and a breach per case, one row each per channel
    return deadlines


def count_writes(deadlines: DeadlineService) -> tuple[DeadlineService, list[int]]:
    """The service on a runtime whose write units of work are counted from now on."""
    writes = [0]
    factory = deadlines.runtime.uow

    def unit(write: bool) -> Any:
        writes[0] += write
        return factory(write)

    return DeadlineService(replace(deadlines.runtime, uow=unit), deadlines.channels), writes


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_a_claimed_batch_is_settled_in_one_transaction(service: CaseService, clock: FixedClock) -> None:
    deadlines = due_notifications(service, clock, (Channel("log"),), 10)
    deadlines, writes = count_writes(deadlines)
    report = Delivery(deadlines).run_once()
    assert (report.delivered, report.failed) == (20, 0)
    assert writes[0] == 3  # claim, settle, and the claim that finds nothing left
    done = deadlines.notifications("delivered")
    assert len(done) == 20 and {(n.attempts, n.leased_until, n.delivered_at) for n in done} == {(1, None, clock.now())}


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_outcomes_of_one_batch_are_each_written(service: CaseService, clock: FixedClock) -> None:
    unreachable = Channel("webhook", "http://127.0.0.1:9/hook")  # nothing listens on the discard port
    deadlines = due_notifications(service, clock, (Channel("log"), unreachable), 2)
    report = Delivery(deadlines, max_attempts=1, send_timeout=2, flush_every=0).run_once()  # settle after each send
    assert (report.delivered, report.failed, report.dead) == (4, 4, 4)
    assert {n.channel for n in deadlines.notifications("delivered")} == {"log"}
    dead = deadlines.notifications("dead")
    assert len(dead) == 4 and all(n.attempts == 1 and n.last_error and n.channel == "webhook" for n in dead)


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_a_send_that_fails_outside_http_is_a_failed_attempt(service: CaseService, clock: FixedClock) -> None:
    """httpx.InvalidURL is not an httpx.HTTPError: it used to escape the batch and lose the outcomes
    of the notifications sent before it, which were then sent again at every lease."""
    malformed = Channel("webhook", "http://[::1")  # passes the configuration's http:// check
    deadlines = due_notifications(service, clock, (Channel("log"), malformed), 2)
    report = Delivery(deadlines, max_attempts=1).run_once()
    assert (report.delivered, report.failed, report.dead) == (4, 4, 4)
    assert {n.channel for n in deadlines.notifications("delivered")} == {"log"}
    assert all("InvalidURL" in (n.last_error or "") for n in deadlines.notifications("dead"))


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_a_batch_whose_outcomes_were_lost_is_delivered_again(service: CaseService, clock: FixedClock) -> None:
    """At least once: a worker that dies after sending, before settling, leaves the batch leased;
    when the lease has run out the next worker sends it again and records it once."""
    deadlines = due_notifications(service, clock, (Channel("log"),), 3)
    settle = deadlines.settle

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("killed before the outcomes were written")

    deadlines.settle = crash  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        Delivery(deadlines).run_once()
    deadlines.settle = settle  # type: ignore[method-assign]
    assert Delivery(deadlines).run_once().delivered == 0  # still leased to the dead worker
    clock.set(clock.now() + timedelta(minutes=3))
    assert Delivery(deadlines).run_once().delivered == 6
    assert {n.attempts for n in deadlines.notifications()} == {1}
    assert deadlines.notifications("pending") == []


def test_settling_nothing_opens_no_transaction(service: CaseService) -> None:
    deadlines = DeadlineService(service.runtime)
    deadlines, writes = count_writes(deadlines)
    assert deadlines.settle([], max_attempts=3) == [] and writes[0] == 0


def test_a_failed_settle_is_not_repeated_by_the_final_one(service: CaseService, clock: FixedClock) -> None:
    """A mid-batch settle that fails must not be written again by the settle of what is left."""
    deadlines = due_notifications(service, clock, (Channel("log"),), 2)
    calls: list[list[str]] = []

    def failing_once(outcomes: Any, max_attempts: int, **put_back: Any) -> Any:
        calls.append([n.key for n, _ in outcomes] + [n.key for n in put_back.get("released", ())])
        raise RuntimeError("lost the database")

    deadlines.settle = failing_once  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        Delivery(deadlines, flush_every=0).run_once()
    first, *later = calls  # later: the rest of the batch put back unattempted, never the failed one again
    assert len(first) == 1 and all(first[0] not in keys for keys in later), calls
