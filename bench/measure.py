"""Timing helpers: median of rounds, percentiles, wall-clock sections."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

ROUNDS = 5


def per_call_us(fns: list[Callable[[], None]], n: int, rounds: int = ROUNDS) -> list[float]:
    """For each of ``fns``: the median over ``rounds`` of the mean microseconds per call, ``n``
    calls a round. The rounds are interleaved (a round of each in turn), so a burst of load from
    elsewhere on the machine falls on all of them rather than on one."""
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for fn, times in zip(fns, samples, strict=True):
            start = time.perf_counter()
            for _ in range(n):
                fn()
            times.append((time.perf_counter() - start) / n * 1e6)
    return [statistics.median(times) for times in samples]


def latencies_ms(fn: Callable[[], object], n: int) -> list[float]:
    """Milliseconds of each of ``n`` calls, after one untimed warm-up call."""
    fn()
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1e3)
    return out


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100): with 100 samples p99 is the second slowest."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine so far, all cores (Linux /proc/stat)."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return sum(fields) - idle, sum(fields)


def busy_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """How busy every core of the machine was between two :func:`machine_ticks` (0..1), whoever used it."""
    return (after[0] - before[0]) / max(1, after[1] - before[1])
