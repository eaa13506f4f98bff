"""Opening a database: URL handling, SQLite's connection discipline, schema readiness.

SQLite's Python driver, left to itself, opens transactions lazily and as readers; two writers
can then both read a case, and one of them commits over the other or fails late with "database
is locked". So every connection here runs in WAL mode with a busy timeout, the driver's own
transaction handling is switched off, and write units of work start with ``BEGIN IMMEDIATE``,
which takes the single write lock before the first read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from workflow.errors import StorageNotReady, ValidationError

DEFAULT_URL = "sqlite:///second-opinion.sqlite3"
BUSY_TIMEOUT_MS = 30_000
MIGRATIONS = Path(__file__).parent / "migrations"


def normalise_url(url: str) -> str:
    """Accept the URLs people paste (``postgresql://``, ``postgres://``) and pick psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def make_engine(url: str, **kwargs: Any) -> Engine:
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
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        _sqlite_discipline(engine)
        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_engine(url, pool_size=10, max_overflow=20, **kwargs)
    raise ValidationError(
        "database URL",
        f"backend {parsed.get_backend_name()!r} is not supported; use sqlite:///FILE, postgresql://... or memory://",
    )


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
        write = conn.get_execution_options().get("second_opinion_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


# --- migrations -------------------------------------------------------------------------------


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> str:
    """Bring the schema to the code's head revision; safe to run again."""
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    return head_revision()


def check_ready(engine: Engine, url: str) -> None:
    """Refuse to work on a database that is missing, empty, or at another schema revision."""
    try:
        current = current_revision(engine)
        has_cases = inspect(engine).has_table("cases")
    except OperationalError as exc:
        raise StorageNotReady(redact(url), f"cannot be opened: {exc.orig}") from None
    if current is None or not has_cases:
        raise StorageNotReady(redact(url), "is not initialised: run `second-opinion init` first")
    head = head_revision()
    if current != head:
        raise StorageNotReady(
            redact(url), f"is at schema revision {current}, this version needs {head}: run `second-opinion init`"
        )
