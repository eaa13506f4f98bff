"""Concurrent fires through the HTTP API, in-process and across two real server processes.

The service-level races (tests/test_concurrent_fires.py) prove the storage locks; these prove
that the HTTP layer keeps the promise ``second-opinion serve`` makes when scaled out: many
callers racing with one ``If-Match`` version get exactly one 200 and 412 for the rest, no
accepted event is lost or doubled, and two processes on one PostgreSQL database write one
audit trail and one unbroken access-log chain. The servers are real subprocesses of the CLI,
started on free ports and waited for through ``GET /ready`` (readiness, never a timing claim).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.api_support import Api, problem
from tests.conftest import CONSENT, NO_CIRCUMSTANCES, SQL_BACKENDS
from workflow import CaseService
from workflow.audit.chain import GENESIS, canonical

THREADS = 8
READY_TIMEOUT = 30.0
WITHDRAW = {"event": "withdraw", "reason": "patient's wish"}


def race(n: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in ``n`` threads released together by a barrier; results in order of ``i``
    (an exception is kept as the result, so the caller's assertions name it)."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:  # asserted on by the caller
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def statuses(answers: list[Any]) -> Counter[int]:
    assert not [a for a in answers if isinstance(a, Exception)], answers
    return Counter(a.status_code for a in answers)


# --- in-process: one app, many threads --------------------------------------------------------


@pytest.fixture
def api(service: CaseService) -> Iterator[Api]:
    yield Api(service)


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
@pytest.mark.parametrize(
    ("if_match", "loser_status", "loser_slug"),
    [('"1"', 412, "stale-version"), (None, 409, "invalid-transition")],
    ids=["if-match", "no-if-match"],
)
def test_racing_the_same_fire_in_process_has_exactly_one_winner(
    api: Api, if_match: str | None, loser_status: int, loser_slug: str
) -> None:
    case_id = api.open()
    headers = [api.auth("coordinator", actor=f"desk-{i}") for i in range(THREADS)]  # tokens made before the race
    if if_match is not None:
        headers = [{**h, "If-Match": if_match} for h in headers]
    clients = [TestClient(api.app, raise_server_exceptions=False) for _ in range(THREADS)]

    answers = race(THREADS, lambda i: clients[i].post(f"/cases/{case_id}/events", json=WITHDRAW, headers=headers[i]))

    assert statuses(answers) == {200: 1, loser_status: THREADS - 1}, [a.text for a in answers]
    (winner,) = [a for a in answers if a.status_code == 200]
    assert winner.json()["version"] == 2 and winner.headers["etag"] == '"2"'
    for loser in answers:
        if loser is not winner:
            problem(loser, loser_status, loser_slug)
    desk = api.auth("coordinator")
    read = api.client.get(f"/cases/{case_id}", headers=desk)
    assert read.json()["state"] == "withdrawn" and read.json()["version"] == 2 and read.headers["etag"] == '"2"'
    history = api.client.get(f"/cases/{case_id}/history", headers=desk).json()
    outcomes = Counter((r["event"], r["outcome"]) for r in history)
    assert outcomes == {("open", "accepted"): 1, ("withdraw", "accepted"): 1, ("withdraw", "rejected"): THREADS - 1}
    verified = api.client.get("/audit/verify", headers=api.auth("auditor")).json()
    assert verified == {"ok": True, "cases": 1, "records": 1 + THREADS, "findings": []}


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
def test_racing_different_events_without_if_match_leaves_a_consistent_case(api: Api) -> None:
    """Two terminal events race with two that keep the state: exactly one terminal event wins,
    every 200 is one accepted record and one version step, every 409 is a rejected record."""
    case_id = api.open()
    bodies = [WITHDRAW, {"event": "decline", "reason": "outside our specialism"},
              {"event": "record_circumstances", "data": NO_CIRCUMSTANCES},
              {"event": "give_consent", "data": CONSENT}]  # fmt: skip
    headers = [api.auth("coordinator", actor=f"desk-{i}") for i in range(THREADS)]
    clients = [TestClient(api.app, raise_server_exceptions=False) for _ in range(THREADS)]

    def fire(i: int) -> Any:
        return clients[i].post(f"/cases/{case_id}/events", json=bodies[i % len(bodies)], headers=headers[i])

    answers = race(THREADS, fire)

    found = statuses(answers)
    assert set(found) <= {200, 409}, [a.text for a in answers]
    won = [a.json() for a in answers if a.status_code == 200]
    for loser in answers:
        if loser.status_code == 409:
            problem(loser, 409, "invalid-transition")
    terminal = [r for r in won if r["event"] in ("withdraw", "decline")]
    assert len(terminal) == 1, won
    assert sorted(r["version"] for r in won) == list(range(2, 2 + len(won))), "one version step per 200"
    assert max(won, key=lambda r: r["version"]) == terminal[0], "nothing is accepted after the case has ended"
    desk = api.auth("coordinator")
    case = api.client.get(f"/cases/{case_id}", headers=desk).json()
    assert (case["state"], case["version"]) == (terminal[0]["to_state"], 1 + len(won))
    history = api.client.get(f"/cases/{case_id}/history", headers=desk).json()
    accepted = [r["event"] for r in history if r["outcome"] == "accepted"]
    assert accepted == ["open", *(r["event"] for r in sorted(won, key=lambda r: r["version"]))]
    assert sum(1 for r in history if r["outcome"] == "rejected") == found[409]
    verified = api.client.get("/audit/verify", headers=api.auth("auditor")).json()
    assert verified == {"ok": True, "cases": 1, "records": 1 + THREADS, "findings": []}


# --- two real server processes on one PostgreSQL database ------------------------------------


def _env() -> dict[str, str]:
    """The caller's environment without any SECOND_OPINION_* setting: the URL goes in as --db."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SECOND_OPINION_")}


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "second_opinion", *args], env=_env(), cwd=cwd, text=True,
                          capture_output=True, timeout=60)  # fmt: skip


def free_ports(n: int) -> list[int]:
    """Ports the kernel has just handed out; all sockets stay open until all are chosen."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Server:
    """A ``second-opinion serve`` process; its output goes to a file, never to a pipe that could fill."""

    def __init__(self, url: str, port: int, cwd: Path, *, env: dict[str, str] | None = None,
                 flags: tuple[str, ...] = ()) -> None:  # fmt: skip
        """``env`` is added to the caller's environment (which has no SECOND_OPINION_* of its own),
        ``flags`` to the ``serve`` command line: the settings a test runs the server with."""
        self.base = f"http://127.0.0.1:{port}"
        self.port = port
        self._log = tempfile.TemporaryFile("w+")  # noqa: SIM115  (closed by stop())
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "second_opinion", "serve", "--host", "127.0.0.1", "--port", str(port),
             "--db", url, *flags], env={**_env(), **(env or {})}, cwd=cwd, text=True, stdout=self._log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.client = httpx.Client(base_url=self.base, timeout=30)
        self.output = ""

    def log_so_far(self) -> str:
        fd = self._log.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")

    def wait_ready(self, deadline: float) -> None:
        while True:
            assert self.proc.poll() is None, f"server {self.base} exited:\n{self.log_so_far()}"
            try:
                if self.client.get("/ready", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"server {self.base} not ready in time:\n{self.log_so_far()}"
            time.sleep(0.05)

    def stop(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self.output = self.log_so_far()
        self._log.close()


def token(url: str, actor: str, role: str, cwd: Path) -> dict[str, str]:
    made = cli("token", "create", "--actor", actor, "--role", role, "--org", "org-a", "--db", url, "--json", cwd=cwd)
    assert made.returncode == 0, made.stderr
    return {"Authorization": f"Bearer {json.loads(made.stdout)['token']}"}


def chain_problems(records: list[dict[str, Any]]) -> list[str]:
    """The access log as GET /access-log shows it, checked link by link and hash by hash."""
    found, head, last = [], GENESIS, 0
    for r in records:
        if r["prev_hash"] != head:
            found.append(f"record {r['sequence']} does not follow the one before it")
        fields = {k: v for k, v in r.items() if k not in ("sequence", "hash")}
        if hashlib.sha256(canonical(fields)).hexdigest() != r["hash"]:
            found.append(f"record {r['sequence']} does not match its hash")
        if r["sequence"] <= last:
            found.append(f"record {r['sequence']} is out of order")
        head, last = r["hash"], r["sequence"]
    return found


@pytest.mark.postgres
def test_two_server_processes_on_one_postgres_share_one_truth(pg_url: str, tmp_path: Path) -> None:
    cases_n, racers = 20, 4
    done = cli("init", "--db", pg_url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    desks = [token(pg_url, "desk-a", "coordinator", tmp_path), token(pg_url, "desk-b", "coordinator", tmp_path)]
    auditor = token(pg_url, "aud-1", "auditor", tmp_path)
    servers: list[Server] = []
    try:
        for port in free_ports(2):
            servers.append(Server(pg_url, port, tmp_path))
        deadline = time.monotonic() + READY_TIMEOUT
        for server in servers:
            server.wait_ready(deadline)

        # 20 cases opened at once, through alternating servers
        opened = race(cases_n, lambda i: servers[i % 2].client.post(
            "/cases", json={"patient_ref": f"PX-{i:04d}"}, headers=desks[i % 2]))  # fmt: skip
        assert statuses(opened) == {201: cases_n}, [a.text for a in opened]
        ids = [a.json()["case_id"] for a in opened]
        assert len(set(ids)) == cases_n

        # per case, four racers (two per server) fire a terminal event with If-Match "1"
        events = [WITHDRAW, {"event": "decline", "reason": "outside our specialism"}]

        def fire(i: int) -> Any:
            case_id, n = ids[i // racers], i % racers
            return servers[n % 2].client.post(f"/cases/{case_id}/events", json=events[(n // 2) % 2],
                                              headers={**desks[n % 2], "If-Match": '"1"'})  # fmt: skip

        fired = race(cases_n * racers, fire)
        assert statuses(fired) == {200: cases_n, 412: cases_n * (racers - 1)}, [a.text for a in fired]
        winners: dict[str, dict[str, Any]] = {}
        for answer in fired:
            if answer.status_code == 412:
                problem(answer, 412, "stale-version")
            else:
                receipt = answer.json()
                assert receipt["case_id"] not in winners, "two winners for one case"
                winners[receipt["case_id"]] = receipt
        assert set(winners) == set(ids) and {r["version"] for r in winners.values()} == {2}

        # both servers see the same state: lists, and every case read through each (logged by each)
        listed = [{c["id"]: (c["state"], c["version"]) for c in s.client.get("/cases", headers=d).json()}
                  for s, d in zip(servers, desks, strict=True)]  # fmt: skip
        assert listed[0] == listed[1] == {i: (winners[i]["to_state"], 2) for i in ids}
        reads = race(2 * cases_n, lambda i: servers[i % 2].client.get(f"/cases/{ids[i // 2]}", headers=desks[i % 2]))
        assert statuses(reads) == {200: 2 * cases_n}
        for i, read in enumerate(reads):
            assert read.headers["etag"] == '"2"' and read.json()["state"] == winners[ids[i // 2]]["to_state"]

        verified = servers[0].client.get("/audit/verify", headers=auditor)
        assert verified.json() == {"ok": True, "cases": cases_n, "records": cases_n * (1 + racers), "findings": []}
        log = servers[1].client.get("/access-log", headers=auditor)
        assert log.status_code == 200, log.text
        records = log.json()
        assert chain_problems(records) == []
        reads_by = Counter(r["actor_id"] for r in records if r["kind"] == "case" and r["outcome"] == "granted")
        assert reads_by == {"desk-a": cases_n, "desk-b": cases_n}, "both servers wrote into the one chain"
        checked = cli("access-log", "verify", "--db", pg_url, "--json", cwd=tmp_path)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert json.loads(checked.stdout) == {"ok": True, "records": len(records), "problems": []}
    finally:
        for server in servers:
            server.stop()
    for server in servers:
        assert "Traceback" not in server.output, server.output


# --- the providers' contact values: read once, when the server starts ---------------------------


def test_a_server_with_a_bad_contacts_file_never_listens(tmp_path: Path) -> None:
    """``serve`` reads $SECOND_OPINION_PROVIDER_CONTACTS before it opens the database or a port: a
    bad file is one line naming it and exit 1, and nothing ever answers on the port."""
    url = f"sqlite:///{tmp_path / 'bad-contacts.sqlite3'}"
    assert cli("init", "--db", url, cwd=tmp_path).returncode == 0
    contacts = tmp_path / "contacts.json"
    contacts.write_text('{"umc-utrecht": {"fax": "030 000"}}')
    (port,) = free_ports(1)
    server = Server(url, port, tmp_path, env={"SECOND_OPINION_PROVIDER_CONTACTS": str(contacts)})
    try:
        code = server.proc.wait(timeout=READY_TIMEOUT)
    finally:
        server.stop()
    assert code == 1, server.output
    assert server.output == (f"error: provider contacts file {str(contacts)!r} (SECOND_OPINION_PROVIDER_CONTACTS): "
                             "umc-utrecht: 'fax' is not a contact field; known: appointments_phone, costs_team_email, "
                             "costs_team_phone\n")  # fmt: skip
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)


def test_a_server_shows_the_operators_contacts_as_read_at_its_start(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'contacts.sqlite3'}"
    assert cli("init", "--db", url, cwd=tmp_path).returncode == 0
    patient = token(url, "PX-0001", "patient", tmp_path)
    contacts = tmp_path / "contacts.json"
    contacts.write_text(json.dumps({"royal-doctors": {"zorglijn_phone": "088 123 45 67"}}))
    (port,) = free_ports(1)
    server = Server(url, port, tmp_path, env={"SECOND_OPINION_PROVIDER_CONTACTS": str(contacts)})
    try:
        server.wait_ready(time.monotonic() + READY_TIMEOUT)
        contacts.write_text("{broken")  # an edit after the start changes nothing until a restart
        answer = server.client.get("/providers", params={"route": "royal-doctors"}, headers=patient)
        assert answer.status_code == 200, answer.text
        assert [(c["field"], c["value"], c["value_from"]) for c in answer.json()[0]["contacts"]] == [
            ("zorglijn_phone", "088 123 45 67", "operator")]  # fmt: skip
    finally:
        server.stop()
    assert "Traceback" not in server.output, server.output
