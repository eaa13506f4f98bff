"""Readings: the few figures an operator watches that need a query (open deadlines by policy and
state, the notification backlog), read in one bounded read unit of work.

Made for a metrics scrape (:mod:`second_opinion.observability.metrics` calls :meth:`Readings.take`
every time Prometheus asks, typically every 15 to 60 s), so each read is bounded by what is
*open*, never by history: the deadline tally groups the deadlines not stopped through the index
of open deadlines (at most policies x states rows come back), the backlog counts pending outbox
rows through their partial index. Nothing here is written, not even an access record: these are
counts, no case is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from workflow.ports import DeadlineTally
from workflow.service.recording import readable
from workflow.service.runtime import Runtime

DUE_SOON = timedelta(days=3)
"""A running deadline due within this is "due soon": a long weekend ahead, as the desk sees it."""


@dataclass(frozen=True)
class Reading:
    """One look at the open work: deadline tallies, and the outbox's pending depth and the age
    in seconds of its oldest pending notification (0 when none is pending)."""

    deadlines: tuple[DeadlineTally, ...]
    outbox_pending: int
    outbox_oldest_seconds: float


class Readings:
    """The named, bounded read behind the scrape-time gauges."""

    def __init__(self, runtime: Runtime, due_soon: timedelta = DUE_SOON) -> None:
        self._rt = runtime
        self._due_soon = due_soon

    def take(self) -> Reading:
        now = self._rt.clock.now()
        with readable(), self._rt.uow(False) as uow:
            tallies = tuple(uow.deadlines.tally(now + self._due_soon))
            pending, oldest = uow.outbox.backlog()
        age = 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())
        return Reading(tallies, pending, age)
