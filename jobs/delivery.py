"""Delivering outbox notifications: to the log, or as a webhook POST with retries.

A webhook receives the notification as JSON with an ``Idempotency-Key`` header that is the same
on every attempt, because delivery is at least once: a worker that dies after the POST and
before recording it will POST again. Failures back off exponentially (30 s, 1 min, 2 min, ...,
at most an hour); after ``max_attempts`` the notification is dead-lettered, visible with
``second-opinion outbox --status dead`` and re-queued with ``second-opinion outbox retry ID``.

Outcomes are written back together: those of a claimed batch in one transaction, or sooner
when sending has taken ``flush_every`` seconds (slow webhooks), so that a crash repeats at most
about that much sending. A send that fails in any way is a failed attempt, never an exception
that would lose the outcomes collected before it. (A batch of slow webhooks can still outlast
its lease, as before; another worker may then send some of it again: at least once.)
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

import httpx

from workflow.ports import Notification
from workflow.service.deadlines import DeadlineService

log = logging.getLogger("second_opinion.notifications")


@dataclass
class DeliveryReport:
    delivered: int = 0
    failed: int = 0
    dead: int = 0


class Delivery:
    def __init__(
        self, deadlines: DeadlineService, client: httpx.Client | None = None, max_attempts: int = 8,
        timeout: float = 10, flush_every: float = 1.0,
    ) -> None:  # fmt: skip
        self._deadlines = deadlines
        self._client = client or httpx.Client(timeout=timeout)
        self.max_attempts = max_attempts
        self.flush_every = flush_every

    def close(self) -> None:
        self._client.close()

    def run_once(self) -> DeliveryReport:
        """Attempt every notification that is due, once."""
        report = DeliveryReport()
        while batch := self._deadlines.claim_notifications():
            outcomes: list[tuple[Notification, str | None]] = []
            since = time.monotonic()
            try:
                for notification in batch:
                    outcomes.append((notification, self._send(notification)))
                    if time.monotonic() - since >= self.flush_every:
                        pending, outcomes = outcomes, []  # taken first: a failed settle is not repeated below
                        self._settle(pending, report)
                        since = time.monotonic()
            finally:  # what was sent is recorded even if the loop is interrupted (KeyboardInterrupt, a bug)
                if outcomes:
                    self._settle(outcomes, report)
        return report

    def _settle(self, outcomes: list[tuple[Notification, str | None]], report: DeliveryReport) -> None:
        for (notification, error), after in zip(outcomes, self._deadlines.settle(outcomes, self.max_attempts),
                                                strict=True):  # fmt: skip
            if error is None:
                report.delivered += 1
                continue
            report.failed += 1
            report.dead += after.status == "dead"
            log.warning("notification %s attempt %d failed: %s", notification.key, after.attempts, error)

    def _send(self, notification: Notification) -> str | None:
        if notification.channel == "log":
            # The payload names the case and the deadline, never the patient (no BSN, no name).
            log.info("%s %s", notification.kind, json.dumps(notification.payload, sort_keys=True))
            return None
        if notification.channel != "webhook":
            return f"unknown channel {notification.channel!r}"
        try:
            response = self._client.post(
                notification.target, json=notification.payload, headers={"Idempotency-Key": notification.key}
            )
        except Exception as exc:  # any failure to send is an outcome (httpx.InvalidURL is no HTTPError)
            return f"{type(exc).__name__}: {exc}"
        if response.is_success:
            return None
        return f"HTTP {response.status_code}"
