"""Incremental exports miss nothing under concurrent writers (issue 14).

Writers on different cases commit concurrently while a reader pulls again and again, each time
after the cursor of its previous pull (``--after``), and another from the last ``recorded_at`` it
saw (``--since``). Without one appender at a time, a transaction that took sequence 7 could commit
after one that took 8 was read: the pull after 8 would never see 7. The union of the pulls must be
the whole export, in order, without a gap. The clock ticks a microsecond per reading, under a lock,
so that it is strictly monotonic and no test waits for time to pass.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest

from tests.conftest import BACKENDS, DESK, T0, fire_example
from workflow import CaseService

WRITERS = 4
CASES_PER_WRITER = 6


class TickingClock:
    """Each reading a microsecond after the last: many threads, one strictly increasing time."""

    def __init__(self, start: datetime) -> None:
        self._at = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            self._at += timedelta(microseconds=1)
            return self._at


@pytest.fixture
def clock() -> TickingClock:
    return TickingClock(T0)


def write(service: CaseService, writer: int, go: threading.Event, failures: list[BaseException]) -> None:
    try:
        assert go.wait(60)
        for i in range(CASES_PER_WRITER):
            case_id = service.open_case(f"PX-W{writer}-{i}", actor=DESK).case_id
            fire_example(service, case_id, "record_circumstances")
            fire_example(service, case_id, "give_consent")
    except BaseException as exc:  # reported by the test
        failures.append(exc)


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_incremental_exports_after_a_cursor_or_since_a_time_miss_nothing(service: CaseService) -> None:
    failures: list[BaseException] = []
    go = threading.Event()  # the writers start together, once the reader is pulling
    writers = [threading.Thread(target=write, args=(service, w, go, failures)) for w in range(WRITERS)]
    by_cursor: list[int] = []
    by_time: dict[int, datetime] = {}
    cursor = 0
    since: datetime | None = None

    def pull() -> None:
        nonlocal cursor, since
        got = service.export(after=cursor)
        assert all(r.sequence is not None and r.sequence > cursor for r in got)
        by_cursor.extend(r.sequence for r in got if r.sequence is not None)
        cursor = max((r.sequence for r in got if r.sequence is not None), default=cursor)
        timed = service.export(since)
        by_time.update((r.sequence, r.recorded_at) for r in timed if r.sequence is not None)
        since = max((r.recorded_at for r in timed), default=since)

    for thread in writers:
        thread.start()
    pull()
    go.set()
    pulls = 1
    while any(thread.is_alive() for thread in writers):
        pull()
        pulls += 1
    for thread in writers:
        thread.join()
    pull()  # what committed after the last pull during the run
    assert failures == []
    whole = service.export()
    assert len(whole) == WRITERS * CASES_PER_WRITER * 3
    everything = [r.sequence for r in whole]
    assert by_cursor == everything, "a pull after the cursor missed or repeated a record"
    assert sorted(by_time) == everything, "a pull since the last time missed a record"
    times = [r.recorded_at for r in whole]
    assert times == sorted(times), "recorded_at went back in storage order"
    print(f"{pulls} pulls during the run")
