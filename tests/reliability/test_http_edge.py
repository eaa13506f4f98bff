"""The HTTP edge on a real server, through raw sockets on 127.0.0.1: what a slow or odd client
gets before its request reaches the app.

One ``second-opinion serve`` subprocess (SQLite) runs with short bounds (1 s header, keep-alive
and body timeouts, 20 connections), so each test waits at most a few seconds for the server to do
what it must (close, answer); those waits are bounded reads, never sleeps. /health under a full
thread pool runs an in-process uvicorn around a unit of work whose reads block.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from second_opinion import connect
from second_opinion.api import create_app
from tests.reliability.test_api_servers import Server, cli
from workflow import CaseService

BOUND = 5.0
"""Seconds a test waits for the server to close or answer; its timeouts are 1 s."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served(Server):
    """``second-opinion serve`` (tests.reliability.test_api_servers.Server) with 1 s timeouts, on a
    SQLite file of its own."""

    def __init__(self, tmp: Path, max_connections: int = 20, per_address: tuple[str, ...] = ()) -> None:
        url = f"sqlite:///{tmp / 'edge.sqlite3'}"
        made = cli("init", "--db", url, cwd=tmp)
        assert made.returncode == 0, made.stderr
        flags = ("--header-timeout", "1", "--keep-alive", "1", "--body-timeout", "1",
                 "--max-connections", str(max_connections), *per_address)  # fmt: skip
        # the console format: the request-line assertions below quote it (JSON lines escape their quotes;
        # the JSON format's own request lines: tests/cli/test_cli_observability.py)
        super().__init__(url, _free_port(), tmp, flags=flags, env={"SECOND_OPINION_LOG_FORMAT": "console"})
        self.wait_ready(time.monotonic() + 30)

    def log(self) -> str:
        return self.log_so_far()

    def connect(self, source: str | None = None) -> socket.socket:
        """A connection from 127.0.0.1, or from ``source`` (another loopback address)."""
        address = (source, 0) if source else None
        return socket.create_connection(("127.0.0.1", self.port), timeout=BOUND, source_address=address)

    def stop(self) -> str:  # type: ignore[override]
        super().stop()
        return self.output


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    server = Served(tmp_path_factory.mktemp("edge"))
    try:
        yield server
    finally:
        output = server.stop()
    assert "Traceback" not in output, output


def read_until_closed(sock: socket.socket, bound: float = BOUND) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and the seconds that took; fails past ``bound``."""
    start, got = time.monotonic(), b""
    sock.settimeout(bound)
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        except TimeoutError:
            pytest.fail(f"the server kept the connection open for {bound} s; received {got[:200]!r}")
        if not chunk:
            return got, time.monotonic() - start
        got += chunk


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def test_half_a_request_line_is_closed_within_the_header_timeout(served: Served) -> None:
    with served.connect() as sock:
        sock.sendall(b"GET /cases HT")
        got, took = read_until_closed(sock)
    assert got == b"" and took < BOUND, (got, took)


def test_a_head_dribbled_byte_by_byte_is_closed_within_the_header_timeout(served: Served) -> None:
    """Each byte would reset an idle timer; the header timeout counts from the connection's start."""
    head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 200
    start = time.monotonic()
    with served.connect() as sock:
        sock.settimeout(0.2)
        closed = False
        for byte in head:
            if time.monotonic() - start > BOUND:
                break
            try:
                sock.sendall(bytes([byte]))
                closed = sock.recv(1) == b""  # a bounded wait for the server (0.2 s) between bytes
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed = True
            if closed:
                break
    assert closed and time.monotonic() - start < BOUND


def test_an_idle_keep_alive_connection_is_closed(served: Served) -> None:
    with served.connect() as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        got, took = read_until_closed(sock)
    assert status_of(got) == 200 and took < BOUND


def test_a_second_request_head_after_a_response_is_bounded_too(served: Served) -> None:
    with served.connect() as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /hea")  # the next head, half of it
        got, took = read_until_closed(sock)
    assert status_of(got) == 200 and took < BOUND


def test_a_body_that_stops_arriving_is_a_408_and_the_connection_closes(served: Served) -> None:
    with served.connect() as sock:
        sock.sendall(b"POST /cases HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"patient_ref\": ")  # fmt: skip
        got, took = read_until_closed(sock)
    assert status_of(got) == 408 and b"urn:second-opinion:problem:request-timeout" in got, got
    assert b"connection: close" in got.lower() and took < BOUND


def test_a_body_trickled_faster_than_any_pause_is_still_a_408_at_the_body_timeout(served: Served) -> None:
    """Found by the hostile-client run: a byte every quarter second never pauses for the 1 s body
    timeout, and held its connection for as long as the client liked. The timeout is for the whole
    body: the answer comes about 1 s after the head, however the bytes keep coming."""
    with served.connect() as sock:
        sock.sendall(b"POST /cases HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n")  # fmt: skip
        start, got = time.monotonic(), b""
        while time.monotonic() - start < BOUND and b"\r\n\r\n" not in got:
            try:
                sock.sendall(b" ")
            except (BrokenPipeError, ConnectionResetError):
                break
            ready, _, _ = select.select([sock], [], [], 0.25)  # the trickle's pace, and the answer if it came
            if ready:
                got += sock.recv(65536)
        rest, _ = read_until_closed(sock)
        took = time.monotonic() - start
    assert status_of(got + rest) == 408 and b"request-timeout" in got + rest, got + rest
    assert took < BOUND


def test_a_chunked_body_beside_a_small_content_length_is_refused_at_the_limit(served: Served) -> None:
    """No token needed: the body is counted before anything else. 1 MB offered, 413 at 256 KiB."""
    chunk = b"2710\r\n" + b"x" * 10_000 + b"\r\n"  # 10,000 bytes a chunk
    sent = 0
    with served.connect() as sock:
        sock.sendall(b"POST /cases HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n")  # fmt: skip
        try:
            for _ in range(100):
                sock.sendall(chunk)
                sent += 10_000
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed on us: what we sent past the limit was not wanted
        got, _ = read_until_closed(sock)
    assert status_of(got) == 413 and b"urn:second-opinion:problem:body-too-large" in got, got


def test_a_head_over_the_size_bound_is_a_400(served: Served) -> None:
    with served.connect() as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 20_000 + b"\r\n")
        got, _ = read_until_closed(sock)
    assert status_of(got) == 400


def test_every_request_target_form_is_logged_without_what_was_typed(served: Served) -> None:
    lines = [b"GET http://evil.example/cases/PX-111222333?name=Jansen HTTP/1.1",
             b"GET /cases/PX-111222333/history?state=Jansen HTTP/1.1", b"OPTIONS * HTTP/1.1",
             b"JANSEN /cases HTTP/1.1", b"GET evil.example:80 HTTP/1.1"]  # fmt: skip
    for line in lines:
        with served.connect() as sock:
            sock.sendall(line + b"\r\nHost: x\r\nConnection: close\r\n\r\n")
            got, _ = read_until_closed(sock)
            assert got.startswith(b"HTTP/1.1 "), (line, got)
    log = served.log()
    for typed in ("PX-111222333", "Jansen", "JANSEN", "evil.example", "name="):
        assert typed not in log, (typed, log[-3000:])
    assert '"GET ... HTTP/1.1" 404' in log and '"GET /cases/.../history?state=... HTTP/1.1"' in log
    assert '"OPTIONS * HTTP/1.1"' in log and '"... /cases HTTP/1.1"' in log


def test_a_trailing_slash_redirects_nowhere_whatever_the_host(served: Served) -> None:
    answer = httpx.get(f"http://127.0.0.1:{served.port}/cases/", headers={"Host": "evil.example"}, timeout=BOUND)
    assert answer.status_code == 404 and "location" not in answer.headers, answer.headers


def test_connections_past_the_bound_get_503_until_the_idle_ones_are_closed(served: Served) -> None:
    idle = [served.connect() for _ in range(20)]  # half-open heads, as a slowloris holds them
    try:
        for sock in idle:
            sock.sendall(b"GET / HT")
        with served.connect() as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            got, _ = read_until_closed(sock)
        assert status_of(got) == 503, got
        for sock in idle:
            read_until_closed(sock)  # the header timeout closes each of them
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + BOUND
    while httpx.get(f"http://127.0.0.1:{served.port}/health", timeout=BOUND).status_code != 200:
        assert time.monotonic() < deadline, "the server did not recover once the idle connections were closed"
        time.sleep(0.05)


def test_half_open_connections_from_one_address_leave_health_answered_for_another(tmp_path: Path) -> None:
    """Found by review: one client without a token held every connection the server takes with
    half-sent heads (each for the header timeout) and every other client, /health included, got
    503. With a cap per address, its connections past the cap are closed as they open."""
    # the header timeout raised to 30 s here, so that "closed at once" is told from "closed by the
    # header timeout" by a margin a loaded machine cannot eat (it was 0.5 s against 1 s)
    server = Served(tmp_path, max_connections=8,
                    per_address=("--max-connections-per-address", "4", "--header-timeout", "30"))  # fmt: skip
    idle = []
    try:
        idle = [server.connect() for _ in range(8)]  # as many as the whole server takes
        for sock in idle[:4]:
            sock.sendall(b"GET / HT")
        for sock in idle[4:]:  # past the cap: closed at once, long before the 30 s header timeout
            got, took = read_until_closed(sock, bound=BOUND)
            assert got == b"" and took < BOUND, (got, took)
        with server.connect("127.0.0.2") as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            got, _ = read_until_closed(sock)
        assert status_of(got) == 200, got
    finally:
        for sock in idle:
            sock.close()
        output = server.stop()
    assert "Traceback" not in output, output


# --- /health while every worker thread waits on the database ---------------------------------


BLOCKED_BOUND = 20.0
"""How long the probes may take while the pool is full: far under the 60 s the blocked requests
wait, so an answer within it cannot have come from a freed thread."""


class Blocking:
    """A unit-of-work factory whose every unit waits for ``release``: the thread pool fills."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.release, self.waiting, self.lock = inner, threading.Event(), 0, threading.Lock()

    def __call__(self, write: bool = False) -> Any:
        with self.lock:
            self.waiting += 1
        self.release.wait(timeout=60)
        return self.inner(write)


def test_health_and_ready_answer_while_every_worker_thread_is_blocked_on_the_database() -> None:
    from dataclasses import replace

    threads = 40  # anyio's default thread limiter: sync routes run on at most this many threads
    with connect("memory://") as base:
        blocking = Blocking(base.runtime.uow)
        service = CaseService.on(replace(base.runtime, uow=blocking))
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(service), host="127.0.0.1", port=port, log_level="warning"))
        runner = threading.Thread(target=server.run, daemon=True)
        runner.start()
        socks: list[socket.socket] = []
        try:
            deadline = time.monotonic() + 30
            while not server.started:
                assert runner.is_alive() and time.monotonic() < deadline, "the server did not start"
                time.sleep(0.02)
            for _ in range(threads + 10):
                sock = socket.create_connection(("127.0.0.1", port), timeout=BOUND)
                sock.sendall(b"GET /cases HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer so_x\r\n\r\n")
                socks.append(sock)
            deadline = time.monotonic() + 30
            while blocking.waiting < threads:
                assert time.monotonic() < deadline, f"only {blocking.waiting} threads blocked"
                time.sleep(0.02)
            full = time.monotonic()

            # Each blocked request waits up to 60 s for ``release``, which is set only below: an
            # answer at all, with the pool still full, shows neither probe queued behind it. (Found
            # by CI: a 1 s client timeout measured the loaded machine, not the queueing.)
            answer = httpx.get(f"http://127.0.0.1:{port}/health", timeout=BLOCKED_BOUND)
            assert answer.status_code == 200, answer.text
            # found by review: /ready ran on the same pool and queued behind the stuck requests
            answer = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=BLOCKED_BOUND)
            assert answer.status_code == 200, answer.text
            assert time.monotonic() - full < 60 and blocking.waiting == threads, "the pool was full all along"
        finally:
            blocking.release.set()
            for sock in socks:
                sock.close()
            server.should_exit = True
            runner.join(timeout=15)
