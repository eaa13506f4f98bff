"""The HTTP API under several client threads: reads (``GET /cases/ID``) and fires
(``POST /cases/ID/events``) per second, against the same requests sent to a bare ASGI app.

The app is served as users serve it, ``python -m second_opinion serve`` (uvicorn, one process)
on PostgreSQL; the floor, :func:`bench.floors.bare_asgi`, by ``python -m bench.serve`` with the
same ``uvicorn.run`` options. Clients are ``httpx.Client`` objects in threads of this process,
each sending a fixed list of requests over one keep-alive connection.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from second_opinion import connect
from workflow.service.tokens import TokenService

from .config import Sizes
from .databases import pg_db
from .measure import busy_share, machine_ticks
from .report import Figure
from .workload import DESK, DOCTOR, GP, PATH, PROVIDER

Request = tuple[str, str, dict[str, Any] | None, dict[str, str]]
ROOT = Path(__file__).resolve().parent.parent


def run(sizes: Sizes, pg: str) -> list[Figure]:
    clients, reads, fires = sizes.api_clients, sizes.api_requests, max(8, sizes.api_requests // 4)
    with pg_db(pg) as url:
        read_plan, fire_plan = _plans(url, clients, reads, fires)
        rates: dict[str, dict[str, float]] = {}
        cpu: dict[str, dict[str, float]] = {}
        busy: dict[str, dict[str, float]] = {}
        for name, command in (
            ("floor", [sys.executable, "-m", "bench.serve"]),
            ("app", [sys.executable, "-m", "second_opinion", "serve", "--db", url, "--port"]),
        ):
            with _server(command) as (base, pid):
                rates[name], cpu[name], busy[name] = {}, {}, {}
                for kind, plan in (("read", read_plan), ("fire", fire_plan)):
                    before, ticks = _cpu_seconds(pid), machine_ticks()
                    rates[name][kind] = _load(base, plan)
                    cpu[name][kind] = (_cpu_seconds(pid) - before) / sum(map(len, plan)) * 1e3
                    busy[name][kind] = busy_share(ticks, machine_ticks())
    return [
        Figure(f"api.{kind}", f"{'GET /cases/ID' if kind == 'read' else 'POST /cases/ID/events'}, {clients} clients, "
               "uvicorn, PostgreSQL", "req/s", rates["app"][kind], rates["floor"][kind],
               rates["floor"][kind] / rates["app"][kind], None, None,
               {"clients": clients, "requests_per_client": len(plan[0]),
                "server_cpu_ms_per_request": cpu["app"][kind], "floor_server_cpu_ms_per_request": cpu["floor"][kind],
                "machine_cpu_busy": busy["app"][kind]})
        for kind, plan in (("read", read_plan), ("fire", fire_plan))
    ]  # fmt: skip


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _plans(url: str, clients: int, reads: int, fires: int) -> tuple[list[list[Request]], list[list[Request]]]:
    """Per client: ``reads`` reads of random cases, and ``fires`` fires walking its own cases."""
    with connect(url) as service:
        tokens = TokenService(service.runtime)
        headers = {a.role: {"Authorization": f"Bearer {tokens.create(a.id, a.role, 'local')[0]}"}
                   for a in (DESK, GP, DOCTOR)}  # fmt: skip
        per_client = -(-fires // len(PATH))
        cases = [service.open_case("PX-API", actor=DESK, provider=PROVIDER).case_id
                 for _ in range(clients * per_client)]  # fmt: skip
    rng = random.Random(11)
    read_plan: list[list[Request]] = [
        [("GET", f"/cases/{rng.choice(cases)}", None, headers["coordinator"]) for _ in range(reads)]
        for _ in range(clients)
    ]
    fire_plan: list[list[Request]] = []
    for c in range(clients):
        mine = cases[c * per_client : (c + 1) * per_client]
        steps = [(case, step) for case in mine for step in PATH][:fires]
        fire_plan.append([("POST", f"/cases/{case}/events", {"event": event, "data": data}, headers[actor.role])
                          for case, (event, actor, data) in steps])  # fmt: skip
    return read_plan, fire_plan


def _load(base: str, plan: list[list[Request]]) -> float:
    """Requests per second, all clients together, from the first start to the last finish."""
    barrier = threading.Barrier(len(plan))
    spans: list[tuple[float, float]] = []
    failures: list[str] = []

    def client(requests: list[Request]) -> None:
        with httpx.Client(base_url=base, timeout=60) as http:
            http.get("/health")  # connect before the clock starts
            barrier.wait()
            start = time.perf_counter()
            for method, path, body, headers in requests:
                response = http.request(method, path, json=body, headers=headers)
                if response.status_code >= 300:
                    failures.append(f"{method} {path}: {response.status_code} {response.text[:200]}")
            spans.append((start, time.perf_counter()))

    threads = [threading.Thread(target=client, args=(requests,)) for requests in plan]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures or len(spans) != len(plan):
        raise RuntimeError(f"{len(failures)} failed requests, e.g. {failures[:3]}")
    return sum(len(r) for r in plan) / (max(e for _, e in spans) - min(s for s, _ in spans))


@contextmanager
def _server(command: list[str]) -> Iterator[tuple[str, int]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env = {k: v for k, v in env.items() if k not in ("SECOND_OPINION_CLOCK", "SECOND_OPINION_DB")}
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen([*command, str(port)], env=env, stdout=log, stderr=log, cwd=ROOT)
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_until_up(base, proc, log)
            yield base, proc.pid
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _wait_until_up(base: str, proc: subprocess.Popen[bytes], log: Any) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read()[-2000:]}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"server at {base} did not answer within 60 s")
