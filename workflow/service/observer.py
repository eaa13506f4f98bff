"""What the service layer tells an observer: commands and their outcomes, and the operations
(a command, a sweep, one case of a sweep) it runs, so that logs, metrics and traces
can be attached by the composition root without the service layer importing any of them.

The default, :data:`NO_OBSERVER`, does nothing: a program that embeds the library pays one
method call per command and loads no logging, metrics or tracing library. The composition root
(:mod:`second_opinion.observability`) puts a real one on the :class:`~workflow.service.runtime.Runtime`.

Everything passed here is bounded and carries no patient data: an event name is one of the
definition's (else ``"unknown"``), an outcome one of :data:`OUTCOMES`, a refusal the name of an
error class, a case id the library's own random id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Protocol, TypeVar

from workflow.cases.case import CASE_ID_SHAPE
from workflow.errors import SecondOpinionError

_T = TypeVar("_T")

ACCEPTED, REJECTED, DENIED, FAILED = "accepted", "rejected", "denied", "failed"
OUTCOMES = (ACCEPTED, REJECTED, DENIED, FAILED)
"""A command was accepted; refused as ``rejected`` or ``denied`` (the word its audit record
says, :attr:`~workflow.errors.SecondOpinionError.outcome`); or ``failed`` on anything else (a
storage error, a bug): then nothing was written."""
UNKNOWN_EVENT = "unknown"
"""The event label of a command naming no event of the definition: the label never echoes input."""


class Observer(Protocol):
    """Told of each command's outcome and of every operation's start and end."""

    def operation(self, name: str, attributes: Mapping[str, str]) -> AbstractContextManager[None]:
        """Wraps one operation: ``command``, ``sweep`` or ``sweep.case``, with ``attributes`` such
        as ``event``, ``case_id`` and ``organisation``. A log context, a span, a timer."""
        ...

    def command(self, event: str, outcome: str, refusal: str | None, case_id: str | None = None) -> None:
        """One command ended: ``outcome`` in :data:`OUTCOMES`, ``refusal`` the error's class name,
        ``case_id`` the case an accepted command opened or moved."""
        ...


class NoObserver:
    """The default: nothing is recorded anywhere."""

    def operation(self, name: str, attributes: Mapping[str, str]) -> AbstractContextManager[None]:
        return nullcontext()

    def command(self, event: str, outcome: str, refusal: str | None, case_id: str | None = None) -> None:
        return None


NO_OBSERVER: Observer = NoObserver()


def observed_command(
    observer: Observer, event: str, known: bool, run: Callable[[], _T], case_id: str | None = None
) -> _T:
    """``run()``, the command, inside the observer's ``command`` operation, its outcome reported:
    accepted when it returns, the refusal's outcome and class when it raises one, ``failed``
    otherwise. ``known``: ``event`` is one of the definition's (else it is reported as unknown);
    ``case_id`` is attached only when it has the shape of the library's ids."""
    label = event if known else UNKNOWN_EVENT
    shaped = case_id is not None and CASE_ID_SHAPE.fullmatch(case_id)  # a typed id is not echoed unchecked
    attributes = {"event": label, **({"case_id": case_id} if shaped and case_id else {})}
    with observer.operation("command", attributes):
        try:
            result = run()
        except SecondOpinionError as refused:
            observer.command(label, refused.outcome, type(refused).__name__)
            raise
        except Exception as failure:
            observer.command(label, FAILED, type(failure).__name__)
            raise
        done = getattr(result, "case_id", None)  # a receipt: the case opened has its id only now
        observer.command(label, ACCEPTED, None, done if isinstance(done, str) else None)
        return result


@contextmanager
def operation(observer: Observer, name: str, **attributes: str) -> Iterator[None]:
    """``observer.operation`` with keyword attributes: ``with operation(obs, "sweep"): ...``."""
    with observer.operation(name, attributes):
        yield
