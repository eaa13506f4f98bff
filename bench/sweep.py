"""The sweep: time to handle the same number of due deadlines among more and more open ones.

One database per backend grows in steps: background cases (a case row and its running dossier
deadline, not due by NOW; written by :mod:`bench.seed` without audit trails, which the sweep
never reads) are added up to each size, then a fresh batch of due cases (full clones, trails
included), then ``DeadlineService.sweep()`` handles the batch, one case per call so that each
case is timed (the figure is their sum; the median per case is in the detail, being the less
disturbed by other load on the machine). Earlier batches stay behind as breached deadlines.
"Flat" means the time does not grow with the open deadlines.
"""

from __future__ import annotations

import time

from second_opinion import connect
from workflow import FixedClock
from workflow.service.deadlines import DeadlineService

from .config import SWEEP_FLAT, Sizes
from .databases import database, pg_analyze
from .measure import percentile
from .report import Figure
from .seed import Cloner, clones, compiled_for, insert
from .workload import NOW, referred_overdue, referred_running

WARM_UP = 10
"""Extra due cases in the first batch, swept before its clock starts (first-use costs)."""


def run(sizes: Sizes, backends: list[str], pg: str) -> list[Figure]:
    figures = []
    for backend in backends:
        with database(backend, pg) as url:
            times, p50 = _grow_and_sweep(url, sizes)
        smallest, largest = sizes.sweep_open[0], sizes.sweep_open[-1]
        growth = times[largest] / times[smallest]
        figures.append(Figure(
            f"sweep.{backend}", f"sweep of {sizes.sweep_due:,} due among {smallest:,} .. {largest:,} open, {backend}",
            "s", times[largest], times[smallest], growth, f"≤{SWEEP_FLAT:g}x", growth <= SWEEP_FLAT,
            {"due": sizes.sweep_due, "seconds_by_open": {str(k): v for k, v in times.items()},
             "p50_ms_per_case_by_open": {str(k): v for k, v in p50.items()},
             "p50_growth": p50[largest] / p50[smallest]},
        ))  # fmt: skip
    return figures


def _grow_and_sweep(url: str, sizes: Sizes) -> tuple[dict[int, float], dict[int, float]]:
    """Per size: seconds to sweep the due batch, and the median milliseconds per case."""
    compiled = compiled_for(url)
    background, due = Cloner(referred_running(), compiled), Cloner(referred_overdue(), compiled)
    stored, times, p50 = 0, {}, {}
    for step, size in enumerate(sizes.sweep_open):
        insert(url, clones([(background, 1)], f"o{step}", size - stored, trail=False))
        stored = size
        insert(url, clones([(due, 1)], f"d{step}", sizes.sweep_due + (WARM_UP if step == 0 else 0)))
        if not url.startswith("sqlite"):
            pg_analyze(url)
        with connect(url, clock=FixedClock(NOW)) as service:
            deadlines = DeadlineService(service.runtime)
            if step == 0:  # first-use costs (calendar caches, the pool's connection) are not the sweep's
                deadlines.sweep(limit=WARM_UP)
            with service.unit_of_work(False):
                pass
            latencies, breaches = _sweep_case_by_case(deadlines)
        if len(latencies) != sizes.sweep_due or breaches != sizes.sweep_due:
            raise RuntimeError(f"the sweep handled {len(latencies)} cases, {breaches} breaches, "
                               f"not the {sizes.sweep_due} due")  # fmt: skip
        times[size], p50[size] = sum(latencies), percentile(latencies, 50) * 1e3
    return times, p50


def _sweep_case_by_case(deadlines: DeadlineService) -> tuple[list[float], int]:
    """The sweep's own loop, one case per call so each is timed: (seconds per case, breaches)."""
    latencies: list[float] = []
    breaches = 0
    while True:
        start = time.perf_counter()
        report = deadlines.sweep(limit=1)
        elapsed = time.perf_counter() - start
        if not report.cases:  # nothing was due any more (this last look is not timed)
            return latencies, breaches
        latencies.append(elapsed)
        breaches += report.breaches
