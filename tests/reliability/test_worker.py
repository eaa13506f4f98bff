"""The worker as users run it: separate processes on one database, killed, stopped, restarted;
and webhook delivery with retries and a dead-letter queue against a real local HTTP server.

Each case gets one due deadline (written through the storage port, so thousands can be
prepared in seconds); the assertions count audit records and outbox rows in the database.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import text

from jobs import Delivery
from second_opinion import connect
from tests.conftest import DESK, SQL_BACKENDS, T0, sql_engine, walk
from tests.soak import count
from workflow import FixedClock
from workflow.clock import utc_iso
from workflow.deadlines.policies import RUNNING, Deadline
from workflow.service.deadlines import Channel, DeadlineService

DUE = T0 + timedelta(hours=1)  # for the webhook tests' hand-made deadline
DOMESTIC_DUE = datetime(2026, 12, 7, 22, 59, 59, tzinfo=UTC)  # 10 working days after Monday 23 November
AFTER = utc_iso(DOMESTIC_DUE + timedelta(minutes=5))
SWEEP_CASES = count("SWEEP_CASES", 1000, 1500)
"""Due cases for the kill and stop tests: the kills land within the first 700 or so (three rounds of
20-300 more), the stop after 50; the rest is what the restarted worker must catch up on."""


def seed_due(url: str, n: int, threads: int = 1) -> list[str]:
    """``n`` referred domestic cases, made by real commands: each has its dossier deadline (a
    reminder and the breach) due by AFTER, and an audit trail that rebuilds it."""

    def one(i: int) -> str:
        case_id = service.open_case(f"PX-{i:05d}", actor=DESK).case_id
        walk(service, case_id, "referred")
        return case_id

    with connect(url, clock=FixedClock(T0)) as service, ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(n)))


def counts(url: str) -> dict[str, Any]:
    engine = sql_engine(url)
    try:
        with engine.connect() as conn:
            per_case = conn.execute(
                text("SELECT case_id, count(*) FROM audit_records WHERE event = 'deadline_breached' GROUP BY case_id")
            ).all()
            return {
                "breach_records": sum(n for _, n in per_case),
                "cases_breached": len(per_case),
                "max_per_case": max((n for _, n in per_case), default=0),
                "deadlines_breached": conn.execute(
                    text("SELECT count(*) FROM deadlines WHERE state = 'breached'")
                ).scalar(),
                "outbox": conn.execute(text("SELECT count(*) FROM outbox")).scalar(),
            }
    finally:
        engine.dispose()


class Worker:
    """A ``second-opinion worker`` process; its output goes to files, so a chatty log can never
    fill a pipe and block it."""

    def __init__(self, url: str, *args: str, clock: str = AFTER) -> None:
        env = {**os.environ, "SECOND_OPINION_DB": url, "SECOND_OPINION_CLOCK": clock}
        self._out = tempfile.TemporaryFile("w+")  # noqa: SIM115  (closed by finish())
        self._err = tempfile.TemporaryFile("w+")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "second_opinion", "worker", "--allow-clock-override", *args], env=env, text=True,
            stdout=self._out, stderr=self._err,
        )  # fmt: skip

    def running(self) -> bool:
        return self.proc.poll() is None

    def stderr_so_far(self) -> str:
        return os.pread(self._err.fileno(), 1 << 20, 0).decode()

    def finish(self, timeout: float = 600) -> tuple[int, str, str]:
        code = self.proc.wait(timeout=timeout)
        self._out.seek(0)
        self._err.seek(0)
        out, err = self._out.read(), self._err.read()
        self._out.close()
        self._err.close()
        return code, out, err


def worker(url: str, *args: str, clock: str = AFTER) -> Worker:
    return Worker(url, *args, clock=clock)


def verified(url: str) -> bool:
    with connect(url, clock=FixedClock(DOMESTIC_DUE + timedelta(minutes=5))) as service:
        return service.verify().ok


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_four_worker_processes_record_5000_breaches_exactly_once(db_url: str) -> None:
    """5,000 due cases with SECOND_OPINION_SOAK=1 (or SECOND_OPINION_WORKER_CASES=5000); the suite's
    1,000 are still several seconds of sweeping per worker, so all four start well before the end."""
    due = count("WORKER_CASES", 1000, 5000)
    ids = seed_due(db_url, due, threads=4)
    procs = [worker(db_url, "--once") for _ in range(4)]
    results = [p.finish() for p in procs]
    assert [code for code, _, _ in results] == [0] * 4, results
    outputs = [(out, err) for _, out, err in results]
    swept = [int(out.split("swept ")[1].split(" cases")[0]) for out, _ in outputs]
    assert sum(swept) == due and sum(1 for n in swept if n) >= 2, swept  # they really shared the work
    found = counts(db_url)
    assert found == {"breach_records": due, "cases_breached": due, "max_per_case": 1, "deadlines_breached": due,
                     "outbox": 2 * due}, found  # fmt: skip  (a reminder and a breach per case)
    delivered = sum(int(out.split("delivered ")[1].split(",")[0]) for out, _ in outputs)
    assert delivered == 2 * due
    assert len(ids) == due and verified(db_url)


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
def test_sigkill_mid_sweep_loses_and_duplicates_nothing(db_url: str) -> None:
    total = SWEEP_CASES
    seed_due(db_url, total, threads=4 if db_url.startswith("postgresql") else 1)
    rng = random.Random(5)
    kills = 0
    for _ in range(3):
        handled = counts(db_url)["breach_records"]
        if handled >= total:
            break
        target = handled + rng.randint(20, 300)
        proc = worker(db_url, "--once")
        while proc.running() and counts(db_url)["breach_records"] < target:
            time.sleep(0.01)
        if proc.running():
            proc.proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.finish(timeout=60)
        found = counts(db_url)
        assert found["breach_records"] == found["deadlines_breached"] == found["outbox"] // 2 == found["cases_breached"]
        assert found["max_per_case"] <= 1
    assert kills >= 1, "every worker finished before it could be killed: nothing was tested"
    code, _, err = worker(db_url, "--once").finish()
    assert code == 0, err
    assert counts(db_url) == {"breach_records": total, "cases_breached": total, "max_per_case": 1,
                              "deadlines_breached": total, "outbox": 2 * total}  # fmt: skip
    assert verified(db_url)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sigterm_stops_between_claims_and_a_restart_catches_up(db_url: str) -> None:
    total = SWEEP_CASES
    seed_due(db_url, total)
    proc = worker(db_url, "--interval", "3600")
    while counts(db_url)["breach_records"] < 50:
        assert proc.running(), proc.finish()
        time.sleep(0.01)
    proc.proc.send_signal(signal.SIGTERM)
    code, _, err = proc.finish(timeout=60)
    assert code == 0, err
    assert "stopping after the current claim" in err and "Traceback" not in err
    stopped = counts(db_url)
    assert stopped["breach_records"] == stopped["deadlines_breached"] < total  # stopped mid-way, nothing half-done
    assert worker(db_url, "--once").finish()[0] == 0
    assert counts(db_url)["breach_records"] == total and verified(db_url)


# --- webhooks -----------------------------------------------------------------------------------


class Hook:
    """A local HTTP endpoint that answers with the statuses it is given, then 200."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.requests: list[tuple[str | None, dict[str, Any]]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.requests.append((self.headers.get("Idempotency-Key"), body))
                self.send_response(hook.statuses.pop(0) if hook.statuses else 200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def breached(service, clock):  # type: ignore[no-untyped-def]
    """A service with one breached deadline's notification, set to go to a webhook."""
    case_id = service.open_case("PX-W1", actor=DESK).case_id
    backend_uow = service.unit_of_work
    with backend_uow(True) as uow:
        uow.deadlines.save(Deadline(case_id, "domestic-dossier", RUNNING, "nl-atw", 10, T0, DUE, DUE, 1, {}, None, T0))
        uow.commit()
    clock.set(DUE)
    return case_id


def _hooked(service, url: str) -> DeadlineService:  # type: ignore[no-untyped-def]
    deadlines = DeadlineService(service.runtime, [Channel("webhook", url)])
    assert deadlines.sweep().breaches == 1
    return deadlines


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook([])
    yield h
    h.close()


@pytest.mark.parametrize("db_url", ["memory", "sqlite"], indirect=True)
def test_webhook_retries_with_backoff_and_one_idempotency_key(service, clock, breached, hook) -> None:  # type: ignore[no-untyped-def]
    hook.statuses[:] = [500, 503]
    deadlines = _hooked(service, hook.url)
    delivery = Delivery(deadlines, max_attempts=5)
    assert delivery.run_once().failed == 1
    assert delivery.run_once().failed == 0  # not due again yet: 30 s backoff
    (pending,) = deadlines.notifications("pending")
    assert (pending.attempts, pending.last_error) == (1, "HTTP 500")
    assert pending.next_attempt_at == DUE + timedelta(seconds=30)
    clock.advance(timedelta(seconds=30))
    assert delivery.run_once().failed == 1
    (pending,) = deadlines.notifications("pending")
    assert pending.next_attempt_at == DUE + timedelta(seconds=30 + 60)  # doubled
    clock.advance(timedelta(seconds=60))
    assert delivery.run_once().delivered == 1
    (done,) = deadlines.notifications("delivered")
    assert done.attempts == 3 and done.delivered_at == clock.now()
    keys = {key for key, _ in hook.requests}
    assert len(hook.requests) == 3 and keys == {done.key}
    assert hook.requests[0][1]["kind"] == "deadline_breached" and hook.requests[0][1]["case_id"] == breached


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_webhook_dead_letter_after_max_attempts_and_retry(service, clock, breached, hook) -> None:  # type: ignore[no-untyped-def]
    hook.statuses[:] = [500] * 3
    deadlines = _hooked(service, hook.url)
    delivery = Delivery(deadlines, max_attempts=3)
    for _ in range(3):
        delivery.run_once()
        clock.advance(timedelta(hours=1))
    (dead,) = deadlines.notifications("dead")
    assert dead.attempts == 3 and dead.last_error == "HTTP 500"
    assert delivery.run_once().delivered == 0  # dead letters are not retried by themselves
    deadlines.retry(dead.id)  # type: ignore[arg-type]
    assert delivery.run_once().delivered == 1 and len(hook.requests) == 4


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_unreachable_webhook_is_a_recorded_failure(service, breached) -> None:  # type: ignore[no-untyped-def]
    deadlines = _hooked(service, "http://127.0.0.1:9/hook")  # nothing listens on port 9
    delivery = Delivery(deadlines, max_attempts=5, send_timeout=2)
    assert delivery.run_once().failed == 1
    (pending,) = deadlines.notifications("pending")
    assert pending.last_error is not None and "Connect" in pending.last_error


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_scheduler_runs_the_sweep_and_stops_on_sigterm(db_url: str) -> None:
    proc = worker(db_url, "--interval", "1")
    deadline = time.monotonic() + 60
    while "Scheduler started" not in proc.stderr_so_far():
        assert proc.running() and time.monotonic() < deadline, proc.finish()
        time.sleep(0.05)
    seed_due(db_url, 3)  # falls due while the scheduler runs: its next interval picks them up
    while counts(db_url)["breach_records"] < 3:
        assert proc.running() and time.monotonic() < deadline, proc.finish()
        time.sleep(0.05)
    proc.proc.send_signal(signal.SIGTERM)
    code, _, err = proc.finish(timeout=30)
    assert code == 0 and "worker stopped" in err and "Traceback" not in err, err
    assert verified(db_url)
