"""SIGKILL at random moments, 50 times per backend, during ``fire`` and during a deadline sweep.

A killed process is the harshest crash there is: no ``finally``, no rollback from our side, a
connection cut mid-statement. After every kill the database must hold each case either before or
after a command, never between (``verify`` replays every chain against its case row and
transition log), and once the work is resumed, every intended command must be recorded exactly
once: nothing lost, nothing duplicated.

The victim is a forked copy of this test process (already imported, so a kill costs
milliseconds, not an interpreter start); it opens its own connections after the fork. It writes a
byte to a pipe as it starts each command; the test reads a random number of bytes, spins for a
random few hundred microseconds, and kills: the moment lands anywhere inside a command.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable
from datetime import timedelta

import pytest

from second_opinion import connect
from tests.conftest import DESK, PATHS, SQL_BACKENDS, T0, fire_example
from tests.reliability.test_worker import DOMESTIC_DUE, counts, seed_due
from workflow import FixedClock
from workflow.service.deadlines import DeadlineService

KILLS = 50
PATH = PATHS["back_to_first_provider"]


def _kill_at_random(work: Callable[[Callable[[], None]], None], rng: random.Random, most: int) -> bool:
    """Fork; the child runs ``work(tick)`` and exits; the parent kills it after a random number of
    ticks (plus a random spin). True when the kill landed before the child finished."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the victim: never return into pytest
        os.close(read_end)
        try:
            work(lambda: os.write(write_end, b"."))
        finally:
            os._exit(0)
    os.close(write_end)
    wanted, seen = rng.randint(1, most), 0
    while seen < wanted:
        chunk = os.read(read_end, wanted - seen)
        if not chunk:
            break  # the child finished first
        seen += len(chunk)
    spin_until = time.perf_counter() + rng.uniform(0, 0.0008)
    while time.perf_counter() < spin_until:
        pass
    killed = seen >= wanted
    if killed:
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    os.close(read_end)
    return killed


def _key(case_id: str, event: str) -> str:
    return f"{case_id}/{event}"


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
def test_sigkill_during_fire(db_url: str) -> None:
    with connect(db_url, clock=FixedClock(T0)) as service:
        cases = [service.open_case(f"PX-{i:04d}", actor=DESK).case_id for i in range(60)]

    def fire_everything(tick: Callable[[], None]) -> None:
        with connect(db_url, clock=FixedClock(T0)) as child:
            for case_id in cases:
                done = {r.event for r in child.history(case_id) if r.outcome == "accepted"}
                for event in PATH:
                    if event not in done:
                        tick()
                        fire_example(child, case_id, event, idempotency_key=_key(case_id, event))

    rng = random.Random(7)
    kills = 0
    for _ in range(KILLS):
        kills += _kill_at_random(fire_everything, rng, most=12)
        with connect(db_url, clock=FixedClock(T0)) as service:
            report = service.verify()
            assert report.ok, report.findings  # every case before or after each command, never between
    assert kills == KILLS, "the work finished before every kill: the test killed too late"
    with connect(db_url, clock=FixedClock(T0)) as service:
        for case_id in cases:  # resume as a client would: every command again, with its key
            for event in PATH:
                fire_example(service, case_id, event, idempotency_key=_key(case_id, event))
        for case_id in cases:
            accepted = [r.event for r in service.history(case_id) if r.outcome == "accepted"]
            assert accepted == ["open", *PATH], (case_id, accepted)  # none lost, none twice
            assert service.case(case_id).state == "back_to_first_provider"
        assert service.verify().ok


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
def test_sigkill_during_sweep(db_url: str) -> None:
    total = 400
    seed_due(db_url, total)
    clock = FixedClock(DOMESTIC_DUE + timedelta(minutes=5))  # every deadline due, as in test_worker

    def sweep(tick: Callable[[], None]) -> None:
        def ticking() -> bool:
            tick()  # called before each claim: one byte per case begun
            return False

        with connect(db_url, clock=clock) as child:
            DeadlineService(child.runtime).sweep(should_stop=ticking)

    rng = random.Random(11)
    kills = 0
    for _ in range(KILLS):
        if counts(db_url)["breach_records"] >= total:
            break
        kills += _kill_at_random(sweep, rng, most=8)
        found = counts(db_url)
        assert found["breach_records"] == found["deadlines_breached"] == found["cases_breached"], found
        assert found["max_per_case"] <= 1 and found["outbox"] == 2 * found["breach_records"], found
    assert kills >= KILLS - 1, f"only {kills} kills landed mid-sweep"
    with connect(db_url, clock=clock) as service:
        DeadlineService(service.runtime).sweep()
        assert service.verify().ok
    assert counts(db_url) == {"breach_records": total, "cases_breached": total, "max_per_case": 1,
                              "deadlines_breached": total, "outbox": 2 * total}  # fmt: skip
