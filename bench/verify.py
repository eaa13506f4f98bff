"""``audit verify`` throughput against SHA-256 alone over exactly the bytes it hashes.

``CaseService.verify()`` (what ``second-opinion audit verify`` runs) reads every case, its audit
records, transitions and deadlines, recomputes each record's hash, replays state, facts and
deadlines; the floor hashes the canonical bytes of the same records with ``hashlib`` and nothing
else. The records are the realistic mix of :mod:`bench.reads`.

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
from workflow.audit.chain import compute_hash, hash_input

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
                records = service.export()
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
        # the hashing part alone (issue 17): each record's hash input built and hashed, as verify does,
        # against hashlib over the same bytes; the rest of verify (reads, replay) is the figure above
        hashing = len(records) / min(seconds(lambda: [compute_hash(r) for r in records]) for _ in range(3))  # noqa: B023
        encodings = sorted({r.encoding for r in records})
        figures.append(Figure(
            f"verify_hash.{backend}", f"audit record hashes of {len(records):,} records (encoding {encodings}), "
            f"{backend}", "records/s", hashing, floor, floor / hashing, "≤3x (issue 17)", floor / hashing <= 3,
            {"records": len(records), "encodings": encodings, "bytes_mean": sum(map(len, payloads)) / len(payloads)},
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
