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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from workflow.errors import StorageNotReady, ValidationError, first_line

from .revision import SCHEMA_HEAD, is_known, is_newer

DEFAULT_URL = "sqlite:///second-opinion.sqlite3"


@dataclass(frozen=True)
class Timeouts:
    """How long any one database operation may wait, in seconds, so that nothing the database does
    holds a request thread (or the worker) for longer. A wait that runs out rolls its transaction
    back and becomes :class:`~workflow.errors.StorageUnavailable` (a 503 with ``Retry-After``).

    - ``lock`` (15 s): waiting for a lock another transaction holds; PostgreSQL's ``lock_timeout``,
      SQLite's busy timeout. Our transactions hold their locks for milliseconds, but every write
      appends to one log under one lock (the audit log's end, so that sequence order is commit
      order and time only moves forward; SQLite's one write lock), so a burst of writers queues:
      on a loaded two-core machine, 50 clients and four workers at once queued past 5 s (the
      first default) while nothing was wrong. Fifteen seconds rides out such a queue, still fails
      well before a client or a proxy (typically 30-60 s) gives up on its own, and a transaction
      stuck holding a log's lock is reported by ``/ready`` within a second (storage.readiness).
    - ``statement`` (30 s, PostgreSQL): ``statement_timeout``. Every statement is keyed or batched
      and takes milliseconds; a statement thousands of times slower is a fault (a missing index, a
      server in trouble). Longer than a lock wait plus the statement. ``init`` runs without it:
      a migration may rewrite a large table.
    - ``idle_in_transaction`` (60 s, PostgreSQL): a session that opened a transaction and then
      said nothing (a client stopped in a debugger, a process frozen) is ended, with its locks.
    - ``pool`` (5 s): waiting for a pooled connection when all are in use; past it the pool is
      exhausted, and queueing more requests behind it only makes the stall longer.
    - ``connect`` (5 s, PostgreSQL): libpq's ``connect_timeout`` (whole seconds, at least 2),
      which is otherwise unbounded: a server that drops packets would hold the connecting thread
      for minutes of TCP retries.

    Zero turns a PostgreSQL timeout off (as PostgreSQL reads 0) and makes SQLite fail at once on
    a held lock. Options in the URL itself (``?options=-c lock_timeout=...``) win over these.
    """

    lock: float = 15.0
    statement: float = 30.0
    idle_in_transaction: float = 60.0
    pool: float = 5.0
    connect: float = 5.0


DEFAULT_TIMEOUTS = Timeouts()


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def sqlite_file(url: str) -> Path | None:
    """The file a ``sqlite://`` URL names, also when it is a URI filename (``sqlite:///file:PATH?
    mode=ro&uri=true``); None for any other URL."""
    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    database = str(parsed.database)
    if "uri" in parsed.query:
        database = database.removeprefix("file:").split("?", 1)[0]
    return Path(database)


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


def make_engine(
    url: str, timeouts: Timeouts = DEFAULT_TIMEOUTS, *, pool_size: int = 10, max_overflow: int = 20
) -> Engine:
    """An engine for ``url`` with this module's connection discipline and ``timeouts``; connects
    to nothing yet. ``pool_size`` and ``max_overflow`` size a PostgreSQL pool (a readiness probe
    needs a single connection)."""
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
        engine = create_engine(url, connect_args={"check_same_thread": False}, pool_reset_on_return=None,
                               pool_timeout=timeouts.pool)  # fmt: skip
        _sqlite_discipline(engine, _ms(timeouts.lock))
        return engine
    if parsed.get_backend_name() == "postgresql":
        if not _encodable(url):  # the driver would raise UnicodeEncodeError on connecting
            raise ValidationError("database URL", "is not UTF-8 text (it holds bytes that are not UTF-8)")
        # pre-ping: a pooled connection that died while idle (network cut, server restart) is
        # replaced on checkout instead of failing the next command; the reset rolls back itself
        # (see _postgres_discipline), so a connection lost in use is dropped without a traceback
        engine = create_engine(_with_timeouts(parsed, timeouts), pool_size=pool_size, max_overflow=max_overflow,
                               pool_timeout=timeouts.pool, pool_pre_ping=True, pool_reset_on_return=None)  # fmt: skip
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


def _with_timeouts(parsed: URL, timeouts: Timeouts) -> URL:
    """``parsed`` with the timeouts as libpq startup options: set as the connection opens, so no
    statement ever runs without them and they cost no round trip. The URL's own ``options`` come
    after ours, so that (PostgreSQL applies them in order) a setting in the URL wins."""
    ours = (f"-c lock_timeout={_ms(timeouts.lock)} -c statement_timeout={_ms(timeouts.statement)} "
            f"-c idle_in_transaction_session_timeout={_ms(timeouts.idle_in_transaction)}")  # fmt: skip
    given = parsed.query.get("options")
    theirs = " ".join(given) if isinstance(given, tuple) else given
    query = {"options": f"{ours} {theirs}" if theirs else ours}
    if "connect_timeout" not in parsed.query:
        query["connect_timeout"] = str(max(2, round(timeouts.connect)))
    for name, value in KEEPALIVES.items():
        if name not in parsed.query:
            query[name] = value
    return parsed.update_query_dict(query)


KEEPALIVES = {"keepalives": "1", "keepalives_idle": "30", "keepalives_interval": "10", "keepalives_count": "3",
              "tcp_user_timeout": "60000"}  # fmt: skip
"""libpq's TCP keepalives and user timeout: the server's timeouts bound what the server does, not
a network that goes silent (a cut cable, a firewall dropping the connection's state). Without
these a thread waiting on such a connection waits for the operating system's TCP retries
(minutes to hours); with them it learns within about a minute (30 s idle, then 3 probes 10 s
apart; unacknowledged data for 60 s) and the call is a 503 ``connection lost``. The URL's own
settings win."""


def _sqlite_discipline(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
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
    commit, it either committed or not): a retry with the same idempotency key is safe. So is one
    after a lock or statement timeout, which cancels the statement and (the unit of work then
    rolls back) the whole transaction; :func:`storage.errors.unavailable` adds those, and the
    other failures a retry may get past, to this one."""
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
    if is_newer(current):
        refuse_unknown(current, url)
    if current != SCHEMA_HEAD:
        raise StorageNotReady(
            redact(url), f"is at schema revision {current}, this version needs {SCHEMA_HEAD}: run `second-opinion init`"
        )


def refuse_unknown(current: str | None, url: str) -> None:
    """Refuse a database at a schema revision this code does not know, most likely written by a
    newer version: neither reading it nor "upgrading" it (Alembic would fail half-way, with a
    traceback) can be right. Nothing has been changed when this is raised."""
    if current is None or is_known(current):
        return
    if is_newer(current):
        problem = f"is at schema revision {current}, newer than this version's {SCHEMA_HEAD}: upgrade second-opinion"
    else:
        problem = f"is at schema revision {current!r}, which this version (at {SCHEMA_HEAD}) does not know"
    raise StorageNotReady(redact(url), problem + "; nothing was changed")


def refuse_unknown_schema(engine: Engine, url: str) -> None:
    """:func:`refuse_unknown` for the database behind ``engine`` (before ``init`` migrates it)."""
    with engine.connect() as conn:
        current = current_revision(conn)
    refuse_unknown(current, url)
