"""The database going away mid-sweep and mid-request (issue 7), on PostgreSQL over a real socket.

A small TCP proxy sits between the application and the server. It can cut every open connection
at once (both sockets reset, as a network failure or a server restart would do), refuse new
connections for a while, and, once, lose one COMMIT: either dropped before the server sees it
(the transaction did not happen) or passed on with the server's answer dropped (it did happen,
and the client cannot know). Then:

* a real ``worker`` process sweeps 1,500 due cases through the proxy while it is cut, starved and
  robbed of a commit's answer, and must carry on by itself: every case ends with exactly one
  breach record, every deadline breached, two outbox rows per case, and the audit trail verifies;
* a real ``serve`` process answers clients through the proxy while it is cut and refuses: a
  request caught by an outage is a 503 ``storage-unavailable`` problem with ``Retry-After``, never
  a 500; every request that ran between outages succeeds; a command retried with its
  Idempotency-Key after a 503 is carried out exactly once, whether the lost attempt happened or not.

Every wait is a bounded poll on progress (records written, connections refused), never a sleep
standing in for an assertion.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError

from storage.db import connection_lost
from storage.errors import translating
from tests.api_support import problem
from tests.conftest import NO_CIRCUMSTANCES, PG_URL, sql_engine
from tests.reliability.test_api_servers import READY_TIMEOUT, Server, cli, free_ports, token
from tests.reliability.test_worker import AFTER, counts, seed_due, worker
from workflow.errors import StorageError

# --- the proxy ----------------------------------------------------------------------------------

_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends a reset, as a dead link does
_COMMIT = b"COMMIT\x00"  # psycopg commits with a simple Query message of exactly this text


def _kill(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
        sock.shutdown(socket.SHUT_RDWR)  # wakes the pump thread blocked in recv()
    except OSError:
        pass
    sock.close()


@dataclass(eq=False)
class _Link:
    client: socket.socket
    server: socket.socket
    swallow_answer: bool = False


class CuttingProxy:
    """127.0.0.1:<port> -> ``upstream``, two threads per connection, with faults on demand."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._links: set[_Link] = set()
        self._refusing = False
        self._commit_fault: str | None = None
        self.accepted = self.refused = self.cut_links = 0
        self.faults: list[str] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, url: str) -> str:
        """``url`` with the proxy in place of the server."""
        return make_url(url).set(host="127.0.0.1", port=self.port).render_as_string(hide_password=False)

    def cut(self) -> int:
        """Reset both sockets of every open connection; returns how many connections were cut."""
        with self._lock:
            links, self._links = self._links, set()
        for link in links:
            _kill(link.client)
            _kill(link.server)
        self.cut_links += len(links)
        return len(links)

    def refuse(self, on: bool) -> None:
        """While on, every new connection is accepted and reset at once (the server is down)."""
        with self._lock:
            self._refusing = on

    def lose_next_commit(self, answer_only: bool) -> None:
        """The next COMMIT is lost: with ``answer_only`` the server commits and its answer is
        dropped; otherwise the COMMIT never reaches the server. Either way the link is cut."""
        with self._lock:
            self._commit_fault = "answer" if answer_only else "commit"

    @property
    def open_links(self) -> int:
        with self._lock:
            return len(self._links)

    def close(self) -> None:
        self._listener.close()
        self.cut()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                refusing = self._refusing
            if refusing:
                self.refused += 1
                _kill(client)
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                _kill(client)
                continue
            server.settimeout(None)
            link = _Link(client, server)
            with self._lock:
                self._links.add(link)
                self.accepted += 1
            threading.Thread(target=self._to_server, args=(link,), daemon=True).start()
            threading.Thread(target=self._to_client, args=(link,), daemon=True).start()

    def _to_server(self, link: _Link) -> None:
        try:
            while data := link.client.recv(65536):
                fault = None
                if _COMMIT in data:
                    with self._lock:
                        fault, self._commit_fault = self._commit_fault, None
                if fault == "commit":
                    self.faults.append("commit dropped before the server saw it")
                    break
                if fault == "answer":
                    link.swallow_answer = True  # set before the server can answer
                link.server.sendall(data)
        except OSError:
            pass
        self._drop(link)

    def _to_client(self, link: _Link) -> None:
        try:
            while data := link.server.recv(65536):
                if link.swallow_answer:
                    self.faults.append("commit done, its answer dropped")
                    break
                link.client.sendall(data)
        except OSError:
            pass
        self._drop(link)

    def _drop(self, link: _Link) -> None:
        """One side closed, or a fault: close the other as well (once)."""
        with self._lock:
            mine = link in self._links
            self._links.discard(link)
        if mine:
            _kill(link.client)
            _kill(link.server)


@pytest.fixture
def proxy() -> Iterator[CuttingProxy]:
    parsed = make_url(PG_URL)
    p = CuttingProxy((parsed.host or "127.0.0.1", parsed.port or 5432))
    yield p
    p.close()


def wait_until(
    what: str, condition: Callable[[], bool], timeout: float, alive: Callable[[], Any] = lambda: None
) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        alive()
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.01)


# --- the worker -----------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_worker_rides_out_cuts_a_refusal_and_a_lost_commit_answer(
    db_url: str, proxy: CuttingProxy, request: pytest.FixtureRequest
) -> None:
    total = 1500
    seed_due(db_url, total, threads=4)
    proc = worker(proxy.url(db_url), "--interval", "1")

    def stop() -> None:  # on a failure, before the schema is dropped
        if proc.running():
            proc.proc.kill()

    request.addfinalizer(stop)
    watcher = sql_engine(db_url)  # polls the progress directly, not through the proxy
    request.addfinalizer(watcher.dispose)

    def alive() -> None:
        assert proc.running(), proc.finish(timeout=30)

    def breaches() -> int:
        with watcher.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM audit_records WHERE event = 'deadline_breached'"))
                       .scalar_one())  # fmt: skip

    def progressed_to(target: int) -> None:
        wait_until(f"{target} breaches", lambda: breaches() >= target, 30, alive)

    outages = []
    for target in (100, 300, 500):  # cut in the middle of the sweep
        progressed_to(target)
        outages.append(("cut", proxy.cut()))
    progressed_to(700)  # a commit whose answer never arrives: the case is done, the worker cannot know
    proxy.lose_next_commit(answer_only=True)
    wait_until("the commit answer to be lost", lambda: bool(proxy.faults), 30, alive)
    progressed_to(breaches() + 100)  # the server is down for a while: refused until it was turned away twice
    proxy.refuse(True)
    outages.append(("refusal", proxy.cut()))
    started = time.monotonic()
    wait_until("the worker to be turned away twice", lambda: proxy.refused >= 2, 30, alive)
    before = breaches()
    proxy.refuse(False)
    refused_for = time.monotonic() - started
    progressed_to(1200)
    outages.append(("cut", proxy.cut()))
    progressed_to(total)
    alive()  # it neither exited nor hung: it finished the sweep by itself

    err = proc.stderr_so_far()
    proc.proc.send_signal(signal.SIGKILL)  # stopping mid-delivery is safe; SIGTERM would wait for it
    proc.finish(timeout=30)
    warnings = err.count("database unavailable")
    assert "Traceback" not in err, err[-5000:]
    assert warnings >= 2 + 1, err[-5000:]  # at least the two refused ticks and the lost answer
    assert all(n >= 1 for _, n in outages), outages  # each outage took the worker's connection
    assert before < total, "the refusal came after the end of the sweep: nothing was tested"
    assert counts(db_url) == {"breach_records": total, "cases_breached": total, "max_per_case": 1,
                              "deadlines_breached": total, "outbox": 2 * total}  # fmt: skip
    verified = subprocess.run(
        [sys.executable, "-m", "second_opinion", "audit", "verify", "--json", "--db", db_url], text=True,
        capture_output=True, timeout=120, env={**os.environ, "SECOND_OPINION_CLOCK": AFTER},
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr
    report = json.loads(verified.stdout)
    assert report["ok"] and report["cases"] == total, report
    print(f"\nworker: {len(outages)} outages ({refused_for:.1f} s refused, {proxy.refused} connections refused), "
          f"faults {proxy.faults}, {warnings} 'database unavailable' ticks, {proxy.accepted} connections")  # fmt: skip


# --- the API --------------------------------------------------------------------------------------

CLIENTS = 6
CASES_PER_CLIENT = 4
RECORD = {"event": "record_circumstances", "data": NO_CIRCUMSTANCES}
WITHDRAW = {"event": "withdraw", "reason": "patient's wish"}


@dataclass
class Attempt:
    what: str
    started: float
    ended: float
    status: int


class Client:
    """One caller: sends, and on a 503 checks the problem and retries the same request (with the
    same Idempotency-Key) after Retry-After, until it succeeds; every attempt is kept."""

    def __init__(self, base: str, headers: dict[str, str], attempts: list[Attempt]) -> None:
        self.http = httpx.Client(base_url=base, timeout=30)
        self.headers = headers
        self.attempts = attempts

    def send(self, what: str, method: str, path: str, expect: int, key: str | None = None,
             body: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
        headers = {**self.headers, **({"Idempotency-Key": key} if key else {})}
        deadline = time.monotonic() + 60
        while True:
            started = time.monotonic()
            answer = self.http.request(method, path, headers=headers, json=body)
            self.attempts.append(Attempt(what, started, time.monotonic(), answer.status_code))
            if answer.status_code == expect:
                found: dict[str, Any] = answer.json()
                return found
            problem(answer, 503, "storage-unavailable")  # anything else (a 500 above all) fails here
            wait = int(answer.headers["Retry-After"])
            assert 1 <= wait <= 60 and time.monotonic() < deadline, (what, answer.headers)
            time.sleep(wait)

    def close(self) -> None:
        self.http.close()


def audit_rows(url: str) -> tuple[int, Counter[tuple[str, str, str]]]:
    engine = sql_engine(url)
    try:
        with engine.connect() as conn:
            cases = conn.execute(text("SELECT count(*) FROM cases")).scalar()
            rows = conn.execute(text("SELECT case_id, event, outcome FROM audit_records")).all()
    finally:
        engine.dispose()
    return int(cases or 0), Counter((c, e, o) for c, e, o in rows)


@pytest.mark.postgres
def test_api_answers_503_during_outages_and_retried_commands_happen_once(
    pg_url: str, tmp_path: Path, proxy: CuttingProxy
) -> None:
    done = cli("init", "--db", pg_url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    desk = token(pg_url, "desk-a", "coordinator", tmp_path)
    auditor = token(pg_url, "aud-1", "auditor", tmp_path)
    server = Server(proxy.url(pg_url), free_ports(1)[0], tmp_path)
    attempts: list[Attempt] = []
    outages: list[tuple[str, float, float]] = []
    try:
        server.wait_ready(time.monotonic() + READY_TIMEOUT)
        one = Client(server.base, desk, attempts)

        # 1. a lost COMMIT answer: the fire happened, the caller got a 503; its retry replays it
        case = one.send("open", "POST", "/cases", 201, "lost-0", {"patient_ref": "PX-LOST"})["case_id"]
        proxy.lose_next_commit(answer_only=True)
        lost = one.http.post(f"/cases/{case}/events", json=RECORD, headers={**desk, "Idempotency-Key": "lost-1"})
        problem(lost, 503, "storage-unavailable")
        assert lost.headers["Retry-After"] == "1"
        assert audit_rows(pg_url)[1][(case, "record_circumstances", "accepted")] == 1, "it did happen"
        again = one.send("record", "POST", f"/cases/{case}/events", 200, "lost-1", RECORD)
        assert again["version"] == 2

        # 2. a COMMIT that never arrived: the fire did not happen; its retry does it
        proxy.lose_next_commit(answer_only=False)
        lost = one.http.post(f"/cases/{case}/events", json=WITHDRAW, headers={**desk, "Idempotency-Key": "lost-2"})
        problem(lost, 503, "storage-unavailable")
        assert audit_rows(pg_url)[1][(case, "withdraw", "accepted")] == 0, "it did not happen"
        again = one.send("withdraw", "POST", f"/cases/{case}/events", 200, "lost-2", WITHDRAW)
        assert (again["version"], again["to_state"]) == (3, "withdrawn")
        assert proxy.faults == ["commit done, its answer dropped", "commit dropped before the server saw it"]
        one.close()

        # 3. six callers open, fire twice and read, while the connections are cut and refused
        first = len(attempts)

        def answered() -> int:
            return sum(1 for a in attempts[first:] if a.status != 503)

        def caller(n: int) -> list[str]:
            me = Client(server.base, desk, attempts)
            ids = []
            try:
                for i in range(CASES_PER_CLIENT):
                    opened = me.send("open", "POST", "/cases", 201, f"open-{n}-{i}", {"patient_ref": f"PX-{n}-{i}"})
                    ids.append(opened["case_id"])
                    for event, body, version in (("record", RECORD, 2), ("withdraw", WITHDRAW, 3)):
                        receipt = me.send(event, "POST", f"/cases/{ids[-1]}/events", 200, f"{event}-{n}-{i}", body)
                        assert receipt["version"] == version, receipt  # applied once, whatever the retries
                        read = me.send("read", "GET", f"/cases/{ids[-1]}", 200)
                        assert read["version"] == version, read
            finally:
                me.close()
            return ids

        def outage(kind: str, act: Callable[[], object]) -> None:
            started = time.monotonic()
            act()
            outages.append((kind, started, time.monotonic()))

        total = CLIENTS * CASES_PER_CLIENT * 5
        with ThreadPoolExecutor(CLIENTS) as pool:
            futures = [pool.submit(caller, n) for n in range(CLIENTS)]

            def reached(share: float) -> None:
                wait_until(f"{share:.0%} of the requests", lambda: answered() >= share * total, 60)

            for share in (0.1, 0.25, 0.4, 0.55):
                reached(share)
                outage("cut", proxy.cut)
            reached(0.7)
            refused_before = proxy.refused

            def down() -> None:
                proxy.refuse(True)
                proxy.cut()
                wait_until("six refused connections", lambda: proxy.refused >= refused_before + CLIENTS, 30)
                proxy.refuse(False)

            outage("refusal", down)
            reached(0.85)
            outage("cut", proxy.cut)
            ids = [i for f in futures for i in f.result(timeout=120)]
        assert len(ids) == len(set(ids)) == CLIENTS * CASES_PER_CLIENT

        verified = server.client.get("/audit/verify", headers=auditor)
        assert verified.status_code == 200, verified.text
        assert verified.json() == {"ok": True, "cases": 1 + len(ids), "records": 3 * (1 + len(ids)), "findings": []}
    finally:
        server.stop()

    # no command lost or doubled: one case per open, one accepted record per intended event, no refusals
    cases, rows = audit_rows(pg_url)
    assert cases == 1 + len(ids)
    assert rows == Counter({(c, e, "accepted"): 1 for c in [case, *ids] for e in ("open", "record_circumstances",
                                                                                    "withdraw")})  # fmt: skip
    checked = cli("access-log", "verify", "--db", pg_url, "--json", cwd=tmp_path)
    assert checked.returncode == 0 and json.loads(checked.stdout)["ok"], checked.stdout + checked.stderr

    # every failure was a 503 caught by an outage; every request between outages succeeded
    failed = [a for a in attempts if a.status == 503]
    stray = [a for a in failed if not any(a.started <= end and a.ended >= start for _, start, end in outages)]
    assert stray == [], (stray, outages)
    in_refusal = [a for a in failed if any(k == "refusal" and a.started <= e and a.ended >= s for k, s, e in outages)]
    assert in_refusal, "no request met the refusal: nothing was tested"
    assert "Traceback" not in server.output, server.output[-5000:]
    assert server.output.count("database unavailable") >= len(failed)
    print(f"\napi: {len(attempts)} attempts, {len(failed)} answered 503 ({len(in_refusal)} in the refusal), "
          f"{len(outages)} outages, {proxy.cut_links} connections cut, {proxy.refused} refused, "
          f"commit faults {proxy.faults}")  # fmt: skip


def test_only_a_lost_connection_is_a_503() -> None:
    """What the API answers 503 for (and the worker logs as one line): no server answer at all, a
    connection exception (08xxx) or a server shutting down; a refusal by the database is no outage."""
    lost = [
        psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly"),
        psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
        psycopg.errors.ConnectionFailure("connection failure"),
        OperationalError("SELECT 1", {}, psycopg.OperationalError("connection failed: Connection refused")),
    ]
    refused = [
        psycopg.errors.SerializationFailure("could not serialize access"),
        psycopg.errors.QueryCanceled("canceling statement due to statement timeout"),
        IntegrityError("INSERT", {}, psycopg.errors.UniqueViolation("duplicate key")),
        ValueError("not a database error"),
    ]
    assert [connection_lost(e) for e in lost] == [True] * len(lost)
    assert [connection_lost(e) for e in refused] == [False] * len(refused)


def test_the_cli_says_a_lost_database_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """A command whose connection breaks mid-way (a worker --once, say) ends with one error line,
    exit 1 and no traceback; any other driver error is still a bug and propagates."""
    import typer

    from second_opinion.cli.common import guard as _guard

    with pytest.raises(typer.Exit) as ended, _guard(), translating():  # storage's boundary, as a command meets it
        raise psycopg.OperationalError("server closed the connection unexpectedly")
    assert ended.value.exit_code == 1
    assert capsys.readouterr().err == (
        "error: the database is unavailable (connection lost: server closed the connection unexpectedly); try again\n"
    )
    with pytest.raises(StorageError) as escaped, _guard(), translating():
        raise IntegrityError("INSERT", {}, psycopg.IntegrityError("duplicate key"))
    assert isinstance(escaped.value.__cause__, IntegrityError)
