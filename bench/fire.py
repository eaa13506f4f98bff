"""``fire`` and ``open`` through the library against the raw floor, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

from second_opinion import connect
from workflow import CaseService, SystemClock

from .config import FIRE_GOAL, Sizes
from .databases import database
from .floors import Raw
from .measure import ROUNDS, per_call_us
from .report import Figure
from .workload import DESK, PATH, PROVIDER


class Library:
    """The library doing what :class:`~bench.floors.Raw` does: cases walked along PATH, or opened."""

    def __init__(self, url: str, fires: int) -> None:
        # the system's time, as the floor dates its rows on the same database: a clock of its own
        # would fall behind the floor's last row, and the library refuses to record before it (ClockBehind)
        self.service: CaseService = connect(url, clock=SystemClock())
        cases = [self.service.open_case("PX-BENCH", actor=DESK, provider=PROVIDER).case_id
                 for _ in range(-(-fires // len(PATH)))]  # fmt: skip
        self.pending = [(case_id, step) for case_id in cases for step in reversed(PATH)]

    def fire(self) -> None:
        case_id, (event, actor, data) = self.pending.pop()
        self.service.fire(case_id, event, actor=actor, data=data)

    def open(self) -> None:
        self.service.open_case("PX-BENCH", actor=DESK, provider=PROVIDER)

    def close(self) -> None:
        self.service.close()


def compare(url: str, command: str, n: int) -> tuple[float, float, float]:
    """(floor µs, library µs, the floor without the required statements µs) per ``command``, each the
    median of ROUNDS interleaved rounds of ``n`` (:mod:`bench.floors`: what a command must do now)."""
    raw, bare = Raw(url), Raw(url, required=False)
    library = Library(url, n * ROUNDS if command == "fire" else 0)
    try:
        floor, lib, before = per_call_us([_method(raw, command), _method(library, command), _method(bare, command)], n)
        return floor, lib, before
    finally:
        raw.close()
        bare.close()
        library.close()


def _method(target: Raw | Library, command: str) -> Callable[[], None]:
    method: Callable[[], None] = getattr(target, command)
    return method


def run(sizes: Sizes, backends: list[str], pg: str) -> list[Figure]:
    figures = []
    for backend in backends:
        for command in ("fire", "open"):
            with database(backend, pg) as url:
                floor, library, before = compare(url, command, sizes.fire_ops)
            goal = FIRE_GOAL[backend]
            figures.append(Figure(
                f"{command}.{backend}", f"{command} on {backend} vs raw driver transaction", "µs/op", library, floor,
                library / floor, f"≤{goal:g}x", library / floor <= goal,
                {"ops_per_round": sizes.fire_ops, "rounds": ROUNDS, "floor_without_required_us": before,
                 "ratio_to_floor_without_required": library / before},
            ))  # fmt: skip
    return figures
