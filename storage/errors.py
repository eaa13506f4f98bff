"""Driver errors become the project's own at the storage boundary.

Whatever SQLAlchemy, psycopg or sqlite3 raises leaves ``storage`` as
:class:`~workflow.errors.StorageUnavailable` when the connection was lost or never made (a retry
may succeed), else as :class:`~workflow.errors.StorageError`; the driver's error is the cause and
its first line the message. So the CLI, the API and the worker tell an outage from a bug without
importing a driver.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import SQLAlchemyError

from workflow.errors import StorageError, StorageUnavailable, first_line

from .db import connection_lost


def is_driver_error(exc: BaseException) -> bool:
    """Whether ``exc`` came from the database stack. psycopg is asked only once something has
    imported it (a PostgreSQL engine does): before that, none of its errors can exist."""
    if isinstance(exc, (SQLAlchemyError, sqlite3.Error)):
        return True
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(exc, psycopg.Error)


def translated(exc: BaseException) -> StorageError:
    """The project's error for the driver error ``exc`` (raise it ``from exc``)."""
    kind = StorageUnavailable if connection_lost(exc) else StorageError
    return kind(first_line(exc))


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
