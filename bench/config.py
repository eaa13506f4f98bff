"""How big each run is (full, quick, smoke) and the goals the figures are held against."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_PG = os.environ.get("SECOND_OPINION_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
SECTIONS = ("fire", "concurrency", "sweep", "reads", "verify", "workers", "api", "startup", "reports", "worklists",
            "log", "observability")


@dataclass(frozen=True)
class Sizes:
    mode: str
    fire_ops: int
    """Commands per round of the fire/open comparison (five rounds, the median is kept)."""
    client_ops: int
    """Commands per client process in the 1/2/4-client throughput run."""
    sweep_due: int
    sweep_open: tuple[int, ...]
    """Open (running, not due) deadlines stored beside the due ones, smallest first."""
    read_records: int
    """Audit records stored for the history and overdue queries."""
    history_samples: int
    overdue_samples: int
    verify_cases: int
    worker_due: int
    api_requests: int
    """Requests per client thread (reads; fires are a quarter of it)."""
    api_clients: int = 4
    startup_runs: int = 5
    """Fresh processes of ``show`` and of the floor each (interleaved, the medians are kept)."""
    report_cases: int = 100_000
    """Cases a report is computed over (bench/reports.py)."""
    report_samples: int = 5
    worklist_cases: tuple[int, ...] = (10_000, 100_000)
    """Cases stored for the work-list reads (board, overdue page, a page deep in the list), smallest first."""
    worklist_samples: int = 200
    log_records: tuple[int, ...] = (10_000, 1_000_000)
    """Records in the transparency log for its head and proofs (issue 17), smallest first."""
    log_samples: int = 200


FULL = Sizes("full", 2000, 1500, 1000, (10_000, 100_000, 1_000_000), 1_000_000, 1000, 20, 5000, 20_000, 1500,
             startup_runs=11)
QUICK = Sizes("quick", 100, 60, 200, (1_000, 10_000), 40_000, 200, 10, 400, 1000, 120, startup_runs=5,
              report_cases=2_000, worklist_cases=(1_000, 5_000), worklist_samples=60, log_records=(1_000, 20_000),
              log_samples=60)  # fmt: skip
SMOKE = Sizes("smoke", 20, 20, 20, (200, 1000), 2000, 20, 3, 40, 200, 20, startup_runs=3, report_cases=200,
              report_samples=2, worklist_cases=(200,), worklist_samples=10, log_records=(100, 1_000),
              log_samples=10)  # fmt: skip
MODES = {s.mode: s for s in (FULL, QUICK, SMOKE)}

# The goals of issue 7, as ratios of the library's cost to the floor's (lower is better).
FIRE_GOAL = {"sqlite": 3.0, "postgresql": 2.0}
STARTUP_GOAL = 1.5
"""``second-opinion show CASE`` may take at most this factor of ``python -c "import sqlalchemy"``
(issue 13: a read command imports only what it uses)."""
SWEEP_FLAT = 1.5
""""Flat": processing the due deadlines may take at most this factor longer among the most open
deadlines than among the fewest (100x as many rows in a full run)."""
