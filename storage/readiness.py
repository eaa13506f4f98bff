"""Readiness: whether a write can succeed now, answered within a bound whatever the database does.

The API's ``/ready`` asks :meth:`Readiness.check`. "Ready" means more than "the database
answers": every read of case data appends to the access log, so a database that answers reads
but cannot take a write serves nothing. The probe therefore checks, on a connection of its own
with short timeouts (:data:`PROBE_TIMEOUTS`):

- both backends: the schema is this code's (:func:`storage.db.check_ready`);
- SQLite: the file, its WAL and its directory are writable (a read-only file or file system),
  the disk has :data:`MIN_FREE_BYTES` free and the database that much room below its
  ``max_page_count``, and the write lock is obtained and a write made (``BEGIN IMMEDIATE``, a
  no-op ``UPDATE``, ``ROLLBACK``): a lock held elsewhere, or a file opened read-only, says no;
- PostgreSQL: the session is not read-only (``transaction_read_only``, e.g. set by
  ``default_transaction_read_only``) and the server not a standby (``pg_is_in_recovery()``), and
  the audit log's and the access log's locks are obtained within the probe's lock timeout (then
  released): a transaction stuck holding the first stalls every command, the second every read,
  on every server, so every server says "not ready" while it lasts. That is a choice: a load
  balancer then has no server to send work to, which is the truth, and a monitor sees the cause
  at once.

The probe runs on a thread of its own, one at a time: callers that arrive while one runs share its
answer, and none waits past :data:`BOUND` seconds from the probe's start (then the answer is "not
ready: the probe did not finish"). So a flood of ``/ready`` costs the database one connection and
one probe at a time, and a database that hangs costs each caller at most two seconds.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from workflow.errors import SecondOpinionError, StorageError, StorageNotReady, StorageUnavailable, first_line

from .db import Timeouts, check_ready, redact, sqlite_file
from .errors import is_driver_error, translated, unavailable
from .statements import POSTGRESQL

BOUND = 2.0
"""Seconds a caller of :meth:`Readiness.check` waits at most: well inside a load balancer's
health-check timeout (typically 5 s)."""

PROBE_TIMEOUTS = Timeouts(lock=1.0, statement=1.5, idle_in_transaction=5.0, pool=1.0, connect=2.0)
"""The probe's own: short, so that a probe finishes (and its connection is free) soon after BOUND;
the statement's longer than the lock's, so that a lock not obtained is named as such."""

MIN_FREE_BYTES = 32 * 1024 * 1024
"""Free space below which SQLite is "not ready": a command writes a few kilobytes, so this is
thousands of commands of warning, and a disk at its last megabytes fails writes unpredictably."""


def probe_timeouts(configured: Timeouts) -> Timeouts:
    """The probe's timeouts: :data:`PROBE_TIMEOUTS`, or shorter where the configuration is (a
    timeout turned off stays on for the probe)."""
    return Timeouts(
        lock=min(configured.lock or PROBE_TIMEOUTS.lock, PROBE_TIMEOUTS.lock),
        statement=min(configured.statement or PROBE_TIMEOUTS.statement, PROBE_TIMEOUTS.statement),
        idle_in_transaction=PROBE_TIMEOUTS.idle_in_transaction,
        pool=PROBE_TIMEOUTS.pool,
        connect=PROBE_TIMEOUTS.connect,
    )


def probe(engine: Engine, url: str) -> None:
    """Raise StorageNotReady unless a write could succeed on ``engine``'s database now."""
    check_ready(engine, url)
    if engine.dialect.name == "sqlite":
        _sqlite_files(engine)
    dbapi: Any = engine.raw_connection()
    try:
        cursor = dbapi.cursor()
        try:
            if engine.dialect.name == "sqlite":
                _sqlite_write(cursor)
            else:
                _postgres_write(cursor)
        finally:
            dbapi.rollback()
            cursor.close()
    finally:
        dbapi.close()


def _sqlite_files(engine: Engine) -> None:
    path = sqlite_file(engine.url.render_as_string(hide_password=False))
    assert path is not None
    for each, what in ((path, "file"), (Path(f"{path}-wal"), "write-ahead log"), (path.parent, "directory")):
        if each.exists() and not os.access(each, os.W_OK):
            raise NotReady(f"its {what} is read-only")
    free = shutil.disk_usage(path.parent).free
    if free < MIN_FREE_BYTES:
        raise NotReady(f"its disk has {free // 1024} KiB free, under {MIN_FREE_BYTES // 1024 // 1024} MiB")


def _sqlite_write(cursor: Any) -> None:
    cursor.execute("BEGIN IMMEDIATE")  # waits the probe's busy timeout at most
    ((page_size,),) = cursor.execute("PRAGMA page_size").fetchall()
    ((pages,),) = cursor.execute("PRAGMA page_count").fetchall()
    ((limit,),) = cursor.execute("PRAGMA max_page_count").fetchall()
    ((unused,),) = cursor.execute("PRAGMA freelist_count").fetchall()
    room = (limit - pages + unused) * page_size
    if room < MIN_FREE_BYTES:
        raise NotReady(f"it has {room // 1024} KiB of room below its max_page_count")
    cursor.execute("UPDATE alembic_version SET version_num = version_num")  # a file opened read-only fails here
    cursor.execute("ROLLBACK")


def _postgres_write(cursor: Any) -> None:
    cursor.execute("SELECT current_setting('transaction_read_only'), pg_is_in_recovery()")
    read_only, standby = cursor.fetchone()
    if standby:
        raise NotReady("the server is a standby (in recovery): it takes no writes")
    if read_only == "on":
        raise NotReady("the session is read-only (default_transaction_read_only)")
    assert POSTGRESQL.access_lock is not None and POSTGRESQL.audit_lock is not None
    # every command takes the audit log's lock and every read the access log's: a transaction
    # stuck holding either stops the writes of every server, so either one held makes us not ready
    for lock in (POSTGRESQL.audit_lock, POSTGRESQL.access_lock):  # both released by the rollback
        _log_lock(cursor, lock)


_LOCK_KEY = re.compile(r"pg_advisory_xact_lock\((\d+), '(\w+)'::regclass")
_BUSY_HOLDER = (
    "SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objsubid = 2 "
    "AND l.objid = %s::regclass::oid "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND a.state = 'active'"
)
"""Whether the holder of a log's advisory lock is at work (a statement running), rather than idle
inside its transaction: the first is a queue of writers, the second a stuck transaction."""


def _log_lock(cursor: Any, lock: str) -> None:
    """Take a log's lock within the probe's lock timeout. Not obtained: not ready if its holder sits
    idle in its transaction (stuck: every write waits on it), ready if the holder is at work (a
    burst of writers queueing for the log, which is load, not a fault; saying "not ready" then
    would take every server out of the balancer at the busiest moment)."""
    cursor.execute("SAVEPOINT probe_lock")
    try:
        cursor.execute(lock)
    except Exception as exc:
        if not is_driver_error(exc) or unavailable(exc) != "lock timeout":
            raise
        cursor.execute("ROLLBACK TO SAVEPOINT probe_lock")
        key = _LOCK_KEY.search(lock)
        assert key is not None, lock
        cursor.execute(_BUSY_HOLDER, (int(key.group(1)), key.group(2)))
        if cursor.fetchone() is None:
            raise


class NotReady(Exception):
    """What the probe found, before the URL is put on it."""


@dataclass
class _Flight:
    started: float
    done: threading.Event
    failure: BaseException | None = None


class Readiness:
    """Runs ``probe`` for callers, one at a time, and answers each within ``bound`` seconds."""

    def __init__(self, probe: Callable[[], None], url: str, bound: float = BOUND,
                 monotonic: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self._probe = probe
        self._url = redact(url)
        self._bound = bound
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._flight: _Flight | None = None

    def check(self) -> None:
        """Raise StorageNotReady (saying why, for the log) unless a write can succeed now."""
        with self._lock:
            flight = self._flight
            if flight is None:
                flight = self._flight = _Flight(self._monotonic(), threading.Event())
                threading.Thread(target=self._run, args=(flight,), name="readiness-probe", daemon=True).start()
        left = flight.started + self._bound - self._monotonic()
        if not flight.done.wait(max(0.0, left)):
            problem = f"is not ready: the readiness probe did not finish within {self._bound:g} s"
            raise StorageNotReady(self._url, problem)
        if flight.failure is not None:
            raise flight.failure.with_traceback(None)  # shared by the callers of one probe

    def _run(self, flight: _Flight) -> None:
        try:
            self._probe()
        except NotReady as exc:
            flight.failure = StorageNotReady(self._url, f"cannot take a write: {exc}")
        except StorageNotReady as exc:
            flight.failure = exc
        except StorageUnavailable as exc:
            flight.failure = StorageNotReady(self._url, f"cannot take a write: {exc.reason} ({first_line(exc)})")
        except (StorageError, SecondOpinionError) as exc:
            flight.failure = StorageNotReady(self._url, f"is not usable: {first_line(exc)}")
        except Exception as exc:
            if not is_driver_error(exc):
                flight.failure = exc  # a bug: the caller's 500 shows it
                return
            found = translated(exc)
            reason = found.reason if isinstance(found, StorageUnavailable) else "database error"
            flight.failure = StorageNotReady(self._url, f"cannot take a write: {reason} ({first_line(exc)})")
        finally:
            with self._lock:
                self._flight = None
            flight.done.set()
