"""Throughput of 1, 2 and 4 concurrent clients on PostgreSQL, each a process of its own firing
commands on its own cases, library against the raw floor at the same number of clients (the
median of three runs of each, alternating)."""

from __future__ import annotations

import multiprocessing as mp
import statistics
import time
from typing import Any

from .config import Sizes
from .databases import pg_db
from .fire import Library
from .floors import Raw
from .report import Figure

CLIENTS = (1, 2, 4)
REPEATS = 3
"""Each figure is the median of this many runs, raw and library alternating."""


def _client(url: str, kind: str, ops: int, barrier: Any, results: Any) -> None:
    target: Raw | Library = Library(url, ops) if kind == "library" else Raw(url)
    try:
        barrier.wait()
        start = time.monotonic()  # system-wide on Linux: comparable between the processes
        for _ in range(ops):
            target.fire()
        results.put((start, time.monotonic()))
    finally:
        target.close()


def throughput(url: str, kind: str, clients: int, ops: int) -> float:
    """Commands per second, all clients together, from the first start to the last finish."""
    ctx = mp.get_context("fork")  # no re-import per client; each opens its own connections
    barrier, results = ctx.Barrier(clients), ctx.Queue()
    procs = [ctx.Process(target=_client, args=(url, kind, ops, barrier, results)) for _ in range(clients)]
    for p in procs:
        p.start()
    spans: list[tuple[float, float]] = [results.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"a {kind} client exited with {p.exitcode}")
    return clients * ops / (max(end for _, end in spans) - min(start for start, _ in spans))


def run(sizes: Sizes, pg: str) -> list[Figure]:
    figures = []
    first: float | None = None
    first_floor: float | None = None
    with pg_db(pg) as url:
        for clients in CLIENTS:
            runs = [(throughput(url, "raw", clients, sizes.client_ops),
                     throughput(url, "library", clients, sizes.client_ops)) for _ in range(REPEATS)]  # fmt: skip
            floor, library = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
            first, first_floor = first or library, first_floor or floor
            figures.append(Figure(
                f"clients.postgresql.{clients}", f"fire throughput, {clients} client process(es), PostgreSQL",
                "fires/s", library, floor, floor / library, None, None,
                {"ops_per_client": sizes.client_ops, "repeats": REPEATS, "scaling_vs_1_client": library / first,
                 "floor_scaling_vs_1_client": floor / first_floor},
            ))  # fmt: skip
    return figures
