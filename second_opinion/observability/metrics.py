"""Prometheus metrics: the instruments, the scrape-time collector, and the listener that serves them.

Counters and histograms are updated as things happen (by :class:`~.observer.Observed` and the
HTTP middleware); the gauges that need a query (open deadlines, the outbox backlog) are computed
when Prometheus scrapes, by :class:`ReadingsCollector`, through the service layer's one bounded
read (:class:`workflow.service.readings.Readings`): a scrape every 15-60 s costs two indexed
aggregate queries, where keeping gauges up to date on every command would cost a read on every
command, and could drift from the tables after a crash or a second worker.

Every label is bounded: events are the definition's (or ``unknown``), outcomes four words,
errors the names of exception classes, routes the app's templates (``/cases/{case_id}``, never a
raw path), methods HTTP's (or ``other``), policies the policy table's. No case id, token or
organisation is a label.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from workflow.service.readings import Reading

log = logging.getLogger("second_opinion.metrics")

PREFIX = "second_opinion_"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds: a read answers in milliseconds, a command in tens, a stuck database at the 10 s bounds."""
SWEEP_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0)
"""Seconds: an idle sweep is one query; a backlog after downtime takes minutes."""


class Metrics:
    """The instruments, on a registry of their own (never the process-wide default: two apps in
    one process, as in the tests, must not collide)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._readings: ReadingsCollector | None = None
        r = self.registry
        self.commands = Counter(PREFIX + "commands", "Commands by event and outcome (accepted, rejected, denied, "
                                "failed)", ["event", "outcome"], registry=r)  # fmt: skip
        self.refusals = Counter(PREFIX + "refusals", "Refused or failed commands by error class", ["error"],
                                registry=r)  # fmt: skip
        self.command_seconds = Histogram(PREFIX + "command_duration_seconds", "Time a command took, by event",
                                         ["event"], buckets=LATENCY_BUCKETS, registry=r)  # fmt: skip
        self.sweep_seconds = Histogram(PREFIX + "sweep_duration_seconds", "Time one deadline sweep took",
                                       buckets=SWEEP_BUCKETS, registry=r)  # fmt: skip
        self.http_seconds = Histogram(PREFIX + "http_request_duration_seconds", "HTTP request latency by method, "
                                      "route template and status", ["method", "route", "status"],
                                      buckets=LATENCY_BUCKETS, registry=r)  # fmt: skip

    def watch(self, take: Callable[[], Reading]) -> None:
        """Compute the deadline and outbox gauges from ``take()`` at every scrape; a second call
        replaces the first (one set of gauges per registry, never two answering the same names)."""
        if self._readings is not None:
            self.registry.unregister(self._readings)
        self._readings = ReadingsCollector(take)
        self.registry.register(self._readings)

    def serve(self, host: str, port: int) -> int:
        """Serve ``/metrics`` on its own listener (a thread); returns the port (``0`` picks one)."""
        server, _ = start_http_server(port, addr=host, registry=self.registry)
        return int(server.server_port)


@dataclass(frozen=True)
class GaugeDoc:
    name: str
    help: str
    labels: tuple[str, ...] = ()


GAUGES = (
    GaugeDoc(PREFIX + "deadlines", "Deadlines not stopped, by policy and state (running, paused, breached)",
             ("policy", "state")),
    GaugeDoc(PREFIX + "deadlines_due_soon", "Running deadlines due within 3 days, by policy", ("policy",)),
    GaugeDoc(PREFIX + "outbox_pending", "Notifications waiting to be delivered"),
    GaugeDoc(PREFIX + "outbox_oldest_age_seconds", "Age of the oldest pending notification (0: none pending)"),
    GaugeDoc(PREFIX + "readings_ok", "1 when the last scrape could read the database, else 0"),
)  # fmt: skip


class ReadingsCollector(Collector):
    """The query-backed gauges, read at scrape time. A failed read (the database away) gives
    ``readings_ok 0`` and the other gauges absent, and one log line: the scrape still answers."""

    def __init__(self, take: Callable[[], Reading]) -> None:
        self.take = take

    def describe(self) -> list[Metric]:
        return []  # nothing is read at registration: the gauges are known only when scraped

    def collect(self) -> Iterator[Metric]:
        gauges = {doc.name: GaugeMetricFamily(doc.name, doc.help, labels=list(doc.labels)) for doc in GAUGES}
        ok = gauges[PREFIX + "readings_ok"]
        try:
            reading = self.take()
        except Exception as exc:  # any failure: the scrape answers, the log says why
            log.warning("metrics: the deadline and outbox gauges could not be read (%s)", type(exc).__name__)
            ok.add_metric([], 0)
            yield ok
            return
        due_soon: dict[str, int] = {}
        for tally in reading.deadlines:
            gauges[PREFIX + "deadlines"].add_metric([tally.policy, tally.state], tally.count)
            due_soon[tally.policy] = due_soon.get(tally.policy, 0) + tally.due_soon
        for policy, count in sorted(due_soon.items()):
            gauges[PREFIX + "deadlines_due_soon"].add_metric([policy], count)
        gauges[PREFIX + "outbox_pending"].add_metric([], reading.outbox_pending)
        gauges[PREFIX + "outbox_oldest_age_seconds"].add_metric([], reading.outbox_oldest_seconds)
        ok.add_metric([], 1)
        yield from gauges.values()


def catalogue() -> list[tuple[str, str, str]]:
    """(name as scraped, type, help) of every metric, the query-backed gauges included: the table
    of docs/operations.md is checked against it. Counters are scraped with ``_total``."""
    found = [(f.name + ("_total" if f.type == "counter" else ""), f.type, f.documentation)
             for f in Metrics().registry.collect()]  # fmt: skip
    return sorted(found + [(doc.name, "gauge", doc.help) for doc in GAUGES])
