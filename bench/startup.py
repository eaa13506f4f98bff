"""How long the command line takes to answer: ``second-opinion show CASE`` as a fresh process
against a fresh process that only imports SQLAlchemy, the least any command reading the database
must load.

A read command that imported the HTTP stack, the migrations or the scheduler would pay for them
on every call; the ratio shows it. Both are started the same way (``python -m second_opinion
show CASE --db URL`` and ``python -c "import sqlalchemy"``, the same interpreter, the same
environment, the same bytecode cache), in interleaved rounds so a burst of load from elsewhere
falls on both; the medians are kept. The database is a SQLite file initialised by the migrations, holding one case.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

from second_opinion import connect
from workflow import FixedClock

from .config import STARTUP_GOAL, Sizes
from .databases import sqlite_db
from .report import Figure
from .workload import DESK, PROVIDER, T0

FLOOR = [sys.executable, "-c", "import sqlalchemy"]


def environment(cache: str) -> dict[str, str]:
    """The caller's environment without the settings of second-opinion (the command reads the
    database named by ``--db``, with no key, closures or webhook to load), and with a bytecode
    cache of its own in ``cache``: an installed package has its modules compiled, so the warm-up
    run compiles them for both sides even where ``PYTHONDONTWRITEBYTECODE`` is set, and nothing is
    written into the checkout."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("SECOND_OPINION_") and name != "PYTHONDONTWRITEBYTECODE"}  # fmt: skip
    env["PYTHONPYCACHEPREFIX"] = cache
    return env


def elapsed_ms(argv: Sequence[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) milliseconds of one run of ``argv``. The CPU time does not
    grow when other processes compete for the cores; the wall time, what a person waits, does."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=120)
    wall = (time.perf_counter() - start) * 1e3
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"startup: {' '.join(argv)} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1e3
    return wall, cpu


def run(sizes: Sizes, backends: list[str], pg: str) -> list[Figure]:
    with sqlite_db("startup") as url, tempfile.TemporaryDirectory(prefix="so-bench-pyc-") as cache:
        env = environment(cache)
        with connect(url, clock=FixedClock(T0)) as service:
            case_id = service.open_case("PX-BENCH", actor=DESK, provider=PROVIDER).case_id
        command = [sys.executable, "-m", "second_opinion", "show", case_id, "--db", url]
        elapsed_ms(command, env)  # warm-up: the page cache and the bytecode cache, for both
        elapsed_ms(FLOOR, env)
        shows, floors = [], []
        for _ in range(sizes.startup_runs):
            shows.append(elapsed_ms(command, env))
            floors.append(elapsed_ms(FLOOR, env))
    library, floor = statistics.median(w for w, _ in shows), statistics.median(w for w, _ in floors)
    library_cpu, floor_cpu = statistics.median(c for _, c in shows), statistics.median(c for _, c in floors)
    ratio = library / floor
    return [Figure(
        "startup.show", "second-opinion show CASE as a new process (SQLite, one case), median wall time",
        "ms", library, floor, ratio, f"≤{STARTUP_GOAL:g}x", ratio <= STARTUP_GOAL,
        {"runs": sizes.startup_runs, "floor": 'python -c "import sqlalchemy"',
         "show_wall_ms": [round(w, 1) for w, _ in shows], "floor_wall_ms": [round(w, 1) for w, _ in floors],
         "show_cpu_ms": round(library_cpu, 1), "floor_cpu_ms": round(floor_cpu, 1),
         "cpu_ratio": round(library_cpu / floor_cpu, 2)},
    )]  # fmt: skip
