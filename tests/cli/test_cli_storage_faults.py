"""The CLI on a database it must not or cannot use now (issue 14): a schema newer than the code,
a file locked past the lock timeout, a read-only file, a bad timeout setting. Each is one
``error:`` line, exit 1, no traceback, and nothing changed."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import inspect, text
from typer.testing import CliRunner, Result

from second_opinion.bootstrap import ENV_DB_LOCK_TIMEOUT, ENV_DB_POOL_TIMEOUT, timeouts_from_env
from second_opinion.cli import app
from storage.revision import SCHEMA_HEAD
from tests.cli.test_cli import ENV
from tests.conftest import SQL_BACKENDS, migrated_sqlite, sql_engine
from workflow.errors import ConfigurationError


def run(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner(env={**ENV, **(env or {})}).invoke(app, list(args))


def one_error_line(result: Result, *parts: str) -> str:
    """Exit 1 with exactly one ``error:`` line on stderr holding each of ``parts``; no traceback."""
    assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr, result.exception)
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for part in parts:
        assert part in lines[0], lines[0]
    return lines[0]


def signature(url: str) -> dict[str, Any]:
    """What the schema and data look like: the recorded revision, and each table's columns and rows."""
    engine = sql_engine(url)
    try:
        with engine.connect() as conn:
            tables = sorted(inspect(conn).get_table_names())
            return {
                "revision": conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all(),
                **{t: ([c["name"] for c in inspect(conn).get_columns(t)],
                       conn.execute(text(f"SELECT count(*) FROM {t}")).scalar()) for t in tables},
            }  # fmt: skip
    finally:
        engine.dispose()


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
def test_init_and_every_command_refuse_a_newer_schema_in_one_line(db_url: str) -> None:
    assert run("open", "--patient-ref", "PX-0001", "--db", db_url).exit_code == 0
    engine = sql_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))  # a newer version migrated it
    engine.dispose()
    before = signature(db_url)
    one_error_line(run("init", "--db", db_url), f"schema revision 9999, newer than this version's {SCHEMA_HEAD}",
                   "upgrade second-opinion", "nothing was changed")  # fmt: skip
    one_error_line(run("cases", "--db", db_url), "newer than this version's", "upgrade second-opinion")
    assert signature(db_url) == before


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
def test_init_refuses_a_revision_it_does_not_know(db_url: str) -> None:
    engine = sql_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'abc123'"))  # another application's
    engine.dispose()
    before = signature(db_url)
    one_error_line(run("init", "--db", db_url), "schema revision 'abc123', which this version", "nothing was changed")
    assert signature(db_url) == before


@contextmanager
def write_locked(path: Path) -> Iterator[None]:
    """Another connection holds the write lock of the SQLite file at ``path`` (released after 8 s
    at the latest, so that code without the bound fails on its answer rather than hanging)."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    timer = threading.Timer(8.0, lambda: holder.in_transaction and holder.execute("ROLLBACK"))
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join()
        holder.close()


def test_init_on_a_locked_sqlite_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "locked.sqlite3"
    with write_locked(path):
        result = run("init", "--db", f"sqlite:///{path}", env={ENV_DB_LOCK_TIMEOUT: "0.2"})
    one_error_line(result, "the database is unavailable (lock timeout: database is locked); try again")


def test_worker_once_on_a_locked_sqlite_file_is_one_line(tmp_path: Path) -> None:
    """``worker --once`` sweeps outside the long-running worker's retry loop: a lock held past the
    lock timeout ends it with one line, exit 1 (the long-running worker logs one line and retries)."""
    url = migrated_sqlite(tmp_path / "busy.sqlite3")
    with write_locked(tmp_path / "busy.sqlite3"):
        # the wall clock (a pinned one would add its warning line: the worker refuses it unless told)
        result = run("worker", "--once", "--db", url, env={ENV_DB_LOCK_TIMEOUT: "0.2", "SECOND_OPINION_CLOCK": None})
    one_error_line(result, "the database is unavailable (lock timeout: database is locked)")


def test_init_on_a_read_only_sqlite_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "read-only.sqlite3"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE something_else (x)")  # a database, but not initialised
    before = path.read_bytes()
    result = run("init", "--db", f"sqlite:///file:{path}?mode=ro&uri=true")
    one_error_line(result, "the database is unavailable (read-only: attempt to write a readonly database)")
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("name", "value"),
    [(ENV_DB_LOCK_TIMEOUT, "five"), (ENV_DB_LOCK_TIMEOUT, "-1"), (ENV_DB_LOCK_TIMEOUT, "nan"),
     (ENV_DB_LOCK_TIMEOUT, "86400"), (ENV_DB_POOL_TIMEOUT, "0")],
)  # fmt: skip
def test_a_bad_timeout_setting_is_one_line_naming_the_variable(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=f"^{name}: must be a number of seconds"):
        timeouts_from_env({name: value})
    result = run("cases", "--db", f"sqlite:///{tmp_path / 'never.sqlite3'}", env={name: value})
    one_error_line(result, f"{name}: must be a number of seconds", repr(value))


def test_timeout_settings_reach_the_connections(db_url: str) -> None:
    """The settings are what each connection runs with: SQLite's busy timeout; on PostgreSQL see
    test_postgres_sessions_carry_the_timeouts."""
    timeouts = timeouts_from_env({ENV_DB_LOCK_TIMEOUT: "0.25", ENV_DB_POOL_TIMEOUT: "2"})
    assert (timeouts.lock, timeouts.pool, timeouts.statement) == (0.25, 2.0, 30.0)
    from storage import open_backend

    backend = open_backend(db_url, timeouts=timeouts)
    assert backend.engine is not None
    with backend.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 250
    backend.close()


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_postgres_sessions_carry_the_timeouts(db_url: str) -> None:
    """Set as each connection opens (libpq options), after any in the URL, which win."""
    from storage import open_backend

    timeouts = timeouts_from_env({ENV_DB_LOCK_TIMEOUT: "0.25"})
    backend = open_backend(db_url + "%20-cidle_in_transaction_session_timeout%3D7s", timeouts=timeouts)
    assert backend.engine is not None
    with backend.engine.connect() as conn:
        settings = ("lock_timeout", "statement_timeout", "idle_in_transaction_session_timeout", "search_path")
        shown = [conn.exec_driver_sql(f"SHOW {s}").scalar() for s in settings]
        # and TCP keepalives: a network gone silent is noticed within about a minute
        parameters = conn.connection.driver_connection.info.get_parameters()
    backend.close()
    assert shown[:3] == ["250ms", "30s", "7s"] and shown[3].startswith("t_"), shown
    assert {k: parameters.get(k) for k in ("keepalives", "keepalives_idle", "tcp_user_timeout")} == {
        "keepalives": "1", "keepalives_idle": "30", "tcp_user_timeout": "60000"}, parameters
    with psycopg.connect(db_url) as plain:  # a connection made without them keeps the server's defaults
        assert plain.execute("SHOW lock_timeout").fetchone() == ("0",)
