"""The cost of the command line's progress bar (issue 18), on its own:
``python bench/progress.py [--cases 400,2000] [--pg URL]``.

Two parts. ``audit verify`` with the bar against without it on stores of the reads section's mix
(:func:`bench.verify.progress_overhead`: CPU time, rounds interleaved; ``python -m bench --only
verify`` reports the same figure at its own size). Then the bar's parts measured apart: one call
of the callback, setting the bar up and taking it down, and the CPU that rich's drawing thread
takes while the command waits (on the database, say).
"""

from __future__ import annotations

import argparse
import importlib
import io
import sys
import threading
import time
from pathlib import Path


def parts() -> list[str]:
    from rich.console import Console

    from second_opinion.cli.progress import REFRESH, progress_bar

    def console() -> Console:
        return Console(file=io.StringIO(), force_terminal=True, width=120)

    lines = []
    with progress_bar("verifying", "cases", console=console()) as progress:
        assert progress is not None
        n = 100_000
        start = time.perf_counter()
        for i in range(n):
            progress(i, n)
        lines.append(f"one call of the callback: {1e6 * (time.perf_counter() - start) / n:.2f} µs")
    start = time.perf_counter()
    for _ in range(20):
        with progress_bar("verifying", "cases", console=console()) as progress:
            assert progress is not None
            progress(1, 1)
    lines.append(f"setting the bar up and taking it down: {1e3 * (time.perf_counter() - start) / 20:.2f} ms")
    waited = 3.0
    with progress_bar("verifying", "cases", console=console()) as progress:
        assert progress is not None
        progress(1, 10)
        cpu = time.process_time()
        threading.Event().wait(waited)  # the main thread idle, as on a database; only the drawing thread runs
        used = time.process_time() - cpu
    lines.append(f"the drawing thread ({REFRESH} frames/s): {1e3 * used:.1f} ms CPU in {waited:.0f} s, "
                 f"{100 * used / waited:.2f}% of one core")  # fmt: skip
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cases", default="400,2000", help="store sizes in cases, comma-separated")
    parser.add_argument("--pg", default=None, help="PostgreSQL URL, or '' for SQLite only")
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds (the median is kept)")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: the checkout is not on the path
    config, databases, reads, verify, workload = (
        importlib.import_module(f"bench.{m}") for m in ("config", "databases", "reads", "verify", "workload")
    )
    from second_opinion import connect
    from workflow import FixedClock

    pg = config.DEFAULT_PG if args.pg is None else args.pg
    for backend in ["sqlite", "postgresql"] if pg else ["sqlite"]:
        for cases in map(int, args.cases.split(",")):
            with databases.database(backend, pg) as url:
                reads.seed_mix(url, cases)
                with connect(url, clock=FixedClock(workload.NOW)) as service:
                    f = verify.progress_overhead(service, backend, args.rounds)
            d = f.detail
            print(f"{backend:<10} {d['records']:>7,} records: CPU {f.floor:.3f} s without, {f.value:.3f} s with the "
                  f"bar, ratio {f.ratio:.3f}; wall ratio {d['wall_ratio']:.3f}", flush=True)  # fmt: skip
    for line in parts():
        print(line)


if __name__ == "__main__":
    main()
