"""Webhook delivery against endpoints that answer too slowly to wait for (issue 14).

A trickling endpoint sends one byte of its answer every 0.2 s and never finishes: a per-read
timeout never fires on it, so only a total deadline per call ends the attempt. These tests run
real loopback HTTP servers and real worker processes; every wait for a server or a process is
bounded, and no test sleeps to let time pass.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from jobs import Delivery, DeliveryReport
from second_opinion import connect
from second_opinion.bootstrap import send_timeout_from_env
from tests.conftest import DESK, T0
from tests.reliability.test_worker import AFTER, DUE, Hook, counts, seed_due, worker
from workflow import FixedClock
from workflow.deadlines.policies import RUNNING, Deadline
from workflow.errors import ConfigurationError
from workflow.ports import Notification
from workflow.service.cases import CaseService
from workflow.service.deadlines import Channel, DeadlineService


class Trickle:
    """An endpoint that reads the request, then sends its status line one byte every 0.2 s, forever
    (until closed); it notes each request's key and when it arrived."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.keys: list[str | None] = []
        self.arrived: list[float] = []  # time.monotonic() of each request
        self.connected = threading.Event()
        trickle = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                trickle.keys.append(self.headers.get("Idempotency-Key"))
                trickle.arrived.append(time.monotonic())
                trickle.connected.set()
                answer = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 1_000_000
                try:
                    for byte in answer:
                        if trickle.stop.wait(0.2):  # pacing the bytes, not waiting for a clock
                            return
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                except OSError:  # the client hung up
                    return

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/slow"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def trickle() -> Iterator[Trickle]:
    t = Trickle()
    yield t
    t.close()


@pytest.fixture
def fast() -> Iterator[Hook]:
    h = Hook([])
    yield h
    h.close()


class Arrivals(list[tuple[str | None, dict[str, Any]]]):
    """A :class:`Hook`'s list of requests that notes when each arrived, and moves a fake monotonic
    clock on by ``step`` seconds with each (a call that "takes" that long)."""

    def __init__(self, step: float = 0) -> None:
        super().__init__()
        self.at: list[float] = []
        self.now = 0.0
        self.step = step

    def append(self, item: tuple[str | None, dict[str, Any]]) -> None:
        self.at.append(time.monotonic())
        self.now += self.step
        super().append(item)


def due_notifications(service: CaseService, clock: FixedClock, channels: list[Channel], cases: int) -> DeadlineService:
    """``cases`` new cases, each with one deadline breached now; their notifications go to ``channels``."""
    for i in range(cases):
        case_id = service.open_case(f"PX-S{i}", actor=DESK).case_id
        with service.unit_of_work(True) as uow:
            uow.deadlines.save(
                Deadline(case_id, "domestic-dossier", RUNNING, "nl-atw", 10, T0, DUE, clock.now(), 1, {}, None, T0)
            )
            uow.commit()
    deadlines = DeadlineService(service.runtime, channels)
    assert deadlines.sweep().breaches == cases
    return deadlines


def run_bounded(call: Callable[[], DeliveryReport], within: float) -> tuple[DeliveryReport, float]:
    """Run ``call`` in a thread and wait at most ``within`` seconds for it: a hung delivery fails
    the test instead of hanging the suite (the thread is a daemon, left behind)."""
    result: list[DeliveryReport] = []
    thread = threading.Thread(target=lambda: result.append(call()), daemon=True)
    started = time.monotonic()
    thread.start()
    thread.join(within)
    assert result, f"delivery still running after {within} s"
    return result[0], time.monotonic() - started


def by_target(deadlines: DeadlineService, target: str) -> list[Notification]:
    return [n for n in deadlines.notifications() if n.target == target]


@pytest.mark.parametrize("db_url", ["memory", "sqlite"], indirect=True)
def test_a_trickling_webhook_fails_at_its_deadline_and_delays_no_other_target(service, clock, trickle, fast) -> None:  # type: ignore[no-untyped-def]
    clock.set(DUE)
    due_notifications(service, clock, [Channel("log"), Channel("webhook", trickle.url)], cases=3)
    deadlines = due_notifications(service, clock, [Channel("webhook", fast.url)], cases=1)
    delivery = Delivery(deadlines, send_timeout=0.5)
    report, took = run_bounded(delivery.run_once, within=20)
    print(f"\ndelivery round with a trickling target (0.5 s deadline): {took:.2f} s")
    assert took < 5, took  # one 0.5 s deadline, not three, and never the trickle's pace
    slow = by_target(deadlines, trickle.url)
    attempted = [n for n in slow if n.attempts]
    assert len(attempted) == 1 and attempted[0].status == "pending", slow  # a failed attempt, retried later
    assert attempted[0].last_error is not None and "0.5 s" in attempted[0].last_error
    assert attempted[0].next_attempt_at == DUE + timedelta(seconds=30)  # backoff as for any failure
    rest = [n for n in slow if not n.attempts]  # the slow target's others wait for its next round, unattempted
    assert len(rest) == 2 and all(n.status == "pending" and n.leased_until is None for n in rest), rest
    assert len(trickle.keys) == 1  # after the deadline, no second call to the same slow target
    (quick,) = by_target(deadlines, fast.url)
    assert quick.status == "delivered" and len(fast.requests) == 1
    assert len(deadlines.notifications("delivered")) == 4  # the fast webhook and the three log lines
    assert (report.delivered, report.failed, report.deferred, report.released) == (4, 1, 2, 0)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_fast_target_is_delivered_while_a_slow_one_is_still_answering(service, clock, trickle, fast) -> None:  # type: ignore[no-untyped-def]
    """The slow target's notification comes first in the batch; the fast one is not queued behind it."""
    clock.set(DUE)
    due_notifications(service, clock, [Channel("webhook", trickle.url)], cases=1)
    deadlines = due_notifications(service, clock, [Channel("webhook", fast.url)], cases=1)
    fast.requests = arrivals = Arrivals()
    run_bounded(Delivery(deadlines, send_timeout=2).run_once, within=20)
    assert len(arrivals.at) == 1 and len(trickle.arrived) == 1
    assert arrivals.at[0] < trickle.arrived[0] + 2  # delivered before the slow call's deadline


class Gated(list[tuple[str | None, dict[str, Any]]]):
    """A :class:`Hook`'s list of requests whose handler answers only once ``gate`` is set."""

    def __init__(self, gate: threading.Event) -> None:
        super().__init__()
        self.gate = gate

    def append(self, item: tuple[str | None, dict[str, Any]]) -> None:
        self.gate.wait(10)
        super().append(item)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_slow_settle_does_not_fail_the_calls_in_flight(service, clock, fast) -> None:  # type: ignore[no-untyped-def]
    """Found by review: the mid-round settle (a database transaction) ran on the event loop, so a
    database waiting seconds on a lock stalled every call in flight past its deadline, booked as
    failed. It runs on a thread: here each settle takes 1.5 s against a 0.5 s send deadline."""
    clock.set(DUE)
    deadlines = due_notifications(service, clock, [Channel("webhook", fast.url)], cases=1)
    settling = threading.Event()
    others = [Hook([]) for _ in range(3)]
    try:
        for other in others:  # these answer only once the first settle has begun: their calls are in flight
            other.requests = Gated(settling)
            due_notifications(service, clock, [Channel("webhook", other.url)], cases=1)
        settle = deadlines.settle

        def slow_settle(*args: Any, **kwargs: Any) -> Any:
            settling.set()
            threading.Event().wait(1.5)  # a lock wait in the database, as the worker meets it
            return settle(*args, **kwargs)

        deadlines.settle = slow_settle  # type: ignore[method-assign]
        report, _ = run_bounded(Delivery(deadlines, send_timeout=0.5, flush_every=0).run_once, within=30)
        assert (report.delivered, report.failed) == (4, 0), report
    finally:
        for other in others:
            other.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_stop_during_a_slow_send_returns_at_once_and_leaves_it_pending(service, clock, trickle) -> None:  # type: ignore[no-untyped-def]
    clock.set(DUE)
    deadlines = due_notifications(service, clock, [Channel("webhook", trickle.url)], cases=3)
    delivery = Delivery(deadlines, send_timeout=30)
    stop = threading.Event()
    threading.Thread(target=lambda: trickle.connected.wait(20) and stop.set(), daemon=True).start()
    report, took = run_bounded(lambda: delivery.run_once(should_stop=stop.is_set), within=20)
    print(f"\ndelivery round stopped mid-call (30 s deadline): {took:.2f} s")
    assert stop.is_set() and took < 5, took  # far sooner than the 30 s deadline
    pending = deadlines.notifications("pending")
    assert len(pending) == 3 and all(n.attempts == 0 and n.leased_until is None for n in pending), pending
    assert (report.delivered, report.failed, report.released) == (0, 0, 3)
    assert deadlines.claim_notifications() != []  # released: the next worker can take them at once


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_batch_never_outlasts_its_lease(service, clock) -> None:  # type: ignore[no-untyped-def]
    """Answers that each take 20 s (on a fake monotonic clock), each within the 30 s deadline: a
    2-minute lease covers only a few of them, so the rest of the claimed batch goes back and is
    claimed afresh, with a new lease, instead of being sent after its lease ran out."""
    hook = Hook([])
    hook.requests = slow = Arrivals(step=20)
    try:
        clock.set(DUE)
        deadlines = due_notifications(service, clock, [Channel("webhook", hook.url)], cases=12)
        delivery = Delivery(deadlines, send_timeout=30, monotonic=lambda: slow.now)
        claims: list[float] = []
        claim = deadlines.claim_notifications

        def noted(*args: Any, **kwargs: Any) -> list[Notification]:
            claims.append(slow.now)
            return claim(*args, **kwargs)

        deadlines.claim_notifications = noted  # type: ignore[method-assign]
        report, _ = run_bounded(delivery.run_once, within=60)
        assert report.delivered == 12 and len(hook.requests) == 12
        assert len({key for key, _ in hook.requests}) == 12  # each sent once
        # every send started with a full deadline left on its batch's lease
        starts = [20 * i for i in range(12)]
        for start in starts:
            claimed_at = max(c for c in claims if c <= start)
            assert start + 30 <= claimed_at + 120, (start, claims)
        assert len(claims) > 3
    finally:
        hook.close()


# --- the worker process ---------------------------------------------------------------------------


def wait_for(what: str, ready: Callable[[], bool], proc: Any, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while not ready():
        assert proc.running(), proc.finish()
        assert time.monotonic() < deadline, f"waited {within} s for {what}"
        time.sleep(0.05)


def outbox(url: str) -> list[dict[str, Any]]:
    env = {**os.environ, "SECOND_OPINION_DB": url, "SECOND_OPINION_CLOCK": AFTER}
    done = subprocess.run([sys.executable, "-m", "second_opinion", "outbox", "--json"], env=env, capture_output=True,
                          text=True, timeout=60, check=True)  # fmt: skip
    listed: list[dict[str, Any]] = json.loads(done.stdout)
    return listed


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("mode", ["catch-up", "scheduled", "once"])
def test_sigterm_in_a_slow_delivery_exits_within_10_s_leaving_it_pending(db_url, trickle, mode, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """SIGTERM lands while the worker waits on a trickling webhook: in the sweep that runs before the
    scheduler starts, in a scheduled run, and in ``--once``. The deadline (60 s) is far away; the
    worker still exits 0 within 10 s, and what it did not deliver stays pending, unattempted."""
    monkeypatch.setenv("SECOND_OPINION_WEBHOOK_URL", trickle.url)
    if mode != "scheduled":
        seed_due(db_url, 3)
    args = {"once": ["--once"], "catch-up": ["--interval", "3600"], "scheduled": ["--interval", "1"]}[mode]
    proc = worker(db_url, *args, "--send-timeout", "60")
    if mode == "scheduled":
        wait_for("the scheduler", lambda: "Scheduler started" in proc.stderr_so_far(), proc)
        seed_due(db_url, 3)
    wait_for("a webhook call", trickle.connected.is_set, proc)
    proc.proc.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    try:
        code, _, err = proc.finish(timeout=30)
    except subprocess.TimeoutExpired:
        proc.proc.kill()
        pytest.fail(f"the worker was still running 30 s after SIGTERM: {proc.finish(timeout=30)}")
    took = time.monotonic() - signalled
    print(f"\nworker ({mode}): exit {code} {took:.2f} s after SIGTERM")
    assert code == 0 and took < 10, (code, took, err)
    assert "Traceback" not in err, err
    assert counts(db_url)["breach_records"] == 3  # the sweep was complete before delivery began
    listed = outbox(db_url)
    hooks = [n for n in listed if n["channel"] == "webhook"]
    assert len(hooks) == 6 and all(n["status"] == "pending" and n["attempts"] == 0 for n in hooks), hooks
    assert all(n["status"] == "delivered" for n in listed if n["channel"] == "log")
    with connect(db_url, clock=FixedClock(DUE)) as service:  # nothing is left leased to the stopped worker
        assert all(n.leased_until is None for n in DeadlineService(service.runtime).notifications("pending"))


# --- the lease and its settings -------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_claim_locks_only_the_rows_it_leases(service, clock) -> None:  # type: ignore[no-untyped-def]
    """The claim used to lock 100 rows to lease 50: while one worker's claim was open, another's
    skipped rows the first was not going to send (here: every row, so it found nothing)."""
    clock.set(DUE)
    due_notifications(service, clock, [Channel("log")], cases=5)
    now, lease = clock.now(), clock.now() + timedelta(minutes=2)
    with service.unit_of_work(True) as first:
        mine = first.outbox.claim(now, lease, 2)
        with service.unit_of_work(True) as second:
            theirs = second.outbox.claim(now, lease, 2)
            second.commit()
        first.commit()
    assert len(mine) == 2 and len(theirs) == 2 and not {n.id for n in mine} & {n.id for n in theirs}


@pytest.mark.parametrize("value", ["abc", "0", "-1", "nan", "inf", "61", "5s"])
def test_a_send_timeout_that_is_no_sensible_number_of_seconds_is_refused(value: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        send_timeout_from_env({"SECOND_OPINION_SEND_TIMEOUT": value})
    assert "SECOND_OPINION_SEND_TIMEOUT" in str(refused.value) and repr(value) in str(refused.value)


def test_the_send_timeout_comes_from_the_environment_or_the_default() -> None:
    assert send_timeout_from_env({"SECOND_OPINION_SEND_TIMEOUT": "2.5"}) == 2.5
    assert send_timeout_from_env({"SECOND_OPINION_SEND_TIMEOUT": ""}) is None
    assert send_timeout_from_env({}) is None
