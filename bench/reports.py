"""A report over many cases (``Reports.summary``, what ``GET /reports/summary`` and ``second-opinion
report`` compute), against a raw-SQL floor: the driver running the three reads the figures need
(cases by state, the ``return_advice`` transitions of the period with their case's opening, the
deadlines of the organisation's cases) and the same arithmetic in a few lines of Python.

The store is the reads section's mix (of every 20 cases, 16 handed back, 3 referred and running,
1 referred and overdue), all in organisation ``local``; the period covers all of it.
"""

from __future__ import annotations

import sqlite3
import statistics
from datetime import UTC, datetime
from typing import Any

import psycopg

from second_opinion import connect
from workflow import FixedClock
from workflow.service.reports import Reports, period

from .config import Sizes
from .databases import database, sqlite_path
from .measure import latencies_ms, percentile
from .reads import seed_mix
from .report import Figure
from .workload import NOW

FIRST, LAST = "2026-11-01", "2026-12-31"
SINCE, UNTIL = datetime(2026, 10, 31, 23, tzinfo=UTC), datetime(2026, 12, 31, 23, tzinfo=UTC)


def run(sizes: Sizes, backends: list[str], pg: str) -> list[Figure]:
    figures = []
    for backend in backends:
        with database(backend, pg) as url:
            compiled = seed_mix(url, sizes.report_cases, tag="p")
            figures.append(_measure(url, compiled, backend, sizes))
    return figures


def _measure(url: str, compiled: Any, backend: str, sizes: Sizes) -> Figure:
    raw = _connect(url)
    m = "?" if backend == "sqlite" else "%s"
    since, until = compiled.ts_in(SINCE), compiled.ts_in(UNTIL)
    try:
        with connect(url, clock=FixedClock(NOW)) as service:
            span = period(FIRST, LAST, NOW)

            def library() -> dict[str, Any]:
                return Reports(service.runtime).summary("local", None, span).as_dict()

            def floor() -> tuple[int, float | None]:
                return _floor(raw, m, since, until, compiled)

            mine = next(r for r in library()["routes"] if r["route"] == "domestic")
            count, _ = floor()
            if mine["advice_returned"] != count:
                raise RuntimeError(f"report: the library found {mine['advice_returned']}, the floor {count}")
            n = sizes.report_samples
            lib_ms, floor_ms = latencies_ms(library, n), latencies_ms(floor, n)
    finally:
        raw.close()
    return Figure(
        f"report.{backend}", f"report over {sizes.report_cases:,} cases, {backend}", "ms p50",
        percentile(lib_ms, 50), percentile(floor_ms, 50), percentile(lib_ms, 50) / percentile(floor_ms, 50),
        None, None, {"cases": sizes.report_cases, "samples": n, "advice_returned": count, "max_ms": max(lib_ms),
                     "floor_max_ms": max(floor_ms)},
    )  # fmt: skip


def _floor(conn: Any, m: str, since: Any, until: Any, compiled: Any) -> tuple[int, float | None]:
    """The same reads by hand: counts by state in SQL, lead times and deadline outcomes in Python."""
    _raw(conn, f"SELECT route, state, count(*) FROM cases WHERE organisation = {m} GROUP BY route, state", ("local",))
    ended = _raw(conn, f"SELECT c.route, c.opened_at, t.occurred_at FROM case_transitions t JOIN cases c ON "
                       f"c.id = t.case_id WHERE t.event = 'return_advice' AND t.occurred_at >= {m} AND "
                       f"t.occurred_at < {m} AND c.organisation = {m}", (since, until, "local"))  # fmt: skip
    deadlines = _raw(conn, f"SELECT d.state, d.due_at, d.stopped_at FROM deadlines d JOIN cases c ON c.id = d.case_id "
                           f"WHERE c.organisation = {m}", ("local",))  # fmt: skip
    out = compiled.codec.ts_out
    days = [(out(e) - out(o)).total_seconds() / 86400 for _, o, e in ended]
    met = sum(1 for state, _, _ in deadlines if state == "met")
    _ = met / max(len(deadlines), 1)
    return len(ended), (statistics.median(days) if days else None)


def _connect(url: str) -> Any:
    if url.startswith("sqlite"):
        return sqlite3.connect(sqlite_path(url))
    return psycopg.connect(url)


def _raw(conn: Any, sql: str, params: tuple[Any, ...]) -> list[Any]:
    rows = conn.execute(sql, params).fetchall()
    conn.rollback()
    return list(rows)
