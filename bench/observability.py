"""What observability costs a command: ``fire`` with metrics and JSON logs on (the observer
``serve`` and ``worker`` run with: counters, a duration histogram, one JSON log line per command
rendered and written to /dev/null) against the same ``fire`` with the default no-op observer, on
the same database, in interleaved rounds. Tracing is not in it: it is off unless asked for, and
its cost is the exporter's."""

from __future__ import annotations

import logging
import os

from second_opinion.observability import Observability, Settings
from second_opinion.observability import logs as obs_logs
from workflow import CaseService

from .config import Sizes
from .databases import database
from .fire import Library
from .measure import ROUNDS, per_call_us
from .report import Figure

GOAL = 1.15
"""At most 15 % on a command: a JSON line and three label lookups against a transaction's milliseconds."""


def compare(url: str, n: int) -> tuple[float, float]:
    """(µs plain, µs observed) per fire, each the median of ROUNDS interleaved rounds of ``n``."""
    plain, observed = Library(url, n * ROUNDS), Library(url, n * ROUNDS)
    seen = Observability.start(Settings(log_format=obs_logs.JSON), metrics=True)
    observed.service = CaseService.on(seen.on(observed.service.runtime))
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    with open(os.devnull, "w") as sink:
        obs_logs.configure(obs_logs.JSON, stream=sink)
        try:
            lib, floor = per_call_us([observed.fire, plain.fire], n)  # observed first: no head start for it
        finally:
            for handler in list(root.handlers):
                root.removeHandler(handler)
            for handler in handlers:
                root.addHandler(handler)
            root.setLevel(level)
            plain.close()
            observed.close()
    return floor, lib


def run(sizes: Sizes, backends: list[str], pg: str) -> list[Figure]:
    figures = []
    for backend in backends:
        with database(backend, pg) as url:
            floor, observed = compare(url, sizes.fire_ops)
        figures.append(Figure(
            f"observed.fire.{backend}", f"fire with metrics and JSON logs vs without, on {backend}", "µs/op",
            observed, floor, observed / floor, f"≤{GOAL:g}x", observed / floor <= GOAL,
            {"ops_per_round": sizes.fire_ops, "rounds": ROUNDS},
        ))  # fmt: skip
    return figures
