"""1, 2 and 4 ``second-opinion worker --once`` processes on one PostgreSQL database over the
same number of due deadlines: no breach may be recorded twice or not at all, and the time.

Each run gets a fresh schema of due cases (full clones, see :mod:`bench.seed`); the processes
are started as users start them (``python -m second_opinion worker --once --db URL``, the clock
pinned by ``SECOND_OPINION_CLOCK``, which the worker obeys only with ``--allow-clock-override``),
and the breach records are counted per case in the database.
A run's time is from starting the processes to the last one exiting: process start-up, the
sweep, and the delivery of every notification (to the log) included.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any

import psycopg

from workflow.clock import utc_iso

from .config import Sizes
from .databases import pg_analyze, pg_db
from .measure import busy_share, machine_ticks
from .report import Figure
from .seed import Cloner, clones, compiled_for, insert
from .workload import NOW, referred_overdue

WORKERS = (1, 2, 4)


def run(sizes: Sizes, pg: str) -> list[Figure]:
    figures = []
    first: float | None = None
    for n in WORKERS:
        with pg_db(pg) as url:
            insert(url, clones([(Cloner(referred_overdue(), compiled_for(url)), 1)], "w", sizes.worker_due))
            pg_analyze(url)
            ticks = machine_ticks()
            elapsed, swept, cpu = _run_workers(url, n)
            busy = busy_share(ticks, machine_ticks())
            found = count(url, sizes.worker_due)
        first = first or elapsed
        figures.append(Figure(
            f"workers.postgresql.{n}", f"{n} worker process(es) over {sizes.worker_due:,} due deadlines, PostgreSQL",
            "s", elapsed, first, elapsed / first, "0 dup, 0 lost", found["duplicates"] == found["losses"] == 0,
            {**found, "swept_per_process": swept, "due": sizes.worker_due, "cases_per_s": sizes.worker_due / elapsed,
             "workers_cpu_s": cpu, "machine_cpu_busy": busy},
        ))  # fmt: skip
    return figures


def _run_workers(url: str, n: int) -> tuple[float, list[int], float]:
    """Wall time, cases swept by each process, and the CPU seconds the processes used."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECOND_OPINION_")}
    env["SECOND_OPINION_CLOCK"] = utc_iso(NOW)
    with tempfile.TemporaryDirectory(prefix="so-bench-workers-") as tmp:
        logs = [(open(f"{tmp}/{i}.out", "w+"), open(f"{tmp}/{i}.err", "w+")) for i in range(n)]  # noqa: SIM115
        cpu_before, start = _children_cpu(), time.perf_counter()
        argv = [sys.executable, "-m", "second_opinion", "worker", "--once", "--allow-clock-override", "--db", url]
        procs = [subprocess.Popen(argv, env=env, stdout=out, stderr=err, text=True) for out, err in logs]
        codes = [p.wait(timeout=3600) for p in procs]
        elapsed, cpu = time.perf_counter() - start, _children_cpu() - cpu_before
        outputs = []
        for out, err in logs:
            out.seek(0)
            err.seek(0)
            outputs.append((out.read(), err.read()))
            out.close()
            err.close()
    if any(codes):
        raise RuntimeError(f"worker exit codes {codes}: {[e[-2000:] for _, e in outputs]}")
    swept = [int(m.group(1)) if (m := re.search(r"swept (\d+) cases", o)) else -1 for o, _ in outputs]
    return elapsed, swept, cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def count(url: str, due: int) -> dict[str, Any]:
    """Breach and reminder records per case, straight from the audit table."""
    with psycopg.connect(url) as conn:
        per_case: dict[str, dict[str, int]] = {}
        for event, case, n in conn.execute(
            "SELECT event, case_id, count(*) FROM audit_records "
            "WHERE event IN ('deadline_breached', 'deadline_reminder') GROUP BY event, case_id"
        ).fetchall():
            per_case.setdefault(event, {})[case] = n
        outbox = conn.execute("SELECT count(*), count(*) FILTER (WHERE status = 'delivered') FROM outbox").fetchone()
    breaches, reminders = per_case.get("deadline_breached", {}), per_case.get("deadline_reminder", {})
    duplicates = sum(n - 1 for n in breaches.values()) + sum(n - 1 for n in reminders.values())
    losses = (due - len(breaches)) + (due - len(reminders))
    return {"duplicates": duplicates, "losses": losses, "breach_records": sum(breaches.values()),
            "reminder_records": sum(reminders.values()), "outbox": outbox[0] if outbox else 0,
            "delivered": outbox[1] if outbox else 0}  # fmt: skip
