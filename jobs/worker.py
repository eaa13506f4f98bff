"""The scheduler worker: one APScheduler interval job that sweeps and delivers.

One sweep job, not one scheduler job per deadline: the deadlines live in our tables, so the
scheduler holds nothing that could be lost. The job coalesces (a backlog of missed runs becomes
one run), never runs twice at once in a process (``max_instances=1``) and has no misfire grace
limit, so a run that is late is still run. Before the scheduler starts, one sweep runs at once,
which is how a restart catches up on everything that fell due while no worker ran.

SIGTERM and SIGINT set a flag the sweep checks between claims (each claim is one transaction),
so the worker stops between two cases, never inside one; delivery checks it between calls and
while they are in flight, and puts back what it did not send (see :mod:`jobs.delivery`). The
worker exits within about a second of the signal, whether it is in the sweep that runs before
the scheduler starts, in a scheduled run, or in ``worker --once``.

A database that goes away (a network cut, a server restart) ends the current tick, not the
worker: the case in hand was rolled back with its transaction (or, for a commit whose answer was
lost, was committed whole), every case before it is committed, and the next tick sweeps again on
a fresh connection. That is logged as one warning line, not as a crash.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC
from types import FrameType

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from workflow.errors import ClockBehind, StorageUnavailable, first_line
from workflow.service.deadlines import DeadlineService, SweepReport
from workflow.service.progress import Progress

from .delivery import STOP_POLL, Delivery, DeliveryReport
from .witness import LogKeeper

log = logging.getLogger("second_opinion.worker")

CatchUp = Callable[[], AbstractContextManager[Progress | None]]
"""Opens what shows the catch-up sweep's progress for as long as that sweep runs (the command
line's bar on a terminal, :mod:`second_opinion.cli.progress`); it is closed before anything is
delivered or logged, so a bar and the log never share a line."""


class Worker:
    def __init__(self, deadlines: DeadlineService, delivery: Delivery, interval: float = 30,
                 keeper: LogKeeper | None = None, catch_up: CatchUp | None = None,
                 warning: str | None = None) -> None:  # fmt: skip
        self.warning = warning
        """Logged before every sweep (a pinned clock, say: ``worker --allow-clock-override``), so a
        log read from any point shows it, not only the start."""
        self.deadlines = deadlines
        self.catch_up = catch_up
        """Shows the progress of the first sweep (the catch-up after downtime), if given."""
        self.delivery = delivery
        self.interval = interval
        self.keeper = keeper
        """Keeps the transparency log current and signs its checkpoints (:mod:`jobs.witness`)."""
        self.stopping = threading.Event()
        """Set by SIGTERM/SIGINT; only ever read with ``is_set()`` (which takes no lock), so the
        signal handler, which runs in the main thread, can never wait on a lock that thread holds."""

    def tick(self, catch_up: CatchUp | None = None) -> tuple[SweepReport, DeliveryReport]:
        """One sweep, then one round of deliveries; both stop early once :attr:`stopping` is set.
        ``catch_up`` shows the sweep's progress while it runs."""
        if self.warning:
            log.warning("%s", self.warning)
        with catch_up() if catch_up is not None else nullcontext(None) as progress:
            swept = self.deadlines.sweep(should_stop=self.stopping.is_set, progress=progress)
        delivered = DeliveryReport() if self.stopping.is_set() else self.delivery.run_once(self.stopping.is_set)
        if self.keeper is not None and not self.stopping.is_set():
            self.keeper.tick()
        if swept.parked:
            log.error("set aside deadlines whose policy is no longer in the table: %s", ", ".join(swept.parked))
        if swept.cases or delivered.delivered or delivered.failed or delivered.deferred or delivered.released:
            log.info(
                "swept %d cases (%d reminders, %d breaches); delivered %d, failed %d, dead %d, deferred %d, "
                "released %d", swept.cases, swept.reminders, swept.breaches, delivered.delivered, delivered.failed,
                delivered.dead, delivered.deferred, delivered.released,
            )  # fmt: skip
        return swept, delivered

    def once(self) -> tuple[SweepReport, DeliveryReport]:
        """One :meth:`tick` that SIGTERM and SIGINT stop as they stop :meth:`run` (``worker --once``)."""
        self._on_signals()
        return self.tick(self.catch_up)

    def run(self) -> None:
        """Run until SIGTERM or SIGINT.

        The scheduler runs its job in a thread of its own (a ``BackgroundScheduler``), while this
        thread waits for the stop flag and then shuts the scheduler down *waiting* for the run in
        hand, which sees the flag and ends within moments. (A ``BlockingScheduler`` stopped with
        ``shutdown(wait=False)`` from the signal handler would return here while its job still ran,
        and the database and HTTP client would be closed under it.)"""
        self._on_signals()
        log.info("worker started: sweeping every %s s", self.interval)
        self._safe_tick(self.catch_up)  # catch up at once on whatever fell due while no worker ran
        if not self.stopping.is_set():
            scheduler = BackgroundScheduler(timezone=UTC)
            scheduler.add_job(
                self._safe_tick, IntervalTrigger(seconds=self.interval), id="sweep", coalesce=True, max_instances=1,
                misfire_grace_time=None,
            )  # fmt: skip
            scheduler.start()
            try:
                while not self.stopping.is_set():
                    time.sleep(STOP_POLL)  # a signal interrupts the sleep; its handler only sets the flag
            finally:
                scheduler.shutdown(wait=True)
        log.info("worker stopped")

    def _on_signals(self) -> None:
        def stop(signum: int, frame: FrameType | None) -> None:
            log.info("signal %d: stopping after the current claim", signum)
            self.stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def _safe_tick(self, catch_up: CatchUp | None = None) -> None:
        try:
            self.tick(catch_up)
        except StorageUnavailable as exc:  # unreachable, a broken connection, a timeout, full, read-only
            message = first_line(exc)
            log.warning("database unavailable (%s: %s); retrying in %g s", exc.reason, message, self.interval)
        except ClockBehind as exc:  # the server's time is wrong: one line, nothing was written
            log.error("sweep refused: %s; retrying in %g s", exc, self.interval)
        except Exception:  # the next run retries; no error may end the worker
            log.exception("sweep failed; retrying at the next interval")
