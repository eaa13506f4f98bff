"""Storage backends for the ports in :mod:`workflow.ports`.

:func:`open_backend` picks one by URL: ``sqlite:///FILE`` (the embedded default),
``postgresql://...`` (psycopg 3; several workers and API processes share it) or ``memory://``
(in-process, for tests). All three pass the same contract tests.

Nothing a database driver raises leaves this package as itself: it becomes
:class:`~workflow.errors.StorageUnavailable` (unreachable, or the connection broke) or
:class:`~workflow.errors.StorageError` (:mod:`storage.errors`). Opening and checking a database
do not import Alembic; only :func:`initialise` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from workflow.errors import StorageNotReady, first_line
from workflow.ports import UnitOfWork
from workflow.service.progress import Progress

from .db import (
    DEFAULT_TIMEOUTS,
    DEFAULT_URL,
    Timeouts,
    check_ready,
    make_engine,
    redact,
    refuse_unknown_schema,
    sqlite_file,
)
from .errors import translated, translating, unavailable
from .memory import MemoryStore, MemoryUnitOfWork
from .readiness import Readiness, probe, probe_timeouts
from .statements import Compiled
from .uow import SqlUnitOfWork

MEMORY_URL = "memory://"


@dataclass
class Backend:
    """A storage choice, opened: hands out units of work and can be closed."""

    url: str
    engine: Engine | None = None
    store: MemoryStore | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)

    def __post_init__(self) -> None:
        self._compiled: Compiled | None = None
        self._probe_engine: Engine | None = None
        self._readiness: Readiness | None = None
        if self.engine is not None:
            with translating():
                self._compiled = Compiled(self.engine)
            # the probe's own engine: one connection, short timeouts, so a pool exhausted by
            # requests, or a stuck lock, cannot hold /ready (storage.readiness)
            probing = self._probe_engine = make_engine(self.url, probe_timeouts(self.timeouts), pool_size=1,
                                                       max_overflow=0)  # fmt: skip
            self._readiness = Readiness(lambda: probe(probing, self.url), self.url)

    def unit_of_work(self, write: bool) -> UnitOfWork:
        """A unit of work to use in a ``with`` block; ``write`` ones serialise on the database's lock."""
        if self.engine is not None:
            assert self._compiled is not None
            return SqlUnitOfWork(self.engine, self._compiled, write)
        assert self.store is not None
        return MemoryUnitOfWork(self.store, write)

    def check(self) -> None:
        """Raise StorageNotReady unless the database is at the code's schema and a write can
        succeed now; answers within :data:`storage.readiness.BOUND` seconds (see that module)."""
        if self._readiness is not None:
            self._readiness.check()

    def close(self) -> None:
        if self.engine is not None:
            with translating():
                self.engine.dispose()
                if self._probe_engine is not None:
                    self._probe_engine.dispose()


def open_backend(url: str = DEFAULT_URL, *, check: bool = True, timeouts: Timeouts = DEFAULT_TIMEOUTS) -> Backend:
    """Open storage at ``url``; with ``check``, refuse an un-initialised or outdated database.
    Every wait on the database is bounded by ``timeouts`` (:class:`storage.db.Timeouts`)."""
    if url.startswith(MEMORY_URL):
        return Backend(url=url, store=MemoryStore())
    engine = make_engine(url, timeouts)
    if check and _missing_sqlite_file(url):
        raise StorageNotReady(redact(url), "does not exist: run `second-opinion init` first")
    try:
        if check:
            with translating():
                check_ready(engine, url)
        return Backend(url=url, engine=engine, timeouts=timeouts)
    except BaseException:
        engine.dispose()
        raise


def initialise(url: str = DEFAULT_URL, timeouts: Timeouts = DEFAULT_TIMEOUTS, progress: Progress | None = None) -> str:
    """Create or upgrade the schema at ``url``; returns the revision it is now at.

    A database that cannot be reached, or is locked, full or read-only, is
    :class:`~workflow.errors.StorageUnavailable` (try again); one that refuses (a file that is
    no database, a server that says no) or is at a schema revision this code does not know (a
    newer version's) is :class:`~workflow.errors.StorageNotReady`, saying why; either way nothing
    was changed. Migrations run without a statement timeout (one may rewrite a large table), but
    with the lock timeout: a migration queued behind a long transaction would hold up every
    query queued behind it. ``progress`` hears the migrations applied (:func:`storage.migrate.upgrade`)."""
    if url.startswith(MEMORY_URL):
        return "memory"
    from .migrate import upgrade  # Alembic loads only here

    engine = make_engine(url, replace(timeouts, statement=0))
    try:
        with translating():
            try:
                refuse_unknown_schema(engine, url)
                return upgrade(engine, progress)
            except DBAPIError as exc:  # a file SQLite cannot open or that is no database; a server that refuses
                if unavailable(exc) is not None:
                    raise translated(exc) from exc
                raise StorageNotReady(redact(url), f"cannot be initialised: {first_line(exc.orig or exc)}") from None
    finally:
        engine.dispose()


def _missing_sqlite_file(url: str) -> bool:
    path = sqlite_file(url)
    return path is not None and not path.exists()


__all__ = ["DEFAULT_URL", "MEMORY_URL", "Backend", "MemoryStore", "Timeouts", "initialise", "open_backend"]
