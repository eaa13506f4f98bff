"""Reads among many audit records: the history of one case, and the overdue deadlines
(``DeadlineService.deadlines(overdue=True)``, what ``second-opinion deadlines --overdue`` and
``GET /cases?overdue=true`` call), p50 and p99, against a raw driver running the same reads.

The store is a realistic mix: of every 20 cases, 16 were handed back (9 audit records each, their
deadline met), 3 are referred and running, 1 is referred and overdue: 8 records a case on average.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable
from typing import Any

import psycopg

from second_opinion import connect
from storage.statements import Compiled
from workflow import FixedClock
from workflow.service.deadlines import DeadlineService

from .config import Sizes
from .databases import database, pg_analyze, sqlite_path
from .measure import latencies_ms, percentile
from .report import Figure
from .seed import Cloner, case_id, clones, compiled_for, insert
from .workload import NOW, handed_back, referred_overdue, referred_running

OVERDUE = ("SELECT * FROM deadlines WHERE stopped_at IS NULL AND (state = 'running' OR state = 'breached') "
           "AND due_at < {m}")
"""The overdue listing, raw: open deadlines (running, or breached and not stopped) due before now."""
MIX = ((handed_back, 16), (referred_running, 3), (referred_overdue, 1))
RECORDS_PER_CASE = 8


def seed_mix(url: str, cases: int, tag: str = "r") -> Compiled:
    compiled = compiled_for(url)
    insert(url, clones([(Cloner(make(), compiled), weight) for make, weight in MIX], tag, cases))
    if not url.startswith("sqlite"):
        pg_analyze(url)
    return compiled


def run(sizes: Sizes, backends: list[str], pg: str) -> list[Figure]:
    figures = []
    cases = sizes.read_records // RECORDS_PER_CASE
    for backend in backends:
        with database(backend, pg) as url:
            compiled = seed_mix(url, cases)
            sample = [case_id("r", random.Random(i).randrange(cases)) for i in range(sizes.history_samples)]
            figures += _measure(url, compiled, backend, sample, sizes)
    return figures


def _measure(url: str, compiled: Compiled, backend: str, sample: list[str], sizes: Sizes) -> list[Figure]:
    raw = _connect(url)
    try:
        with connect(url, clock=FixedClock(NOW)) as service:
            deadlines = DeadlineService(service.runtime)
            found = len(deadlines.deadlines(overdue=True))
            now = compiled.ts_in(NOW)
            m = "?" if backend == "sqlite" else "%s"
            raw_found = len(_raw(raw, OVERDUE.format(m=m), (now,)))
            if found != raw_found:
                raise RuntimeError(f"overdue: the library found {found}, the raw query {raw_found}")
            results = {
                "history": (_cycle(sample, service.history), _cycle(sample, lambda c: _history(raw, m, c)),
                            sizes.history_samples),
                "overdue": (lambda: deadlines.deadlines(overdue=True),
                            lambda: _raw(raw, OVERDUE.format(m=m),
                                         (now,)), sizes.overdue_samples),
            }  # fmt: skip
            figures = []
            for name, (library, floor, n) in results.items():
                lib_ms, floor_ms = latencies_ms(library, n), latencies_ms(floor, n)
                figures.append(Figure(
                    f"{name}.{backend}", f"{name} among {sizes.read_records:,} audit records, {backend}",
                    "ms p50", percentile(lib_ms, 50), percentile(floor_ms, 50),
                    percentile(lib_ms, 50) / percentile(floor_ms, 50), None, None,
                    {"p99_ms": percentile(lib_ms, 99), "floor_p99_ms": percentile(floor_ms, 99), "samples": n,
                     "audit_records": sizes.read_records, "overdue_deadlines": found},
                ))  # fmt: skip
            return figures
    finally:
        raw.close()


def _cycle(items: list[str], fn: Callable[[str], object]) -> Callable[[], object]:
    position = iter(range(1 << 62))
    return lambda: fn(items[next(position) % len(items)])


def _connect(url: str) -> Any:
    if url.startswith("sqlite"):
        return sqlite3.connect(sqlite_path(url))
    return psycopg.connect(url)


def _raw(conn: Any, sql: str, params: tuple[Any, ...]) -> list[Any]:
    rows = conn.execute(sql, params).fetchall()
    conn.rollback()
    return list(rows)


def _history(conn: Any, m: str, case: str) -> list[Any]:
    """What ``history`` reads, raw: the case row, then its audit records in storage order."""
    conn.execute(f"SELECT * FROM cases WHERE id = {m}", (case,)).fetchone()
    return _raw(conn, f"SELECT * FROM audit_records WHERE case_id = {m} ORDER BY sequence", (case,))
