"""Storage that cannot serve now (issue 14): a lock held past the lock timeout, a statement timeout,
an exhausted pool, a full or read-only database. Each is a 503 ``storage-unavailable`` with
``Retry-After`` within its time bound plus a margin, one log line naming the cause and no
traceback; ``/ready`` says 503 while a write cannot succeed, and answers within its bound; a
command retried afterwards with its Idempotency-Key is carried out once.

The app is the one ``serve`` runs (:func:`second_opinion.bootstrap.build_app`), configured through
the environment as an operator would. A fault left in place by a failing test ends by itself (a
timer releases the lock or the connections), so that on code without the bounds these tests fail
on the answer, not by hanging.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from second_opinion.api import create_app
from second_opinion.bootstrap import (
    ENV_DB_LOCK_TIMEOUT,
    ENV_DB_POOL_TIMEOUT,
    ENV_DB_STATEMENT_TIMEOUT,
    build_app,
    runtime_for,
    timeouts_from_env,
)
from storage import open_backend
from storage.statements import POSTGRESQL
from tests.api_support import problem
from tests.conftest import NO_CIRCUMSTANCES, SQL_BACKENDS
from workflow import CaseService
from workflow.deadlines.policies import POLICIES

MARGIN = 3.0
"""Seconds allowed past a configured bound: a loaded CI machine, not a tolerance of the code."""

RELEASE_AFTER = 8.0
"""When a fault a failing test left in place ends by itself (well past every bound plus MARGIN)."""


class Caller:
    """A TestClient on ``app`` with a coordinator's token; every answer timed."""

    def __init__(self, app: Any, secret: str | None = None) -> None:
        self.client = TestClient(app, raise_server_exceptions=False)
        self.secret = secret or app.state.tokens.create("desk-1", "coordinator", "org-a")[0]
        self.headers = {"Authorization": f"Bearer {self.secret}"}
        self.took = 0.0

    def send(self, method: str, path: str, key: str | None = None, **options: Any) -> Any:
        headers = {**self.headers, **({"Idempotency-Key": key} if key else {})}
        started = time.monotonic()
        answer = self.client.request(method, path, headers=headers, **options)
        self.took = time.monotonic() - started
        return answer

    def open(self, patient_ref: str = "PX-0001") -> str:
        opened = self.send("POST", "/cases", json={"patient_ref": patient_ref})
        assert opened.status_code == 201, opened.text
        return str(opened.json()["case_id"])

    def ready(self) -> Any:
        started = time.monotonic()
        answer = self.client.get("/ready")
        self.took = time.monotonic() - started
        return answer


RECORD = {"event": "record_circumstances", "data": NO_CIRCUMSTANCES}


def unavailable(answer: Any, caplog: pytest.LogCaptureFixture, cause: str) -> None:
    """A 503 storage-unavailable with Retry-After, logged as exactly one line naming ``cause``."""
    problem(answer, 503, "storage-unavailable")
    assert answer.headers["Retry-After"] == "1"
    lines = [r for r in caplog.records if r.name == "second_opinion.api"]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert lines[0].levelno == logging.WARNING and lines[0].exc_info is None
    assert f"database unavailable ({cause})" in lines[0].getMessage(), lines[0].getMessage()
    assert "Traceback" not in caplog.text
    caplog.clear()


def not_ready(caller: Caller, caplog: pytest.LogCaptureFixture, why: str) -> None:
    answer = caller.ready()
    assert answer.status_code == 503, answer.text
    assert answer.json()["status"] == "not ready"
    assert caller.took < 2 + MARGIN, caller.took  # /ready is bounded whatever the database does
    assert why in caplog.text, caplog.text
    assert "Traceback" not in caplog.text
    caplog.clear()


@contextmanager
def released_after(release: Callable[[], object], seconds: float = RELEASE_AFTER) -> Iterator[Callable[[], None]]:
    """Runs ``release`` after ``seconds`` unless the test calls the yielded function first."""
    done = threading.Lock()

    def once() -> None:
        if done.acquire(blocking=False):
            release()

    timer = threading.Timer(seconds, once)
    timer.start()
    try:
        yield once
    finally:
        timer.cancel()
        once()


def sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


# --- a lock held past the lock timeout -----------------------------------------------------------


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sqlite_write_lock_held_past_the_busy_timeout_is_a_503_and_not_ready(
    db_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(ENV_DB_LOCK_TIMEOUT, "0.2")
    caller = Caller(build_app(db_url))
    case_id = caller.open()
    assert caller.ready().status_code == 200
    holder = sqlite3.connect(sqlite_path(db_url), isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another process holding SQLite's one write lock
    caplog.clear()
    with closing(holder), released_after(lambda: holder.execute("ROLLBACK")) as release:
        fired = caller.send("POST", f"/cases/{case_id}/events", "fire-1", json=RECORD)
        unavailable(fired, caplog, "lock timeout")
        assert caller.took < 0.2 + MARGIN, caller.took
        read = caller.send("GET", f"/cases/{case_id}")  # a read appends to the access log: a write
        unavailable(read, caplog, "lock timeout")
        not_ready(caller, caplog, "lock timeout")
        assert caller.client.get("/health").status_code == 200
        release()
    assert caller.ready().status_code == 200
    again = caller.send("POST", f"/cases/{case_id}/events", "fire-1", json=RECORD)
    assert again.status_code == 200 and again.json()["version"] == 2, again.text
    assert caller.send("GET", f"/cases/{case_id}").json()["version"] == 2  # carried out once


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_postgres_access_log_lock_held_by_a_stuck_transaction_is_a_503_and_not_ready(
    db_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Every read of case data appends to the access log, one hash chain whose appenders serialise
    on one lock: a transaction stuck holding it (here: taking it and saying nothing more) stalls
    every read on every server. Each read now gives up after the lock timeout (or, with that off,
    the statement timeout) with a 503, and /ready says "not ready" while the lock is held.

    The lock is an advisory lock keyed by the log's table (each test has its own schema, so its
    own table), so tests running beside this one on the same server do not wait on it; both
    settings run in this one test."""
    lock_off = {ENV_DB_LOCK_TIMEOUT: "0", ENV_DB_STATEMENT_TIMEOUT: "0.5"}
    for settings, cause in (({ENV_DB_LOCK_TIMEOUT: "0.5"}, "lock timeout"), (lock_off, "statement timeout")):
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        app = build_app(db_url)
        caller = Caller(app)
        case_id = caller.open()
        holder = psycopg.connect(db_url)
        assert POSTGRESQL.access_lock is not None
        holder.execute(POSTGRESQL.access_lock)  # what the read path takes (storage.repositories.SqlAccess.head)
        caplog.clear()
        with closing(holder), released_after(holder.rollback) as release:
            read = caller.send("GET", f"/cases/{case_id}")
            unavailable(read, caplog, cause)
            assert caller.took < 0.5 + MARGIN, caller.took
            not_ready(caller, caplog, f"cannot take a write: {cause}")  # the probe's own, bounded by the settings
            release()
        assert caller.client.get("/health").status_code == 200
        assert eventually(lambda c=caller: bool(c.ready().status_code == 200))
        assert caller.send("GET", f"/cases/{case_id}").status_code == 200
        app.state.cases.close()


def eventually(condition: Callable[[], bool], within: float = 10.0) -> bool:
    """Whether ``condition`` holds within ``within`` seconds (other tests on the server may hold
    the shared lock for a moment)."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# --- an exhausted pool ---------------------------------------------------------------------------


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
def test_an_exhausted_connection_pool_is_a_503_not_a_500(
    db_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Every pooled connection in use (slow requests, a stall): the next request waits the pool
    timeout, then answers 503 rather than a 500 with a traceback. ``/ready`` probes on a connection
    of its own, so it still answers, within its bound."""
    monkeypatch.setenv(ENV_DB_POOL_TIMEOUT, "0.3")
    backend = open_backend(db_url, timeouts=timeouts_from_env())
    app = create_app(CaseService.on(runtime_for(backend, None, None, POLICIES)), ready=backend.check)
    caller = Caller(app)
    case_id = caller.open()
    assert backend.engine is not None
    pool: Any = backend.engine.pool
    held = [backend.engine.raw_connection() for _ in range(pool.size() + pool._max_overflow)]
    caplog.clear()
    def give_back() -> None:
        for connection in held:
            connection.close()

    with released_after(give_back) as release:
        read = caller.send("GET", f"/cases/{case_id}")
        unavailable(read, caplog, "pool exhausted")
        assert caller.took < 0.3 + MARGIN, caller.took
        assert caller.ready().status_code == 200 and caller.took < 2 + MARGIN
        release()
    assert caller.send("GET", f"/cases/{case_id}").status_code == 200
    backend.close()


# --- a read-only database --------------------------------------------------------------------------


def read_only_url(db_url: str) -> str:
    """The same database opened read-only: SQLite by a URI filename with ``mode=ro`` (which holds
    for root too, unlike a file mode), PostgreSQL by a session that is read-only (as on a standby,
    or with ``default_transaction_read_only`` set by an administrator)."""
    if db_url.startswith("sqlite"):
        return f"sqlite:///file:{sqlite_path(db_url)}?mode=ro&uri=true"
    return db_url + "%20-cdefault_transaction_read_only%3Don"


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
def test_a_read_only_database_is_a_503_and_not_ready(
    db_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    writable = build_app(db_url)
    first = Caller(writable)
    case_id = first.open()
    writable.state.cases.close()
    caller = Caller(build_app(read_only_url(db_url)), first.secret)
    caplog.clear()
    read = caller.send("GET", f"/cases/{case_id}")
    unavailable(read, caplog, "read-only")
    fired = caller.send("POST", f"/cases/{case_id}/events", "fire-ro", json=RECORD)
    unavailable(fired, caplog, "read-only")
    not_ready(caller, caplog, "read-only")


# --- a full database -------------------------------------------------------------------------------


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_full_sqlite_database_is_a_503_and_not_ready(db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """Disk full, simulated: every connection may not grow the file past its size at connect
    (``PRAGMA max_page_count``), which fails a write as a full disk does (SQLITE_FULL)."""

    def no_room(dbapi_connection: Any, _record: Any) -> None:
        ((pages,),) = dbapi_connection.execute("PRAGMA page_count").fetchall()
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

    event.listen(Engine, "connect", no_room)  # every engine made from here on, the probe's too
    try:
        caller = Caller(build_app(db_url))
        caplog.clear()
        for n in range(500):  # until a page must be added; each case writes a few hundred bytes
            opened = caller.send("POST", "/cases", f"open-{n}", json={"patient_ref": f"PX-{n:04d}"})
            if opened.status_code != 201:
                break
        unavailable(opened, caplog, "disk full")
        not_ready(caller, caplog, "room below its max_page_count")
    finally:
        event.remove(Engine, "connect", no_room)


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_postgres_audit_lock_held_by_a_stuck_transaction_is_a_503_and_not_ready(
    db_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Found by review: every command appends to the audit log under one lock (so that recorded_at
    and the sequence follow commit order); a transaction stuck holding it stopped every write on
    every server, while /ready, which probed only the access log's lock, said ready."""
    monkeypatch.setenv(ENV_DB_LOCK_TIMEOUT, "0.5")
    app = build_app(db_url)
    caller = Caller(app)
    case_id = caller.open()
    holder = psycopg.connect(db_url)
    assert POSTGRESQL.audit_lock is not None
    holder.execute(POSTGRESQL.audit_lock)  # what every command takes (storage.repositories.SqlAudit)
    caplog.clear()
    with closing(holder), released_after(holder.rollback) as release:
        fired = caller.send("POST", f"/cases/{case_id}/events", "fire-a", json=RECORD)
        unavailable(fired, caplog, "lock timeout")
        not_ready(caller, caplog, "cannot take a write: lock timeout")
        release()
    assert eventually(lambda: bool(caller.ready().status_code == 200))
    again = caller.send("POST", f"/cases/{case_id}/events", "fire-a", json=RECORD)
    assert again.status_code == 200, again.text
    app.state.cases.close()


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_postgres_a_log_lock_held_by_a_working_transaction_is_load_and_still_ready(db_url: str) -> None:
    """A burst of writers queues for the audit log's lock: the probe, waiting its second behind
    them, must not take every server out of the balancer at the busiest moment. Only a holder
    idle in its transaction (the tests above) is "not ready"; one running a statement is load."""
    app = build_app(db_url)
    caller = Caller(app)
    assert caller.ready().status_code == 200  # warm: the probe's connection and schema check are done
    holder = psycopg.connect(db_url)
    assert POSTGRESQL.audit_lock is not None

    def work() -> None:
        # Found by CI on a loaded machine: a holder that worked for 2.5 s had gone idle in its
        # transaction before a slow probe looked at it. It now works until cancelled.
        with contextlib.suppress(psycopg.errors.QueryCanceled):
            holder.execute(POSTGRESQL.audit_lock + ", pg_sleep(60)")

    busy = threading.Thread(target=work)
    with closing(holder):
        busy.start()  # the holder works far longer than the probe's 1 s wait for the lock
        try:
            assert eventually(lambda: holding_busily(db_url)), "the holder never took the lock"
            ready = caller.ready()
            assert ready.status_code == 200, ready.text
            assert holding_busily(db_url), "the holder stopped working before the probe answered"
        finally:
            holder.cancel()
            busy.join(timeout=10)
            holder.rollback()
    app.state.cases.close()


def holding_busily(db_url: str) -> bool:
    with psycopg.connect(db_url, autocommit=True) as conn:
        found = conn.execute(
            "SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
            "AND l.granted AND l.classid = 7514 AND l.objsubid = 2 AND a.state = 'active' "
            "AND l.objid = 'audit_records'::regclass::oid"
        ).fetchone()
    return found is not None
