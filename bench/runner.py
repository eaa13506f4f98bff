"""Runs the sections in order, prints the table, writes the JSON: ``python -m bench`` in a source
checkout (the harness is not part of the installed package)."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg

from . import (
    api,
    concurrency,
    fire,
    observability,
    reads,
    reports,
    startup,
    sweep,
    transparency,
    verify,
    workers,
    worklists,
)
from .config import DEFAULT_PG, FULL, MODES, SECTIONS, Sizes
from .databases import machine
from .report import Figure, table, write_json

Section = Callable[[Sizes, list[str], str], list[Figure]]
RUNS: dict[str, tuple[bool, Section]] = {
    # name: (needs PostgreSQL throughout, run)
    "fire": (False, fire.run),
    "concurrency": (True, lambda s, b, pg: concurrency.run(s, pg)),
    "sweep": (False, sweep.run),
    "reads": (False, reads.run),
    "verify": (False, verify.run),
    "workers": (True, lambda s, b, pg: workers.run(s, pg)),
    "api": (True, lambda s, b, pg: api.run(s, pg)),
    "startup": (False, startup.run),
    "reports": (False, reports.run),
    "worklists": (False, worklists.run),
    "log": (False, transparency.run),
    "observability": (False, observability.run),  # issue 18
}


def parser(prog: str) -> argparse.ArgumentParser:
    about = ("Benchmark second-opinion against floors measured in the same run (raw drivers, hashlib, a bare ASGI "
             "app); every figure is a ratio. See docs/benchmarks.md.")  # fmt: skip
    p = argparse.ArgumentParser(prog=prog, description=about)
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_const", const="quick", dest="mode", help="small sizes (under a minute)")
    size.add_argument("--smoke", action="store_const", const="smoke", dest="mode", help="tiny sizes, for the tests")
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    p.add_argument("--pg", metavar="URL", default=DEFAULT_PG,
                   help="PostgreSQL server (a schema per run, dropped after); '' runs SQLite only")  # fmt: skip
    p.add_argument("--only", metavar="SECTION", action="append", choices=SECTIONS,
                   help=f"run only this section (repeatable): {', '.join(SECTIONS)}")  # fmt: skip
    return p


def main(argv: Sequence[str], prog: str = "python -m bench") -> int:
    args = parser(prog).parse_args(argv)
    if args.pg:
        try:
            psycopg.connect(args.pg, connect_timeout=5).close()
        except psycopg.Error as exc:
            problem = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            print(f"error: PostgreSQL at {args.pg} does not answer ({problem}); --pg '' runs SQLite only",
                  file=sys.stderr)  # fmt: skip
            return 1
    sizes = MODES[args.mode] if args.mode else FULL
    backends = ["sqlite", "postgresql"] if args.pg else ["sqlite"]
    started, clock, load = datetime.now(UTC), time.perf_counter(), os.getloadavg()
    figures: list[Figure] = []
    durations: dict[str, float] = {}
    skipped = []
    for name in args.only or SECTIONS:
        needs_pg, section = RUNS[name]
        if needs_pg and not args.pg:
            skipped.append(name)
            continue
        begun = time.perf_counter()
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        found = section(sizes, backends, args.pg)
        durations[name] = round(time.perf_counter() - begun, 2)
        print(table(found), file=sys.stderr, flush=True)
        figures += found
    host = machine(args.pg or None)
    meta: dict[str, Any] = {
        "command": " ".join([prog, *map(shlex.quote, argv)]), "mode": sizes.mode, "started": started.isoformat(),
        "duration_s": round(time.perf_counter() - clock, 2), "section_durations_s": durations, "skipped": skipped,
        "machine": host, "sizes": sizes.__dict__,
        "load_average": {"start": [round(x, 2) for x in load], "end": [round(x, 2) for x in os.getloadavg()]},
    }  # fmt: skip
    print(table(figures))
    print(f"\n{sizes.mode} run, {meta['duration_s']} s; {host['cores']} cores, {host['cpu']}, "
          f"PostgreSQL {host['postgresql']}, SQLite {host['sqlite']}")  # fmt: skip
    if args.json:
        write_json(args.json, meta, figures)
    broken = [f.id for f in figures if f.id.startswith("workers.") and not f.met]
    if broken:
        print(f"error: duplicated or lost breaches in {', '.join(broken)}", file=sys.stderr)
    return 1 if broken else 0
