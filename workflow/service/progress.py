"""Progress of long work, reported to whoever wants to show it.

The service layer knows nothing of terminals: a long operation (``audit verify``, ``audit
export``, ``deadlines recompute``, the schema migrations of ``init``, the worker's catch-up sweep)
takes an optional :class:`Progress` and calls it with how much is done and, when it is known in
advance, how much there is. The command line turns that into a bar on stderr
(:mod:`second_opinion.cli.progress`); an embedding program can log it, or pass nothing.

It is called per batch or per transaction, never per record of a large set, so that reporting
costs nothing next to the work (``bench/progress.py`` measures it on ``audit verify``:
docs/benchmarks.md).
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Told ``done`` units of ``total`` are finished (``total`` None: not known in advance).

    ``done`` only grows; the last call of an operation that ran to its end has ``done`` equal to
    the number of units it handled. The callback must not raise: an exception from it ends the
    operation as any other would (a write that was not committed is rolled back)."""

    def __call__(self, done: int, total: int | None, /) -> None: ...


def tell(progress: Progress | None, done: int, total: int | None) -> None:
    """Call ``progress`` if there is one: every call site stays one line."""
    if progress is not None:
        progress(done, total)


EXPORT_STEP = 1000
"""Records :meth:`~workflow.service.views.Views.export` decodes between two reports."""
