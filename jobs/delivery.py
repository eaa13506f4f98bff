"""Delivering outbox notifications: to the log, or as a webhook POST with retries.

A webhook receives the notification as JSON with an ``Idempotency-Key`` header that is the same
on every attempt, because delivery is at least once: a worker that dies after the POST and
before recording it will POST again. Failures back off exponentially (30 s, 1 min, 2 min, ...,
at most an hour); after ``max_attempts`` the notification is dead-lettered, visible with
``second-opinion outbox --status dead`` and re-queued with ``second-opinion outbox retry ID``.

**Nothing slow stalls it.** Every call has a *total* deadline (``send_timeout``: connect, send,
and the answer's status line and headers; the body is never read, a webhook's answer is its
status). httpx's own timeouts are per read, so an endpoint that trickles one byte at a time
would never hit them; the deadline is therefore an ``asyncio.timeout`` around the whole call,
which cancels it and closes its connection wherever it is. A call past its deadline is a failed
attempt like any other. Notifications are grouped by target: each target's are sent in order,
different targets at the same time (at most ``targets_at_once``), so a slow endpoint delays only
its own. Once a call to a target has run out of time, that target's other notifications in the
batch are *deferred* (put back unattempted, due again after the first retry delay), not each
made to wait out the deadline.

**Subscriptions** (channel ``subscription``, issue 19): the notification's target is a
subscription's id; its URL and secret are read once per round (:meth:`FeedService.endpoints`) and
each attempt is signed as Standard Webhooks says (:mod:`jobs.signing`). A removed or inactive
subscription, or a secret that cannot be opened, is a failed attempt with that error. Storage
leases a subscription's delivery only when the earlier ones of its case are delivered, so its
receiver gets a case's events in order (retries keep the id; a dead letter holds the case's later
events back until an operator retries it, ``second-opinion outbox retry ID``).

**Stopping.** ``run_once(should_stop)`` looks at the flag before each claim and every
:data:`STOP_POLL` seconds while calls are in flight; when it is set, calls in flight are
cancelled and everything claimed and not yet settled is *released* (unattempted, due at once),
so a stopping worker leaves within a fraction of a second what it did not deliver to the next.
A cancelled call may have reached the endpoint; it is sent again later with the same key.

**Leases.** A claimed batch is leased for ``lease``; no call starts unless it can finish,
deadline and all, :data:`LEASE_MARGIN` before the lease ends. What would not fit is released
and claimed again, with a fresh lease, so no other worker can claim a notification while this
one may still be sending it.

Outcomes are written back together: those of a claimed batch in one transaction, or sooner
when sending has taken ``flush_every`` seconds, so that a crash repeats at most about that much
sending. A send that fails in any way is a failed attempt, never an exception that would lose
the outcomes collected before it.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from workflow.ports import SUBSCRIPTION, Notification
from workflow.service.deadlines import DeadlineService
from workflow.service.feed import Endpoint, FeedService

from .signing import signed

log = logging.getLogger("second_opinion.notifications")

SEND_TIMEOUT = 5.0
"""Seconds a webhook call may take in all, by default (``worker --send-timeout``)."""
LEASE = timedelta(minutes=2)
BATCH = 50
TARGETS_AT_ONCE = 8
LEASE_MARGIN = 15.0
"""Seconds of a lease kept free for writing the outcomes back after the last call."""
STOP_POLL = 0.1
"""Seconds between two looks at the stop flag while calls are in flight."""


@dataclass
class DeliveryReport:
    delivered: int = 0
    failed: int = 0
    dead: int = 0
    deferred: int = 0
    """Not attempted: an earlier call to the same target ran out of time. Due after the retry delay."""
    released: int = 0
    """Not attempted: the worker was stopping, or the batch's lease could not cover the call. Due at once."""


class Delivery:
    def __init__(
        self, deadlines: DeadlineService, max_attempts: int = 8, send_timeout: float = SEND_TIMEOUT,
        flush_every: float = 1.0, lease: timedelta = LEASE, batch: int = BATCH, targets_at_once: int = TARGETS_AT_ONCE,
        monotonic: Callable[[], float] = time.monotonic,
        endpoints: Callable[[Sequence[str]], Mapping[str, Endpoint | str]] | None = None,
    ) -> None:  # fmt: skip
        if not 0 < send_timeout <= lease.total_seconds() - 2 * LEASE_MARGIN:
            raise ValueError(f"send_timeout {send_timeout} s does not fit in a {lease} lease")
        self._deadlines = deadlines
        self.max_attempts = max_attempts
        self.send_timeout = send_timeout
        self.flush_every = flush_every
        self.lease = lease
        self.batch = batch
        self.targets_at_once = targets_at_once
        self.monotonic = monotonic
        """The time the lease is measured in (injectable, so a test can make calls "take" long)."""
        self.endpoints = endpoints or FeedService(deadlines.runtime).endpoints
        self.clock_now = deadlines.clock.now
        """The time a signature is made at (``webhook-timestamp``): the runtime's clock."""
        """Subscription id -> where and with what secret to send (or why not), read once per round."""

    def run_once(self, should_stop: Callable[[], bool] = lambda: False) -> DeliveryReport:
        """Attempt every notification that is due, once, until ``should_stop`` says otherwise."""
        report = DeliveryReport()
        asyncio.run(self._rounds(should_stop, report))  # one event loop and one HTTP client per call
        return report

    async def _rounds(self, should_stop: Callable[[], bool], report: DeliveryReport) -> None:
        timeout = httpx.Timeout(self.send_timeout)  # per step; the total is send()'s deadline
        async with httpx.AsyncClient(timeout=timeout, verify=self._tls) as client:
            while not should_stop() and (batch := self._deadlines.claim_notifications(self.lease, self.batch)):
                await Round(self, batch, should_stop, report).run(client)

    @functools.cached_property
    def _tls(self) -> ssl.SSLContext:
        """Made once: loading the CA bundle takes some 70 ms, a client with it made some 5 ms."""
        return httpx.create_ssl_context()

    def settle(
        self, outcomes: list[tuple[Notification, str | None]], deferred: list[Notification],
        released: Sequence[Notification], report: DeliveryReport,
    ) -> None:  # fmt: skip
        written = self._deadlines.settle(outcomes, self.max_attempts, deferred=deferred, released=released)
        report.deferred += len(deferred)
        report.released += len(released)
        for (notification, error), after in zip(outcomes, written, strict=True):
            if error is None:
                report.delivered += 1
                continue
            report.failed += 1
            report.dead += after.status == "dead"
            log.warning("notification %s attempt %d failed: %s", notification.key, after.attempts, error,
                        extra={"case_id": notification.case_id})  # fmt: skip


class Round:
    """One claimed batch: the log lines at once, the webhooks per target, then every notification
    of the batch settled exactly one way (delivered, failed, deferred or released)."""

    def __init__(
        self, delivery: Delivery, batch: list[Notification], should_stop: Callable[[], bool], report: DeliveryReport
    ) -> None:
        self.delivery = delivery
        self.batch = batch
        self.should_stop = should_stop
        self.report = report
        self.claimed_at = delivery.monotonic()
        self.outcomes: list[tuple[Notification, str | None]] = []
        self.deferred: list[Notification] = []
        self.settled: set[int | None] = set()
        self.flushed = time.monotonic()
        self.settling = asyncio.Lock()
        self.endpoints: Mapping[str, Endpoint | str] = {}

    async def run(self, client: httpx.AsyncClient) -> None:
        targets: dict[str, list[Notification]] = {}
        try:
            wanted = [n.target for n in self.batch if n.channel == SUBSCRIPTION]
            self.endpoints = self.delivery.endpoints(wanted) if wanted else {}
            for notification in self.batch:
                endpoint = self.endpoints.get(notification.target) if notification.channel == SUBSCRIPTION else None
                if isinstance(endpoint, str):  # removed, inactive, unreadable secret: a failed attempt
                    self.record(notification, endpoint)
                elif notification.channel in ("webhook", SUBSCRIPTION):
                    targets.setdefault(f"{notification.channel}:{notification.target}", []).append(notification)
                else:  # no call is in flight yet: a settle may block here
                    self.record(notification, _to_log(notification))
                    if time.monotonic() - self.flushed >= self.delivery.flush_every:
                        self.flush()
            if targets:
                await self.send_all(client, list(targets.values()))
        finally:  # what was sent is recorded even if the round is interrupted (a bug, KeyboardInterrupt)
            self.flush(released=[n for n in self.batch if n.id not in self.settled])

    def record(self, notification: Notification, error: str | None) -> None:
        self.outcomes.append((notification, error))
        self.settled.add(notification.id)

    async def flush_if_due(self) -> None:
        """Settle what was sent so far once ``flush_every`` has passed, on a thread: a settle is a
        database transaction that may wait seconds (a lock, a slow server), and on the event loop it
        would stall every call in flight past its deadline, booking them as failed. One at a time."""
        if time.monotonic() - self.flushed < self.delivery.flush_every:
            return
        async with self.settling:
            outcomes, self.outcomes = self.outcomes, []  # taken on the loop: what a call adds meanwhile waits
            deferred, self.deferred = self.deferred, []
            self.flushed = time.monotonic()
            if outcomes or deferred:
                await asyncio.to_thread(self.delivery.settle, outcomes, deferred, (), self.report)

    def defer(self, notifications: Sequence[Notification]) -> None:
        self.deferred += notifications
        self.settled.update(n.id for n in notifications)

    def flush(self, released: Sequence[Notification] = ()) -> None:
        outcomes, self.outcomes = self.outcomes, []  # taken first: a failed settle is not repeated
        deferred, self.deferred = self.deferred, []
        self.flushed = time.monotonic()
        if outcomes or deferred or released:
            self.delivery.settle(outcomes, deferred, released, self.report)

    async def send_all(self, client: httpx.AsyncClient, targets: list[list[Notification]]) -> None:
        slots = asyncio.Semaphore(self.delivery.targets_at_once)
        pending = {asyncio.create_task(self.send_in_turn(client, slots, target)) for target in targets}
        try:
            while pending:
                done, pending = await asyncio.wait(pending, timeout=STOP_POLL)
                for task in done:
                    task.result()  # a failed settle or a bug in a task is raised here, not lost
                if self.should_stop():
                    break  # the calls in flight are cancelled below; their notifications released
        finally:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def send_in_turn(self, client: httpx.AsyncClient, slots: asyncio.Semaphore, todo: list[Notification]) -> None:
        """One target's notifications, one after the other (an endpoint sees them in order)."""
        delivery = self.delivery
        latest_start = delivery.lease.total_seconds() - LEASE_MARGIN - delivery.send_timeout
        async with slots:
            for i, notification in enumerate(todo):
                if self.should_stop() or delivery.monotonic() - self.claimed_at > latest_start:
                    return  # released when the round settles: unattempted, due again at once
                found = self.endpoints.get(notification.target) if notification.channel == SUBSCRIPTION else None
                endpoint = found if isinstance(found, Endpoint) else None
                error, slow = await send(client, notification, delivery.send_timeout, endpoint, delivery.clock_now())
                self.record(notification, error)
                await self.flush_if_due()
                if slow:
                    if rest := todo[i + 1 :]:
                        self.defer(rest)
                        log.warning("webhook %s is too slow: %d more notification(s) deferred",
                                    _where(endpoint.url if endpoint else notification.target), len(rest))  # fmt: skip
                    return


async def send(
    client: httpx.AsyncClient, notification: Notification, deadline: float, endpoint: Endpoint | None = None,
    at: datetime | None = None,
) -> tuple[str | None, bool]:  # fmt: skip
    """POST one notification within ``deadline`` seconds in all; the error (None when delivered)
    and whether the target was too slow. With ``endpoint`` (a subscription's), to its URL, signed
    at ``at``; else to the notification's target, as the global webhook channel always has."""
    try:
        async with asyncio.timeout(deadline):
            if endpoint is not None:
                assert at is not None, "a signed delivery needs the time it is signed at"
                body, headers = signed(notification, endpoint, at)
                request = client.stream("POST", endpoint.url, content=body, headers=headers)
            else:
                request = client.stream(
                    "POST", notification.target, json=notification.payload,
                    headers={"Idempotency-Key": notification.key},
                )  # fmt: skip
            async with request as response:  # the status line and headers; the body is never read
                status = response.status_code
    except TimeoutError:
        return f"no answer within {deadline:g} s (the total deadline for a call)", True
    except httpx.TimeoutException as exc:  # a step timed out (connect, write) before the total did
        return f"{type(exc).__name__}: {exc}", True
    except Exception as exc:  # any failure to send is an outcome (httpx.InvalidURL is no HTTPError)
        return f"{type(exc).__name__}: {exc}", False
    return (None if 200 <= status < 300 else f"HTTP {status}"), False


def _to_log(notification: Notification) -> str | None:
    if notification.channel != "log":
        return f"unknown channel {notification.channel!r}"
    # The payload names the case and the deadline, never the patient (no BSN, no name).
    log.info("%s %s", notification.kind, json.dumps(notification.payload, sort_keys=True),
             extra={"case_id": notification.case_id})  # fmt: skip
    return None


def _where(target: str) -> str:
    """A target as logged: scheme, host and port only (a path or query may hold a secret)."""
    try:
        url = httpx.URL(target)
    except Exception:
        return "(unparseable URL)"
    return f"{url.scheme}://{url.host}" + (f":{url.port}" if url.port else "")
