"""Opening a database: URL handling, SQLite's connection discipline, schema readiness.

SQLite's Python driver, left to itself, opens transactions lazily and as readers; two writers
can then both read a case, and one of them commits over the other or fails late with "database
is locked". So every connection here runs in WAL mode with a busy timeout, the driver's own
transaction handling is switched off, and write units of work start with ``BEGIN IMMEDIATE``,
which takes the single write lock before the first read.

PostgreSQL is reached over a network that can drop: a connection the server or the network
closed is found on checkout (a pre-ping) and replaced, and one that broke while in use is
discarded quietly when it comes back to the pool. :func:`connection_lost` tells such an error
from a refusal or a bug, so callers can say "try again" (the API's 503, the worker's next tick).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from workflow.errors import StorageNotReady, ValidationError, first_line

from .revision import SCHEMA_HEAD

DEFAULT_URL = "sqlite:///second-opinion.sqlite3"
BUSY_TIMEOUT_MS = 30_000


def normalise_url(url: str) -> str:
    """Accept the URLs people paste (``postgresql://``, ``postgres://``) and pick psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def redact(url: str) -> str:
    """``url`` as an error message or a log may show it: without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url
    except UnicodeEncodeError:  # bytes that are not UTF-8 (argv's lone surrogates) cannot be percent-encoded
        return redact(url.encode("utf-8", "backslashreplace").decode())


def make_engine(url: str) -> Engine:
    """An engine for ``url`` with this module's connection discipline; connects to nothing yet."""
    url = normalise_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValidationError("database URL", f"{url!r} is not a URL such as {DEFAULT_URL}") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise ValidationError(
                "database URL",
                "an in-memory SQLite database is not shared between "
                "connections; use a file, or memory:// for the in-memory backend",
            )
        directory = Path(parsed.database).parent
        if "uri" not in parsed.query and not directory.is_dir():  # SQLite would say only "unable to open"
            raise StorageNotReady(redact(url), f"cannot be created: there is no directory {str(directory)!r}")
        # no reset on return: a unit of work ends its own transaction (commit, or ROLLBACK in
        # SqlUnitOfWork.__exit__), and engine.connect() users roll back on close; the pool's
        # extra rollback cost about 5 µs per unit of work
        engine = create_engine(url, connect_args={"check_same_thread": False}, pool_reset_on_return=None)
        _sqlite_discipline(engine)
        return engine
    if parsed.get_backend_name() == "postgresql":
        if not _encodable(url):  # the driver would raise UnicodeEncodeError on connecting
            raise ValidationError("database URL", "is not UTF-8 text (it holds bytes that are not UTF-8)")
        # pre-ping: a pooled connection that died while idle (network cut, server restart) is
        # replaced on checkout instead of failing the next command; the reset rolls back itself
        # (see _postgres_discipline), so a connection lost in use is dropped without a traceback
        engine = create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, pool_reset_on_return=None)
        _postgres_discipline(engine)
        return engine
    raise ValidationError(
        "database URL",
        f"backend {parsed.get_backend_name()!r} is not supported; use sqlite:///FILE, postgresql://... or memory://",
    )


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _sqlite_discipline(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        """SQLAlchemy connections (migrations, the readiness check) begin here; units of work
        issue their own BEGIN on the DBAPI connection (storage.uow)."""
        conn.exec_driver_sql("BEGIN")


def _postgres_discipline(engine: Engine) -> None:
    import psycopg  # only a PostgreSQL engine needs the driver (and its engine has loaded it)

    @event.listens_for(engine, "reset")
    def _on_reset(dbapi_connection: Any, record: Any, state: Any) -> None:
        """Rollback-on-return, as SQLAlchemy's default, except that a connection already lost is
        invalidated at once: the pool would otherwise log its failed rollback as an error."""
        if state.transaction_was_reset or not state.asyncio_safe:
            return
        try:
            if not dbapi_connection.closed:
                dbapi_connection.rollback()
                return
        except psycopg.OperationalError:
            if not dbapi_connection.closed:
                raise
        if record is not None:
            record.invalidate()


_CONNECTION_STATES = ("08", "57P01", "57P02", "57P03")
"""SQLSTATEs of a connection that failed or was ended: connection exceptions (class 08), and an
administrator's or a crash's shutdown, or a server still starting up (57P01-57P03)."""


def connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` means the database could not be reached or the connection broke, so the
    same request may succeed when tried again, rather than a refusal by the database or a bug.

    Such a failure inside a unit of work rolled it back (or it never began, or, for a lost
    commit, it either committed or not): a retry with the same idempotency key is safe."""
    driver: BaseException | None = exc
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        driver = exc.orig
    psycopg = sys.modules.get("psycopg")  # not imported: no psycopg error can exist
    if psycopg is not None and isinstance(driver, psycopg.OperationalError):
        # errors raised by the client library itself (no server answer) carry no SQLSTATE
        return driver.sqlstate is None or driver.sqlstate.startswith(_CONNECTION_STATES)
    return False


# --- readiness ---------------------------------------------------------------------------------


def current_revision(conn: Connection) -> str | None:
    """The schema revision Alembic recorded in the database, read without importing Alembic: the
    row of ``alembic_version`` (several, joined, if branches were ever applied), or None when there
    is no such table or no row."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return ", ".join(sorted(rows)) or None


def check_ready(engine: Engine, url: str) -> None:
    """Refuse to work on a database that is missing, empty, or at another schema revision."""
    try:
        with engine.connect() as conn:
            current = current_revision(conn)
            has_cases = inspect(conn).has_table("cases")
    except DBAPIError as exc:  # unreachable, or not a database at all ("file is not a database")
        raise StorageNotReady(redact(url), f"cannot be opened: {first_line(exc.orig or exc)}") from None
    if current is None or not has_cases:
        raise StorageNotReady(redact(url), "is not initialised: run `second-opinion init` first")
    if current != SCHEMA_HEAD:
        raise StorageNotReady(
            redact(url), f"is at schema revision {current}, this version needs {SCHEMA_HEAD}: run `second-opinion init`"
        )
