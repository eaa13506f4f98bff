"""What the work-list pages cost on PostgreSQL statement by statement, to rerun the checks behind
docs/benchmarks.md ("Issue 16: work lists at 100k cases"):
``python -m bench.worklist_plans [--cases N] [--pg URL]``.

It seeds the work-list store of :mod:`bench.worklists` (trails included) into a throw-away schema
and prints:

1. the plan of ``deadlines_for_cases`` (``case_id = ANY(:case_ids)``, the deadlines of a page's 50
   cases) under ``plan_cache_mode`` ``force_custom_plan`` and ``force_generic_plan``: the generic
   plan is the one psycopg's automatic server-side prepare (``prepare_threshold``) comes to, and
   cannot see how many ids are bound;
2. that statement's median time through the driver, prepared from the first run and never
   prepared, interleaved;
3. the plan of a page half-way down the list by opening, with the keyset written as
   ``key > k OR (key = k AND id > i)`` (before) and as a row value ``(key, id) > (k, i)`` (now):
   "Rows Removed by Filter" is what the index did not skip;
4. the library's own list page and overdue page (``AccessService.worklist``, 60 of each), every
   statement they send timed at the driver (median and worst): what a page's time is made of, and
   whether one statement stands out or the machine's load falls on all of them alike.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import time
from collections.abc import Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from second_opinion import connect
from workflow import FixedClock
from workflow.access.rules import Principal
from workflow.listing import Position, encode_cursor
from workflow.service.access import AccessService
from workflow.service.tokens import TokenService
from workflow.service.worklists import WorkListQuery

from .config import DEFAULT_PG
from .databases import pg_analyze, pg_db
from .seed import Cloner, clones, compiled_for, insert
from .worklists import MIX, PAGE
from .workload import NOW

RUNS = 200


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.worklist_plans", description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", type=int, default=100_000, help="cases seeded (default 100000)")
    p.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL server (a schema is made and dropped)")
    args = p.parse_args(argv)
    if not 100 <= args.cases <= 1_000_000:
        p.error("--cases must be between 100 and 1000000")
    with pg_db(args.pg) as url:
        compiled = compiled_for(url)
        insert(url, clones([(Cloner(make(), compiled), weight) for make, weight in MIX], "w", args.cases))
        pg_analyze(url)
        with psycopg.connect(url, autocommit=True) as conn:
            middle = "SELECT organisation, opened_at, id FROM cases ORDER BY opened_at, id LIMIT 1 OFFSET %s"
            row = conn.execute(middle, (args.cases // 2,)).fetchone()
            assert row is not None
            org, at, case_id = row
            page = ("SELECT id FROM cases WHERE organisation = %s AND (opened_at, id) > (%s, %s) "
                    "ORDER BY opened_at, id LIMIT %s")
            ids = [r[0] for r in conn.execute(page, (org, at, case_id, PAGE + 1))]
            deadlines = compiled.sql["deadlines_for_cases"]
            print(f"{args.cases:,} cases; deadlines_for_cases of {len(ids)} cases:\n  {' '.join(deadlines.split())}\n")
            _deadline_plans(conn, deadlines, ids)
            _deadline_times(url, deadlines, ids)
            _page_plans(conn, org, at, case_id)
        _library_statements(url, org, at, case_id)
    return 0


def _explain(conn: Any, sql: str, params: Any = None) -> None:
    """The plan as run, values bound on the client (a utility statement takes no server parameters)."""
    for (line,) in psycopg.ClientCursor(conn).execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params).fetchall():
        print("    " + line)


def _deadline_plans(conn: Any, sql: str, ids: list[str]) -> None:
    prepared = sql.replace("%(case_ids)s", "$1")
    for mode in ("force_custom_plan", "force_generic_plan"):
        conn.execute(f"SET plan_cache_mode = {mode}")
        conn.execute("DEALLOCATE ALL")
        conn.execute(f"PREPARE deadlines_for_cases (varchar[]) AS {prepared}")
        print(f"  plan, {mode}:")
        _explain(conn, "EXECUTE deadlines_for_cases (%s::varchar[])", (ids,))
    conn.execute("RESET plan_cache_mode")
    conn.execute("DEALLOCATE ALL")


def _deadline_times(url: str, sql: str, ids: list[str]) -> None:
    """Median ms of the statement with its rows fetched, prepared at once (psycopg
    ``prepare_threshold=0``: PostgreSQL moves to the generic plan after five runs) or never."""
    conns = {
        "prepared": psycopg.connect(url, prepare_threshold=0),
        "not prepared": psycopg.connect(url, prepare_threshold=None),
    }
    try:
        times: dict[str, list[float]] = {name: [] for name in conns}
        for _ in range(RUNS):
            for name, conn in conns.items():
                start = time.perf_counter()
                conn.execute(sql, {"case_ids": ids}).fetchall()
                times[name].append((time.perf_counter() - start) * 1e3)
                conn.rollback()
        for name, ms in times.items():
            print(f"  {name}: median {statistics.median(ms):.3f} ms, max {max(ms):.2f} ms over {RUNS} runs")
    finally:
        for conn in conns.values():
            conn.close()


def _page_plans(conn: Any, org: str, at: Any, case_id: str) -> None:
    head = "SELECT * FROM cases WHERE organisation = %(org)s AND "
    tail = f" ORDER BY opened_at, id LIMIT {PAGE + 1}"
    forms = {
        "OR (before)": "(opened_at > %(at)s OR (opened_at = %(at)s AND id > %(id)s))",
        "row value (now)": "(opened_at, id) > (%(at)s, %(id)s)",
    }
    for name, keyset in forms.items():
        print(f"\n  a page half-way down the list, keyset as {name}:")
        _explain(conn, head + keyset + tail, {"org": org, "at": at, "id": case_id})



@contextmanager
def _timed_statements() -> Any:
    """Every statement psycopg's cursors send while inside, with its milliseconds, by its first words."""
    times: dict[str, list[float]] = collections.defaultdict(list)
    originals = {name: getattr(psycopg.Cursor, name) for name in ("execute", "executemany")}

    def timer(original: Any) -> Any:
        def timed(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(self, query, *args, **kwargs)
            finally:
                times[" ".join(str(query).split())[:90]].append((time.perf_counter() - start) * 1e3)

        return timed

    for name, original in originals.items():
        setattr(psycopg.Cursor, name, timer(original))
    try:
        yield times
    finally:
        for name, original in originals.items():
            setattr(psycopg.Cursor, name, original)


def _library_statements(url: str, org: str, at: Any, case_id: str, pages: int = 60) -> None:
    with connect(url, clock=FixedClock(NOW)) as service:
        _, token = TokenService(service.runtime).create("desk-bench", "coordinator", org)
        desk, access = Principal(token, client="127.0.0.1"), AccessService(service.runtime)
        cursor = encode_cursor(Position(at, case_id), WorkListQuery().fingerprint())
        queries = {"list page": WorkListQuery(limit=PAGE, cursor=cursor),
                   "overdue page": WorkListQuery(overdue=True, sort="due", limit=PAGE)}  # fmt: skip
        for name, query in queries.items():
            access.worklist(desk, query)  # warm-up
            with _timed_statements() as times:
                totals = []
                for _ in range(pages):
                    start = time.perf_counter()
                    access.worklist(desk, query)
                    totals.append((time.perf_counter() - start) * 1e3)
            print(f"\n  the library's {name}: median {statistics.median(totals):.2f} ms, worst {max(totals):.2f} ms "
                  f"over {pages}; its statements (median, worst, count):")  # fmt: skip
            for sql, ms in sorted(times.items(), key=lambda kv: -sum(kv[1])):
                print(f"    {statistics.median(ms):7.3f} {max(ms):8.2f} {len(ms):4d}  {sql}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
