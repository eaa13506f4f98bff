"""Views: the read side of the service layer, kept apart from the commands.

Each method is one read unit of work (one snapshot) and writes nothing. Filters that storage can
apply (state, organisation, route, due moments) are handed to it, not applied to every row here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from workflow import privacy
from workflow.audit.chain import AuditRecord
from workflow.cases.case import Case
from workflow.cases.next_steps import NextSteps, next_steps
from workflow.clock import utc_iso
from workflow.deadlines.policies import Deadline
from workflow.errors import UnknownCase, ValidationError
from workflow.service import inputs
from workflow.service.progress import EXPORT_STEP, Progress
from workflow.service.recording import readable
from workflow.service.runtime import Runtime

CaseFile = tuple[Case, list[AuditRecord], list[Deadline]]


class Views:
    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime

    def case(self, case_id: str) -> Case:
        inputs.shaped(case_id)
        with readable(), self._rt.uow(False) as uow:
            case = uow.cases.get(case_id)
        if case is None:
            raise UnknownCase(case_id)
        return case

    def case_file(
        self, case_id: str, admit: Callable[[Case], bool], *, history: bool = False, deadlines: bool = False
    ) -> CaseFile:
        """The case and, if ``admit(case)`` holds, as asked its audit records and deadlines: one
        read unit of work (one snapshot) where :meth:`case`, :meth:`history` and
        :meth:`deadlines_of` would take one each and read the case again. A case not admitted is
        returned alone (its other rows are not even read, so none of them can fail the read)."""
        inputs.shaped(case_id)
        with readable(), self._rt.uow(False) as uow:
            case = uow.cases.get(case_id)
            if case is None:
                raise UnknownCase(case_id)
            if not admit(case):
                return case, [], []
            records = uow.audit.for_case(case_id) if history else []
            found = uow.deadlines.for_case(case_id) if deadlines else []
        return case, records, found

    def next_steps(self, case: Case, role: str) -> NextSteps:
        """What ``role`` may do to ``case`` now, and what is missing (:mod:`workflow.cases.next_steps`);
        reads nothing more, writes nothing."""
        if role not in self._rt.definition.role_names:
            known = ", ".join(self._rt.definition.role_names)
            raise ValidationError("role", f"{role!r} is not a role; known: {known}")
        return next_steps(self._rt.engine, case, role, utc_iso(self._rt.clock.now()))

    def cases(self, state: str | None = None, organisation: str | None = None, route: str | None = None) -> list[Case]:
        """Cases oldest first, filtered by storage."""
        inputs.check_state(self._rt.definition, state)
        if route is not None:
            inputs.check_route(self._rt.definition, route)
        if organisation is not None and not inputs.IDENTIFIER.fullmatch(organisation):
            return []  # no case has it (organisations are checked at opening); the database may refuse its bytes
        with readable(), self._rt.uow(False) as uow:
            return uow.cases.list(state, organisation=organisation, route=route)

    def find_by_bsn(self, bsn: str, state: str | None = None) -> list[Case]:
        """Cases opened with this BSN (optionally only those in ``state``), found by its keyed hash."""
        identity = privacy.bsn_hash(bsn, self._rt.require_identity_key())
        with readable(), self._rt.uow(False) as uow:
            return [c for c in uow.cases.find_by_bsn_hash(identity) if state is None or c.state == state]

    def history(self, case_id: str) -> list[AuditRecord]:
        inputs.shaped(case_id)
        with readable(), self._rt.uow(False) as uow:
            if uow.cases.get(case_id) is None:
                raise UnknownCase(case_id)
            return uow.audit.for_case(case_id)

    def export(
        self, recorded_from: datetime | None = None, after: int | None = None, progress: Progress | None = None
    ) -> list[AuditRecord]:
        """Audit records in storage order (global ``sequence``): recorded from ``recorded_from`` on,
        and with a sequence above ``after``, each filter when given.

        Both are complete for incremental pulls, because writers append one at a time and never
        date a record before the last one (:func:`workflow.service.recording.stamp`): what a
        later export can add has a higher sequence, and a ``recorded_at`` no earlier, than all
        this one saw. ``after`` (the highest sequence already read) repeats nothing; ``recorded_from``
        (the last ``recorded_at`` read) repeats the records of that very instant.

        ``progress`` hears the records read so far every :data:`~workflow.service.progress.EXPORT_STEP`
        (the total is not known before the last)."""
        if after is not None and after < 0:
            raise ValidationError("after", f"{after} is not a sequence number (0 or more)")
        with readable(), self._rt.uow(False) as uow:
            if progress is None:
                return list(uow.audit.since(recorded_from, after))
            records: list[AuditRecord] = []
            for record in uow.audit.since(recorded_from, after):
                records.append(record)
                if len(records) % EXPORT_STEP == 0:
                    progress(len(records), None)
            progress(len(records), len(records))
            return records

    def deadlines_of(self, case_id: str) -> list[Deadline]:
        """The case's deadlines, each with its due moment, state and how it was computed."""
        inputs.shaped(case_id)
        with readable(), self._rt.uow(False) as uow:
            if uow.cases.get(case_id) is None:
                raise UnknownCase(case_id)
            return uow.deadlines.for_case(case_id)

    def deadlines(
        self, *, overdue: bool = False, due_before: datetime | None = None, due_from: datetime | None = None
    ) -> list[Deadline]:
        """Deadlines by due moment; ``overdue``: open ones (running, or breached and not stopped)
        whose due moment has passed; ``due_from`` (with ``due_before``): open ones due in between."""
        with readable(), self._rt.uow(False) as uow:
            if overdue:
                # due before now and before due_before: due before the earlier of the two
                now = self._rt.clock.now()
                return uow.deadlines.open_due(now if due_before is None else min(now, due_before))
            if due_from is not None and due_before is not None:
                return uow.deadlines.open_due(due_before, due_from)
            return uow.deadlines.list(None, due_before=due_before)
