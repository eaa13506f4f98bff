"""The one entry point for a program embedding the library: :class:`CaseService`.

It is a facade over the service layer's modules, each answering one question: typed input
(:mod:`~workflow.service.inputs`), recording (:mod:`~workflow.service.recording`), commands
(:mod:`~workflow.service.commands`), reads (:mod:`~workflow.service.views`) and verification
(:mod:`~workflow.service.verification`), all built on one :class:`~workflow.service.runtime.Runtime`.
Its methods keep the keyword signatures users call, and turn them into the frozen command
dataclasses the layer works with.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from workflow.audit.chain import AuditRecord, VerifyReport
from workflow.cases.case import DEFAULT_ORGANISATION, Actor, Case, new_case_id
from workflow.cases.definitions import Definition
from workflow.cases.engine import Engine
from workflow.cases.next_steps import NextSteps
from workflow.clock import Clock
from workflow.deadlines.calendars import Calendars
from workflow.deadlines.policies import POLICIES, CalendarFor, Deadline, DeadlinePolicy
from workflow.ports import UnitOfWorkFactory
from workflow.service import inputs
from workflow.service.commands import Admit, Commands, FireEvent, OpenCase, Verdict
from workflow.service.progress import Progress
from workflow.service.recording import Receipt
from workflow.service.runtime import Runtime
from workflow.service.verification import Verification
from workflow.service.views import CaseFile, Views
from workflow.service.worklists import Page, WorkListQuery, WorkLists


class CaseService:
    """Cases: commands, reads and verification, on one runtime."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        engine: Engine | None = None,
        new_id: Callable[[], str] = new_case_id,
        on_close: Callable[[], None] | None = None,
        identity_key: bytes | None = None,
        policies: Sequence[DeadlinePolicy] = POLICIES,
        calendars: CalendarFor | None = None,
    ) -> None:
        runtime = Runtime(
            uow, clock, engine or Engine(), tuple(policies), calendars or Calendars(), identity_key, new_id,
            on_close,
        )  # fmt: skip
        self._use(runtime)

    @classmethod
    def on(cls, runtime: Runtime) -> CaseService:
        """The service on a runtime the composition root built."""
        service = cls.__new__(cls)
        service._use(runtime)
        return service

    def _use(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.commands = Commands(runtime)
        self.views = Views(runtime)
        self.verification = Verification(runtime)
        self.worklists = WorkLists(runtime)

    def close(self) -> None:
        """Release the storage behind this service (connection pools)."""
        self.runtime.close()

    def __enter__(self) -> CaseService:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def clock(self) -> Clock:
        return self.runtime.clock

    @property
    def unit_of_work(self) -> UnitOfWorkFactory:
        return self.runtime.uow

    @property
    def definition(self) -> Definition:
        return self.runtime.definition

    @property
    def policies(self) -> tuple[DeadlinePolicy, ...]:
        return self.runtime.policies

    @property
    def calendars(self) -> CalendarFor:
        return self.runtime.calendars

    @property
    def verify_batch(self) -> int:
        """How many cases :meth:`verify` reads at once."""
        return self.verification.batch

    @verify_batch.setter
    def verify_batch(self, size: int) -> None:
        self.verification.batch = size

    # --- commands -----------------------------------------------------------------------------

    def open_case(
        self,
        patient_ref: str,
        *,
        actor: Actor,
        route: str = "domestic",
        occurred_at: datetime | None = None,
        idempotency_key: str | None = None,
        bsn: str | None = None,
        organisation: str = DEFAULT_ORGANISATION,
        patient_name: str | None = None,
        provider: str | None = None,
    ) -> Receipt:
        """Register a new case (see :class:`~workflow.service.commands.OpenCase`)."""
        return self.commands.open_case(
            OpenCase(patient_ref, actor, route, occurred_at, idempotency_key, bsn, organisation, patient_name, provider)
        )

    def fire(
        self,
        case_id: str,
        event: str,
        *,
        actor: Actor,
        reason: str | None = None,
        data: Mapping[str, Any] | None = None,
        expect_version: int | None = None,
        occurred_at: datetime | None = None,
        idempotency_key: str | None = None,
        admit: Admit | None = None,
    ) -> Receipt:
        """Move a case by ``event``; raises the refusal (after recording it) if not allowed."""
        command = FireEvent(case_id, event, actor, reason, data or {}, expect_version, occurred_at, idempotency_key)
        return self.commands.fire(command, admit)

    def check(
        self,
        case_id: str,
        event: str,
        *,
        actor: Actor,
        reason: str | None = None,
        data: Mapping[str, Any] | None = None,
        expect_version: int | None = None,
        occurred_at: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> Verdict:
        """What :meth:`fire` would decide, writing nothing (see :meth:`Commands.check`)."""
        command = FireEvent(case_id, event, actor, reason, data or {}, expect_version, occurred_at, idempotency_key)
        return self.commands.check(command)

    # --- reads --------------------------------------------------------------------------------

    def next_steps(self, case_id: str, role: str) -> NextSteps:
        """Every event for the case and ``role``: allowed, blocked (by what), or not for them now."""
        return self.views.next_steps(self.views.case(case_id), role)

    def case(self, case_id: str) -> Case:
        return self.views.case(case_id)

    def case_file(
        self, case_id: str, admit: Callable[[Case], bool], *, history: bool = False, deadlines: bool = False
    ) -> CaseFile:
        return self.views.case_file(case_id, admit, history=history, deadlines=deadlines)

    def cases(self, state: str | None = None, organisation: str | None = None, route: str | None = None) -> list[Case]:
        return self.views.cases(state, organisation, route)

    def find_by_bsn(self, bsn: str, state: str | None = None) -> list[Case]:
        return self.views.find_by_bsn(bsn, state)

    def worklist(self, query: WorkListQuery) -> Page:
        """One page of a work list (filters, order, cursor: see :mod:`workflow.service.worklists`)."""
        return self.worklists.page(query)

    def case_counts(self, query: WorkListQuery) -> dict[str, int]:
        """Cases per state for the filters of ``query``."""
        return self.worklists.counts(query)

    def history(self, case_id: str) -> list[AuditRecord]:
        return self.views.history(case_id)

    def export(
        self, recorded_from: datetime | None = None, after: int | None = None, progress: Progress | None = None
    ) -> list[AuditRecord]:
        """See :meth:`workflow.service.views.Views.export`."""
        return self.views.export(recorded_from, after, progress)

    def deadlines_of(self, case_id: str) -> list[Deadline]:
        return self.views.deadlines_of(case_id)

    def screen_names(self, case: Case, fields: Mapping[str, Any]) -> None:
        """See :func:`workflow.service.inputs.screen_names`."""
        inputs.screen_names(self.runtime, case, fields)

    def verify(self, case_id: str | None = None, progress: Progress | None = None) -> VerifyReport:
        """Recompute every hash chain and replay every case (or one); ``progress`` hears the cases
        done per batch (see :mod:`workflow.service.progress`)."""
        return self.verification.verify(case_id, progress)
