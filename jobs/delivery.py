"""Delivering outbox notifications: to the log, or as a webhook POST with retries.

A webhook receives the notification as JSON with an ``Idempotency-Key`` header that is the same
on every attempt, because delivery is at least once: a worker that dies after the POST and
before recording it will POST again. Failures back off exponentially (30 s, 1 min, 2 min, ...,
at most an hour); after ``max_attempts`` the notification is dead-lettered, visible with
``second-opinion outbox --status dead`` and re-queued with ``second-opinion outbox retry ID``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import httpx

from workflow.deadline_service import DeadlineService
from workflow.ports import Notification

log = logging.getLogger("second_opinion.notifications")


@dataclass
class DeliveryReport:
    delivered: int = 0
    failed: int = 0
    dead: int = 0


class Delivery:
    def __init__(
        self, deadlines: DeadlineService, client: httpx.Client | None = None, max_attempts: int = 8, timeout: float = 10
    ) -> None:
        self._deadlines = deadlines
        self._client = client or httpx.Client(timeout=timeout)
        self.max_attempts = max_attempts

    def close(self) -> None:
        self._client.close()

    def run_once(self) -> DeliveryReport:
        """Attempt every notification that is due, once."""
        report = DeliveryReport()
        while batch := self._deadlines.claim_notifications():
            for notification in batch:
                error = self._send(notification)
                if error is None:
                    self._deadlines.delivered(notification)
                    report.delivered += 1
                    continue
                after = self._deadlines.failed(notification, error, self.max_attempts)
                report.failed += 1
                report.dead += after.status == "dead"
                log.warning("notification %s attempt %d failed: %s", notification.key, after.attempts, error)
        return report

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
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        if response.is_success:
            return None
        return f"HTTP {response.status_code}"
