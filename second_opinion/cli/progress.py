"""The progress bar of long commands (``audit verify``, ``audit export``, ``deadlines recompute``,
``init``, the worker's catch-up): the service layer reports through
:class:`~workflow.service.progress.Progress`, and this draws it with rich, on stderr.

Only for a person watching: the bar is drawn when stderr is a terminal and the command was not
asked for ``--json``; otherwise :func:`progress_bar` gives None and the command runs and prints
exactly as it would without it (``tests/cli/test_progress.py`` compares the bytes). The bar is
transient: it is erased when the work ends, so the terminal keeps the command's own lines only.
rich's ``Progress`` is used rather than a hand-written bar because it already redraws at a fixed
rate in a thread of its own (the callback only stores numbers) and measures the rate.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from workflow.service.progress import Progress

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import ProgressColumn, Task
    from rich.text import Text


def stderr_is_terminal() -> bool:
    """``sys.stderr.isatty()``, not rich's own test, which also says yes for a pipe when
    ``FORCE_COLOR`` or ``TTY_COMPATIBLE`` is set (as on many CI runners)."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced by an object without it, or closed
        return False


REFRESH = 4
"""Frames a second."""


@contextmanager
def progress_bar(
    label: str, unit: str, as_json: bool = False, console: Console | None = None
) -> Iterator[Progress | None]:
    """A :class:`Progress` that draws ``label``, a bar, ``done/total unit`` and the rate on stderr
    for the duration of the block. None (nothing drawn, nothing loaded) under ``--json``, which
    a script asked for, or when stderr is not a terminal; ``console`` (tests) is drawn on whatever
    it writes to."""
    if as_json or (console is None and not stderr_is_terminal()):
        yield None
        return
    console = console or terminal()
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn(unit),
               rate_column(unit), TimeElapsedColumn())  # fmt: skip
    # redirect_*=False: stdout is the command's (it may be a pipe to another program) and is left alone.
    # 4 frames a second (rich's default is 10): enough for a count and a rate, and the drawing
    # thread then costs about half a percent of a core (docs/benchmarks.md, issue 18)
    with Bar(*columns, console=console, transient=True, redirect_stdout=False, redirect_stderr=False,
             refresh_per_second=REFRESH) as bar:  # fmt: skip
        task = bar.add_task(label, total=None)

        def advance(done: int, total: int | None, /) -> None:
            bar.update(task, completed=done, total=total)

        yield advance


def terminal() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def rate_column(unit: str) -> ProgressColumn:
    """``1,234 cases/s`` (rich's own speed column counts bytes)."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text("" if speed is None else f"{speed:,.0f} {unit}/s")

    return Rate()
