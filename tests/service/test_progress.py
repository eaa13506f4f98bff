"""Progress of long work (issue 18): what each long operation tells its optional
:class:`~workflow.service.progress.Progress`, and that passing one changes nothing it returns.

The calls are counted, not timed: once per batch for ``verify``, every ``EXPORT_STEP`` records for
``export``, once per transaction for ``recompute`` and the sweep, once per migration for ``init``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from jobs import Delivery, Worker
from second_opinion import connect, init
from storage import open_backend
from storage.migrate import head_revision
from tests.conftest import DESK, T0, walk
from tests.service.test_deadlines import royal_doctors_case
from workflow import CaseService, FixedClock
from workflow.deadlines.calendars import Calendars, Closure
from workflow.service.deadlines import DeadlineService
from workflow.service.progress import Progress

Calls = list[tuple[int, int | None]]


def spy() -> tuple[Calls, Progress]:
    calls: Calls = []

    def progress(done: int, total: int | None, /) -> None:
        calls.append((done, total))

    return calls, progress


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def service(db_url: str, clock: FixedClock) -> Iterator[CaseService]:
    with connect(db_url, clock=clock) as service:
        for i in range(5):
            walk(service, service.open_case(f"PX-{i:04d}", actor=DESK).case_id, "referred")
        yield service


def test_verify_tells_the_cases_done_once_per_batch(service: CaseService) -> None:
    calls, progress = spy()
    service.verify_batch = 2
    report = service.verify(progress=progress)
    assert calls == [(2, 5), (4, 5), (5, 5)]
    assert report == service.verify()  # the same report without it
    one, progress = spy()
    assert service.verify(service.cases()[0].id, progress).ok and one == [(1, 1)]


def test_export_tells_the_records_read_every_step_then_the_total(
    service: CaseService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("workflow.service.views.EXPORT_STEP", 4)
    calls, progress = spy()
    records = service.export(progress=progress)
    n = len(records)
    assert records == service.export() and n == 25  # five records a referred case
    assert calls == [(k, None) for k in range(4, n + 1, 4)] + [(n, n)]
    none_left, progress = spy()
    assert service.export(after=records[-1].sequence, progress=progress) == [] and none_left == [(0, 0)]


def test_recompute_tells_the_cases_done_of_those_with_a_running_deadline(db_url: str, clock: FixedClock) -> None:
    with connect(db_url, clock=clock) as before:
        royal_doctors_case(before)
        royal_doctors_case(before)
    changed = Calendars("rd", [Closure("rd", date(2026, 12, 1), "closed for a move")])
    backend = open_backend(db_url)
    with CaseService(backend.unit_of_work, clock, calendars=changed, on_close=backend.close) as after:
        calls, progress = spy()
        assert len(DeadlineService(after.runtime).recompute(progress)) == 2
        assert calls == [(1, 2), (2, 2)]


def test_the_sweep_tells_each_claim_and_no_total(service: CaseService, clock: FixedClock) -> None:
    clock.set(datetime(2027, 1, 1, tzinfo=UTC))  # every referred case's dossier deadline is past
    calls, progress = spy()
    swept = DeadlineService(service.runtime).sweep(progress=progress)
    assert swept.cases == 5 and calls == [(n, None) for n in range(1, 6)]


def test_init_tells_each_migration_of_those_pending(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.sqlite3'}"
    calls, progress = spy()
    assert init(url, progress) == head_revision()
    total = int(head_revision())
    assert calls == [(n, total) for n in range(1, total + 1)]
    again, progress = spy()
    init(url, progress)
    assert again == []  # nothing pending: nothing to tell
    assert init("memory://", progress) == "memory" and again == []


def test_the_worker_shows_the_catch_up_sweep_only_and_closes_it_before_delivering(
    service: CaseService, clock: FixedClock
) -> None:
    clock.set(datetime(2027, 1, 1, tzinfo=UTC))
    events: list[str] = []

    @contextmanager
    def catch_up() -> Iterator[Progress]:
        events.append("open")
        yield lambda done, total: events.append(f"{done}/{total}")
        events.append("close")

    deadlines = DeadlineService(service.runtime)

    class Recorded(Delivery):
        def run_once(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            events.append("deliver")
            return super().run_once(*args, **kwargs)

    worker = Worker(deadlines, Recorded(deadlines), catch_up=catch_up)
    worker.once()
    assert events == ["open", *(f"{n}/None" for n in range(1, 6)), "close", "deliver"]
    clock.set(clock.now() + timedelta(days=30))
    events.clear()
    worker.tick()  # a scheduled run: no bar
    assert "open" not in events and events[-1] == "deliver"
