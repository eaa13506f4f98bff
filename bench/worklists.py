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
size carries its growth over the smallest size (``growth_from_N`` of the p95, ``growth_p50_from_N``
of the median: "flat" is about 1). Every size of a backend is measured in the same stretch of time,
its samples interleaved with the other sizes' (see :func:`run`).
"""

from __future__ import annotations

import sqlite3
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
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
from .measure import percentile
from .report import Figure
from .seed import Cloner, clones, compiled_for, insert
from .workload import NOW, handed_back_with_imaging, referred_overdue, referred_running

PAGE = 50
MIX = ((handed_back_with_imaging, 16), (referred_running, 3), (referred_overdue, 1))


Op = tuple[Callable[[], object], Callable[[], object]]
"""The library's call and the floor's, for one figure."""


def run(sizes: Sizes, backends: list[str], pg: str) -> list[Figure]:
    """Every size of a backend is seeded first, each in its own database, and the samples are
    then taken in rounds across sizes and figures (one call of each, in turn): a burst of load
    from elsewhere on the machine falls on every size alike, so the growth from the smallest size
    to the largest is the store's and not the machine's (:func:`bench.measure.per_call_us`)."""
    figures: list[Figure] = []
    for backend in backends:
        with ExitStack() as stack:
            ops: dict[int, dict[str, Op]] = {}
            records: dict[int, int] = {}
            overdue_rows: dict[int, int] = {}
            for cases in sizes.worklist_cases:
                url = stack.enter_context(database(backend, pg))
                compiled = compiled_for(url)
                insert(url, clones([(Cloner(make(), compiled), weight) for make, weight in MIX], "w", cases))
                if not url.startswith("sqlite"):
                    pg_analyze(url)
                records[cases] = _count(url, "audit_records")
                print(f"[bench] worklists: {backend}, {cases:,} cases, {records[cases]:,} audit records",
                      file=sys.stderr, flush=True)  # fmt: skip
                overdue_rows[cases], ops[cases] = _ops(stack, url, compiled, backend, cases)
            timed = _interleaved(ops, sizes.worklist_samples)
        smallest = sizes.worklist_cases[0]
        for cases, by_name in timed.items():
            for name, (lib_ms, floor_ms) in by_name.items():
                p95, floor95 = percentile(lib_ms, 95), percentile(floor_ms, 95)
                detail: dict[str, Any] = {
                    "p50_ms": percentile(lib_ms, 50), "floor_p50_ms": percentile(floor_ms, 50),
                    "samples": sizes.worklist_samples, "cases": cases, "audit_records": records[cases],
                    "overdue_on_page": overdue_rows[cases],
                }  # fmt: skip
                if cases != smallest:
                    first = timed[smallest][name][0]
                    detail[f"growth_from_{smallest}"] = p95 / percentile(first, 95)
                    detail[f"growth_p50_from_{smallest}"] = detail["p50_ms"] / percentile(first, 50)
                figures.append(Figure(
                    f"worklist.{name.replace(' ', '_')}.{backend}.{cases}",
                    f"work list {name} among {cases:,} cases, {backend}", "ms p95", p95, floor95, p95 / floor95,
                    None, None, detail,
                ))  # fmt: skip
    return figures


def _interleaved(ops: dict[int, dict[str, Op]], samples: int) -> dict[int, dict[str, tuple[list[float], list[float]]]]:
    """Milliseconds of ``samples`` calls of every library call and floor, after one untimed
    warm-up call each, taken round by round (every call once a round, the sizes' order
    alternating), so that each figure's samples are spread over the same stretch of time."""
    out = {cases: {name: ([], []) for name in by_name} for cases, by_name in ops.items()}
    for by_name in ops.values():
        for library, floor in by_name.values():
            library()
            floor()
    order = list(ops)
    for i in range(samples):
        for cases in order if i % 2 == 0 else order[::-1]:
            for name, (library, floor) in ops[cases].items():
                lib_ms, floor_ms = out[cases][name]
                lib_ms.append(_ms(library))
                floor_ms.append(_ms(floor))
    return out


def _ms(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def _count(url: str, table: str) -> int:
    raw = _connect(url)
    try:
        (n,) = raw.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(n)
    finally:
        raw.close()


def _ops(stack: ExitStack, url: str, compiled: Any, backend: str, cases: int) -> tuple[int, dict[str, Op]]:
    """The three figures' calls on one seeded database (its connections stay open in ``stack``),
    and the number of rows of the overdue page (50 unless the store has fewer overdue cases)."""
    m = "?" if backend == "sqlite" else "%s"
    raw = _connect(url)
    stack.callback(raw.close)
    service = stack.enter_context(connect(url, clock=FixedClock(NOW)))
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
    return len(overdue.rows), {
        "board": (lambda: access.case_counts(desk, WorkListQuery()),
                  lambda: _raw(raw, f"SELECT state, sum(n) FROM case_counts WHERE organisation = {m} AND n > 0 "
                                    "GROUP BY state", (org,))),
        "overdue page": (lambda: access.worklist(desk, WorkListQuery(overdue=True, sort="due", limit=PAGE)),
                         lambda: _page(raw, m, f"SELECT * FROM cases WHERE organisation = {m} AND due_at < {m} "
                                       f"ORDER BY due_at, id LIMIT {PAGE + 1}", (org, now))),
        "list page": (lambda: access.worklist(desk, WorkListQuery(limit=PAGE, cursor=cursor)),
                      lambda: _page(raw, m, f"SELECT * FROM cases WHERE organisation = {m} AND "
                                    f"(opened_at, id) > ({m}, {m}) "
                                    f"ORDER BY opened_at, id LIMIT {PAGE + 1}", (org, mid_at, mid.id))),
    }  # fmt: skip


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
