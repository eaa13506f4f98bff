"""``audit verify`` throughput against SHA-256 alone over exactly the bytes it hashes.

``CaseService.verify()`` (what ``second-opinion audit verify`` runs) reads every case, its audit
records, transitions and deadlines, recomputes each record's hash, replays state, facts and
deadlines; the floor hashes the canonical bytes of the same records with ``hashlib`` and nothing
else. The hashing part (SHA-256 over each record's stored body), the check of the bodies against
the columns, and the rebuilding of hash inputs from the columns (what records without a body
need) are timed apart against the same floor. The records are the realistic mix of :mod:`bench.reads`.

Also the cost of the progress bar (issue 18): ``verify`` with the command line's bar drawing on a
terminal (rich, forced onto a buffer) against ``verify`` with none, rounds interleaved.
"""

from __future__ import annotations

import io
import statistics
import time

from rich.console import Console

from second_opinion import CaseService, connect
from second_opinion.cli.progress import progress_bar
from workflow import FixedClock
from workflow.audit.chain import body_problem, compute_hash, hash_input, stored_hash

from .config import Sizes
from .databases import database
from .floors import hashlib_rate
from .measure import seconds
from .reads import seed_mix
from .report import Figure
from .workload import NOW


def run(sizes: Sizes, backends: list[str], pg: str) -> list[Figure]:
    figures = []
    for backend in backends:
        with database(backend, pg) as url:
            seed_mix(url, sizes.verify_cases)
            with connect(url, clock=FixedClock(NOW)) as service:
                # as verify reads them (the export leaves the stored bodies out)
                case_ids = sorted({r.case_id for r in service.export()})
                with service.unit_of_work(False) as uow:
                    by_case = uow.audit.for_cases(case_ids)
                records = sorted((r for c in case_ids for r in by_case.of(c)), key=lambda r: r.sequence or 0)
                payloads = [hash_input(r) for r in records]
                reports = []
                elapsed = seconds(lambda: reports.append(service.verify()))  # noqa: B023
                overhead = progress_overhead(service, backend)
        (report,) = reports
        if not report.ok or report.records != len(payloads):
            raise RuntimeError(f"verify: ok={report.ok}, {report.records} records of {len(payloads)}")
        library, floor = report.records / elapsed, hashlib_rate(payloads)
        figures.append(Figure(
            f"verify.{backend}", f"audit verify of {report.records:,} records ({report.cases:,} cases), {backend}",
            "records/s", library, floor, floor / library, None, None,
            {"records": report.records, "cases": report.cases, "seconds": elapsed, "ok": report.ok},
        ))  # fmt: skip
        # the parts of checking a record (issue 17), each against hashlib over the same bytes: the
        # hashing part (the stored body hashed, as verify does), the body checked against the
        # columns, and, for comparison, the hash input rebuilt from the columns (records before 0017)
        if any(r.body is None or r.body.encode() != p for r, p in zip(records, payloads, strict=True)):
            raise RuntimeError("verify: a record's stored body is not its hash input")
        parts = (
            ("verify_hash", "audit record hashes over the stored bodies", stored_hash, "≤3x (issue 17)"),
            ("verify_body", "stored bodies checked against the columns", body_problem, None),
            ("verify_rebuild", "hash inputs rebuilt from the columns (records before revision 0017)",
             compute_hash, None),
        )  # fmt: skip
        for name, what, check, goal in parts:
            rate = len(records) / min(seconds(lambda: [check(r) for r in records]) for _ in range(3))  # noqa: B023
            figures.append(Figure(
                f"{name}.{backend}", f"{what}, {len(records):,} records, {backend}", "records/s", rate, floor,
                floor / rate, goal, None if goal is None else floor / rate <= 3,
                {"records": len(records), "encodings": sorted({r.encoding for r in records}),
                 "bytes_mean": sum(map(len, payloads)) / len(payloads)},
            ))  # fmt: skip
        figures.append(overhead)
    return figures


def progress_overhead(service: CaseService, backend: str, rounds: int = 7) -> Figure:
    """``verify`` with the bar over ``verify`` without it, on the same store: the median of
    ``rounds`` interleaved pairs, so that load from elsewhere falls on both. Counted in CPU time of
    this process (all its threads, rich's drawing thread too), which a loaded machine disturbs far
    less than wall time; the wall times are in the detail."""
    cpu: tuple[list[float], list[float]] = ([], [])
    wall: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        for i, run in enumerate((lambda: service.verify(), lambda: verify_with_bar(service))):
            start_cpu, start = time.process_time(), time.perf_counter()
            run()
            cpu[i].append(time.process_time() - start_cpu)
            wall[i].append(time.perf_counter() - start)
    checked = service.verify()
    without, with_bar = statistics.median(cpu[0]), statistics.median(cpu[1])
    return Figure(
        f"verify_progress.{backend}", f"audit verify with the progress bar, {checked.records:,} records, {backend}",
        "CPU s", with_bar, without, with_bar / without, "≤1.05 (issue 18)", with_bar / without <= 1.05,
        {"records": checked.records, "cases": checked.cases, "rounds": rounds, "cpu_without_s": cpu[0],
         "cpu_with_s": cpu[1], "wall_without_s": wall[0], "wall_with_s": wall[1],
         "wall_ratio": statistics.median(wall[1]) / statistics.median(wall[0])},
    )  # fmt: skip


def verify_with_bar(service: CaseService) -> None:
    """As ``audit verify`` on a terminal: rich draws (10 times a second, in its own thread) on a
    console that believes it is one."""
    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    with progress_bar("verifying", "cases", console=console) as progress:
        service.verify(progress=progress)
