"""The SQL unit of work: one pooled DBAPI connection, one transaction.

A write unit takes its lock up front: ``BEGIN IMMEDIATE`` on SQLite, ``SELECT ... FOR UPDATE`` on
the case row on PostgreSQL; either way concurrent commands on one case are serialised and none is
lost. Write units on PostgreSQL run at READ COMMITTED whatever the server's default, so that what
a lock guards is read after the lock is granted; read units run at REPEATABLE READ so that a
verification sees the case rows and their records as of one instant (:mod:`storage.statements`).

This is also where driver errors leave storage: whatever the driver raised inside the unit
(entering, a repository call, the commit, the rollback) comes out of ``__exit__`` as
:class:`~workflow.errors.StorageError` or :class:`~workflow.errors.StorageUnavailable`, without
a wrapper around each statement.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from sqlalchemy import Engine

from .errors import is_driver_error, translated
from .feed_repository import SqlFeed, SqlSubscriptions
from .log_repository import SqlLog
from .repositories import (
    Runner,
    SqlAccess,
    SqlAudit,
    SqlCases,
    SqlDeadlines,
    SqlKeys,
    SqlOutbox,
    SqlSessions,
    SqlTokens,
    SqlTransitions,
)
from .statements import Compiled


class SqlUnitOfWork:
    """One pooled DBAPI connection, one transaction; rolled back unless :meth:`commit` ran."""

    def __init__(self, engine: Engine, compiled: Compiled, write: bool) -> None:
        self._engine = engine
        self._compiled = compiled
        self._write = write
        self._committed = False
        self._dbapi: Any = None

    def __enter__(self) -> SqlUnitOfWork:
        backend = self._compiled.backend
        try:  # try/except rather than translating(): this runs on every command's path
            self._pooled = self._engine.raw_connection()
            try:
                self._dbapi = self._pooled.driver_connection
                cursor = self._dbapi.cursor()
                cursor.execute(backend.begin_write if self._write else backend.begin_read)
            except BaseException:
                self._pooled.close()
                raise
        except Exception as exc:
            if is_driver_error(exc):
                raise translated(exc) from exc
            raise
        runner = Runner(self._compiled, cursor)
        self._cursor = cursor
        self.cases = SqlCases(runner)
        self.audit = SqlAudit(runner)
        self.transitions = SqlTransitions(runner)
        self.keys = SqlKeys(runner)
        self.deadlines = SqlDeadlines(runner)
        self.outbox = SqlOutbox(runner)
        self.tokens = SqlTokens(runner)
        self.access = SqlAccess(runner)
        self.sessions = SqlSessions(runner)
        self.log = SqlLog(runner)
        self.feed = SqlFeed(runner)
        self.subscriptions = SqlSubscriptions(runner)
        return self

    def commit(self) -> None:
        try:
            if self._compiled.backend.driver_transactions:
                self._dbapi.commit()
            else:
                self._cursor.execute("COMMIT")
        except Exception as exc:
            if is_driver_error(exc):
                raise translated(exc) from exc
            raise
        self._committed = True

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self._end()
        except Exception as failure:
            if is_driver_error(failure):
                raise translated(failure) from failure
            raise
        if exc is not None and is_driver_error(exc):
            raise translated(exc) from exc

    def _end(self) -> None:
        sqlite = not self._compiled.backend.driver_transactions
        try:
            if not self._committed:
                if not sqlite:
                    self._dbapi.rollback()
                elif self._dbapi.in_transaction:
                    self._cursor.execute("ROLLBACK")
        finally:
            self._cursor.close()
            if sqlite and self._dbapi.in_transaction:
                # the ROLLBACK above did not happen (interrupted): the pool does not reset SQLite
                # connections (storage.db), so this one would go back holding the write lock
                self._pooled.invalidate()
            self._pooled.close()
