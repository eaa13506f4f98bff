"""Work lists (issue 16) as a server answers them, p95, against raw SQL doing the same reads in the
same run: the board (cases per state), the first page of the overdue list (by due moment, with
each case's deadlines for the working days late) and a page deep in the list by opening (keyset,
from a cursor), at each size of ``Sizes.worklist_cases``. The library's side is
``AccessService``: it checks the query, reads in one unit of work and appends the page's one
access record (the board writes none); the floor reads the same rows with the driver.

The store is the mix of :mod:`bench.reads` (of every 20 cases 16 handed back, 3 running, 1
overdue), all of one organisation, each case with its whole audit trail and transitions, as a
store this size has them (issue 16: "100k cases and 1M audit records"): the handed-back cases are
ones with imaging (12 records each, :func:`bench.workload.handed_back_with_imaging`), the referred
ones have 4, so 10.4 records a case: 1.04M at 100k cases. No list reads the trails; they are there
so that the tables and indexes beside the lists are as big as they would be. The audit records
stored are counted after seeding and reported in each figure's detail, and each figure at a larger
size carries its growth over the smallest size (``growth_from_N``: "flat" is about 1).
"""

from __future__ import annotations

import sqlite3
import sys
from typing import Any

import psycopg

from second_opinion import connect
from workflow import FixedClock
from workflow.access.rules import Principal
from workflow.listing import Position, encode_cursor
from workflow.service.access import AccessService
from workflow.service.tokens import TokenService
from workflow.service.worklists import WorkListQuery

from .config import Sizes
from .databases import database, pg_analyze, sqlite_path
from .measure import latencies_ms, percentile
from .report import Figure
from .seed import Cloner, clones, compiled_for, insert
from .workload import NOW, handed_back_with_imaging, referred_overdue, referred_running

PAGE = 50
MIX = ((handed_back_with_imaging, 16), (referred_running, 3), (referred_overdue, 1))


def run(sizes: Sizes, backends: list[str], pg: str) -> list[Figure]:
    figures: list[Figure] = []
    for backend in backends:
        smallest: dict[str, float] = {}
        for cases in sizes.worklist_cases:
            with database(backend, pg) as url:
                compiled = compiled_for(url)
                insert(url, clones([(Cloner(make(), compiled), weight) for make, weight in MIX], "w", cases))
                if not url.startswith("sqlite"):
                    pg_analyze(url)
                records = _count(url, "audit_records")
                print(f"[bench] worklists: {backend}, {cases:,} cases, {records:,} audit records", file=sys.stderr,
                      flush=True)  # fmt: skip
                found = _measure(url, compiled, backend, cases, sizes.worklist_samples)
            for figure in found:
                op = figure.id.split(".")[1]
                figure.detail["audit_records"] = records
                if op in smallest:
                    figure.detail[f"growth_from_{sizes.worklist_cases[0]}"] = figure.value / smallest[op]
                else:
                    smallest[op] = figure.value
            figures += found
    return figures


def _count(url: str, table: str) -> int:
    raw = _connect(url)
    try:
        (n,) = raw.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(n)
    finally:
        raw.close()


def _measure(url: str, compiled: Any, backend: str, cases: int, samples: int) -> list[Figure]:
    m = "?" if backend == "sqlite" else "%s"
    raw = _connect(url)
    try:
        with connect(url, clock=FixedClock(NOW)) as service:
            org = _org(raw)
            _, token = TokenService(service.runtime).create("desk-bench", "coordinator", org)
            desk = Principal(token, client="127.0.0.1")
            access = AccessService(service.runtime)
            now = compiled.ts_in(NOW)
            # a cursor half-way down the list, made as a page ending there would have made it
            middle = f"SELECT id FROM cases ORDER BY opened_at, id LIMIT 1 OFFSET {cases // 2}"
            (mid_id,) = raw.execute(middle).fetchone()
            raw.rollback()
            mid = service.case(mid_id)
            mid_at = compiled.ts_in(mid.opened_at)
            cursor = encode_cursor(Position(mid.opened_at, mid.id), WorkListQuery().fingerprint())
            overdue = access.worklist(desk, WorkListQuery(overdue=True, sort="due", limit=PAGE))
            ops = {
                "board": (lambda: access.case_counts(desk, WorkListQuery()),
                          lambda: _raw(raw, f"SELECT state, count(*) FROM cases WHERE organisation = {m} "
                                            "GROUP BY state", (org,))),
                "overdue page": (lambda: access.worklist(desk, WorkListQuery(overdue=True, sort="due", limit=PAGE)),
                                 lambda: _page(raw, m, f"SELECT * FROM cases WHERE organisation = {m} AND due_at < {m} "
                                               f"ORDER BY due_at, id LIMIT {PAGE + 1}", (org, now))),
                "list page": (lambda: access.worklist(desk, WorkListQuery(limit=PAGE, cursor=cursor)),
                              lambda: _page(raw, m, f"SELECT * FROM cases WHERE organisation = {m} AND "
                                            f"(opened_at, id) > ({m}, {m}) "
                                            f"ORDER BY opened_at, id LIMIT {PAGE + 1}", (org, mid_at, mid.id))),
            }  # fmt: skip
            figures = []
            for name, (library, floor) in ops.items():
                lib_ms, floor_ms = latencies_ms(library, samples), latencies_ms(floor, samples)
                p95, floor95 = percentile(lib_ms, 95), percentile(floor_ms, 95)
                figures.append(Figure(
                    f"worklist.{name.replace(' ', '_')}.{backend}.{cases}",
                    f"work list {name} among {cases:,} cases, {backend}", "ms p95", p95, floor95, p95 / floor95,
                    None, None, {"p50_ms": percentile(lib_ms, 50), "floor_p50_ms": percentile(floor_ms, 50),
                                 "samples": samples, "cases": cases, "overdue_on_page": len(overdue.rows)},
                ))  # fmt: skip
            return figures
    finally:
        raw.close()


def _connect(url: str) -> Any:
    if url.startswith("sqlite"):
        return sqlite3.connect(sqlite_path(url))
    return psycopg.connect(url)


def _raw(conn: Any, sql: str, params: tuple[Any, ...]) -> list[Any]:
    rows = conn.execute(sql, params).fetchall()
    conn.rollback()
    return list(rows)


def _org(raw: Any) -> str:
    found = raw.execute("SELECT organisation FROM cases LIMIT 1").fetchone()
    raw.rollback()
    return str(found[0])


def _page(raw: Any, m: str, sql: str, params: tuple[Any, ...]) -> list[Any]:
    """A page of case rows and the deadlines of its cases, as the library reads them."""
    rows = raw.execute(sql, params).fetchall()
    ids = [r[0] for r in rows]
    if ids:
        marks = ", ".join(m for _ in ids)
        raw.execute(f"SELECT * FROM deadlines WHERE case_id IN ({marks}) ORDER BY id", tuple(ids)).fetchall()
    raw.rollback()
    return list(rows)
