"""Driver errors become the project's own at the storage boundary.

Whatever SQLAlchemy, psycopg or sqlite3 raises leaves ``storage`` as
:class:`~workflow.errors.StorageUnavailable` when a retry may succeed (:func:`unavailable` names
the cause), else as :class:`~workflow.errors.StorageError`; the driver's error is the cause and
its first line the message. So the CLI, the API and the worker tell an outage from a bug without
importing a driver.

"A retry may succeed" covers more than a lost connection: a lock or statement that ran out of
time (the database cancelled the statement, and the unit of work rolls its transaction back), no
pooled connection free in time (nothing began), a serialization failure or deadlock (the
database rolled back), and a database that is full, read-only or failing its I/O (the write
failed, nothing was kept). Each leaves the database as if the request had not been made, so the
same request with the same idempotency key is safe to send again.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from workflow.errors import StorageError, StorageUnavailable, first_line

from .db import connection_lost

_SQLSTATES = {
    "55P03": "lock timeout",
    "57014": "statement timeout",
    "40001": "serialization conflict",
    "40P01": "deadlock",
    "25006": "read-only",
    "53100": "disk full",
    "53200": "out of memory",
    "53300": "too many connections",
    "53400": "configuration limit",
    "53000": "out of resources",
    "58030": "disk I/O error",
}
"""PostgreSQL's SQLSTATEs of a failure that a retry may get past -> the cause, as a log names it."""

_SQLITE_CODES = {5: "lock timeout", 6: "lock timeout", 13: "disk full", 8: "read-only", 10: "disk I/O error"}
"""SQLite's primary result codes (SQLITE_BUSY, _LOCKED, _FULL, _READONLY, _IOERR) -> the cause."""


def unavailable(exc: BaseException) -> str | None:
    """The cause, in a few words, when ``exc`` means the database cannot do the work now but a
    retry may (see the module's docstring); None for a refusal by the database or a bug."""
    if isinstance(exc, PoolTimeout):
        return "pool exhausted"
    if connection_lost(exc):
        return "connection lost"
    driver = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(driver, sqlite3.Error):
        code = getattr(driver, "sqlite_errorcode", None)
        return _SQLITE_CODES.get(code & 0xFF) if isinstance(code, int) else None
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None and isinstance(driver, psycopg.Error) and driver.sqlstate:
        return _SQLSTATES.get(driver.sqlstate)
    return None


def is_driver_error(exc: BaseException) -> bool:
    """Whether ``exc`` came from the database stack. psycopg is asked only once something has
    imported it (a PostgreSQL engine does): before that, none of its errors can exist."""
    if isinstance(exc, (SQLAlchemyError, sqlite3.Error)):
        return True
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(exc, psycopg.Error)


def translated(exc: BaseException) -> StorageError:
    """The project's error for the driver error ``exc`` (raise it ``from exc``)."""
    reason = unavailable(exc)
    if reason is not None:  # the driver's words, without SQLAlchemy's "(sqlite3.OperationalError) "
        driver = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
        return StorageUnavailable(first_line(driver), reason)
    return StorageError(first_line(exc))


@contextmanager
def translating() -> Iterator[None]:
    """Raise any driver error escaping the block as :func:`translated` says. For the calls made
    once per process or request (opening, checking, initialising), never per statement."""
    try:
        yield
    except Exception as exc:
        if is_driver_error(exc):
            raise translated(exc) from exc
        raise
