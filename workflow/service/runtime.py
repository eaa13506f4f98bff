"""The runtime: everything a service needs, built once by the composition root.

Every service of the layer takes one :class:`Runtime` and nothing else of another service: the
storage (a unit-of-work factory), the clock, the definition and its engine, the deadline policies,
the calendars and the identity key. Before this existed, the deadline, token and access services
took a whole ``CaseService`` only to pull these out of it (a service locator), so each change to
one service rippled into the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import cached_property

from workflow.cases.case import Actor, new_case_id
from workflow.cases.definitions import Definition
from workflow.cases.engine import Engine
from workflow.clock import DEFAULT_TOLERANCE, Clock
from workflow.deadlines.calendars import Calendars
from workflow.deadlines.policies import POLICIES, CalendarFor, DeadlinePolicy
from workflow.errors import ConfigurationError
from workflow.ports import UnitOfWorkFactory
from workflow.service.observer import NO_OBSERVER, Observer


@dataclass(frozen=True)
class Runtime:
    """One place for the collaborators of the service layer; immutable once built."""

    uow: UnitOfWorkFactory
    """``uow(write)``: a new unit of work; ``write=True`` takes the write lock up front."""
    clock: Clock
    engine: Engine = field(default_factory=Engine)
    policies: tuple[DeadlinePolicy, ...] = POLICIES
    calendars: CalendarFor = field(default_factory=Calendars)
    identity_key: bytes | None = None
    """The key of the BSN and name hashes; it lives outside the database (see bootstrap)."""
    new_id: Callable[[], str] = new_case_id
    on_close: Callable[[], None] | None = None
    """Releases the storage behind the runtime (connection pools); see :meth:`close`."""
    clock_tolerance: timedelta = DEFAULT_TOLERANCE
    """How far the clock may read behind the last record before writes are refused
    (:func:`workflow.clock.forward`); ``SECOND_OPINION_CLOCK_TOLERANCE`` in seconds."""
    channel: str = "embedded"
    """The channel of commands whose actor names none: this process's (``cli:<user>@<host>``,
    ``worker:<host>:<pid>``, or ``embedded:<label>`` as an embedding program declares it)."""
    observer: Observer = NO_OBSERVER
    """Told of commands and operations (:mod:`workflow.service.observer`); by default nothing is:
    logs, metrics and traces are the composition root's (:mod:`second_opinion.observability`)."""

    def with_channel(self, actor: Actor) -> Actor:
        """``actor`` with a channel: its own, else this process's."""
        return actor if actor.channel else replace(actor, channel=self.channel)

    @property
    def definition(self) -> Definition:
        return self.engine.definition

    @cached_property
    def deadline_events(self) -> frozenset[str]:
        """Events that start, pause, resume or stop a deadline: the others skip deadline planning."""
        return frozenset(e for p in self.policies for e in (p.starts_on, *p.stops_on, *p.pauses_on, *p.resumes_on))

    @cached_property
    def terminal_states(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.definition.states if s.terminal)

    def close(self) -> None:
        if self.on_close is not None:
            self.on_close()

    def require_identity_key(self) -> bytes:
        if self.identity_key is None:
            raise ConfigurationError(
                "identity key", "a BSN or a patient's name needs a secret key: set SECOND_OPINION_SECRET or "
                "SECOND_OPINION_SECRET_FILE (the key is never stored in the database)"
            )  # fmt: skip
        return self.identity_key
