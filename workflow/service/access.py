"""The service layer as a *caller with a token* meets it, and the access log every read leaves behind.

:class:`AccessService` runs the same commands and reads as :class:`~workflow.service.cases.CaseService`,
narrowed to what the caller's organisation and role allow (the role table's ``sees`` and ``reads``
columns, :mod:`workflow.access.rules`), with each read of case data written to the access log
(:mod:`workflow.access.log`) before the data is handed out. The HTTP app only translates; every
decision is here, where it can be tested without a server.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from workflow.access import log as access_log
from workflow.access import rules
from workflow.access.log import DENIED, GRANTED, NOT_FOUND, AccessRecord
from workflow.access.rules import ORGANISATION, OWN_CASE, WITHHELD, NotVisible, Principal
from workflow.access.tokens import CAPABILITY_SCOPES
from workflow.audit.chain import AuditRecord, VerifyReport
from workflow.cases.case import Case
from workflow.cases.definitions import Definition
from workflow.cases.next_steps import NextSteps
from workflow.clock import forward
from workflow.deadlines.policies import Deadline
from workflow.errors import MissingScope, PermissionDenied, UnknownCase, ValidationError
from workflow.listing import MAX_PAGE, CaseFilter
from workflow.service import inputs, reports
from workflow.service.commands import Commands, FireEvent, OpenCase, Verdict
from workflow.service.recording import Receipt
from workflow.service.reports import Report
from workflow.service.runtime import Runtime
from workflow.service.verification import Verification
from workflow.service.views import CaseFile, Views
from workflow.service.worklists import Page, WorkListQuery, WorkLists, check


class AccessService:
    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime
        self._commands = Commands(runtime)
        self._views = Views(runtime)
        self._worklists = WorkLists(runtime)
        self._verification = Verification(runtime)
        self._scopes = rules.scopes(runtime.definition)
        self._capabilities = rules.capabilities(runtime.definition)

    @property
    def definition(self) -> Definition:
        return self._rt.definition

    # --- the rules --------------------------------------------------------------------------

    def sees(self, principal: Principal, case: Case) -> bool:
        """Fails closed: a role without a scope in the role table sees nothing."""
        return rules.sees(principal, case, self._scopes)

    def _require(self, principal: Principal, capability: str, kind: str) -> None:
        """Capabilities are checked before any case is looked at: the refusal is the same
        whether or not the case exists, so it leaks nothing."""
        allowed = self._capabilities[capability]
        if principal.token.role not in allowed:
            self._log(principal, kind, DENIED, [None])
            raise PermissionDenied(principal.token.role, f"use {capability}", allowed)
        self._scope(principal, CAPABILITY_SCOPES[capability], kind)

    def _scope(self, principal: Principal, scope: str, kind: str) -> None:
        """The token's scopes narrow its role: refused (403 naming the scope, logged as denied)
        before any case is looked at, so the refusal is the same whether the case exists or not."""
        if not principal.token.allows(scope):
            self._log(principal, kind, DENIED, [None])
            raise MissingScope(principal.token.role, scope)

    def require(self, principal: Principal, capability: str, kind: str) -> None:
        """:meth:`_require`, for the services beside this one (:mod:`workflow.service.feed_access`)."""
        self._require(principal, capability, kind)

    def granted(self, principal: Principal, kind: str, cases: Sequence[Case]) -> None:
        """Log a granted read of ``cases`` as one record, as a page of a list is (one naming no case if none)."""
        self._log(principal, kind, GRANTED, cases, page=True)

    def _admit(self, principal: Principal, case: Case) -> bool:
        if not self.sees(principal, case):
            return False
        # whom the caller acts for goes into the access log (and a command's audit record): never
        # a word of the patient's registered name. Refused before anything is logged or handed out.
        inputs.screen_names(self._rt, case, {"X-On-Behalf-Of": principal.on_behalf_of})
        return True

    def _visible(self, principal: Principal, case_id: str, kind: str) -> Case:
        """The case if the caller may see it; otherwise UnknownCase, logged for its owners."""
        return self._file(principal, case_id, kind)[0]

    def _file(self, principal: Principal, case_id: str, kind: str, *, history: bool = False,
              deadlines: bool = False) -> CaseFile:  # fmt: skip
        """:meth:`_visible` with, as asked, the case's audit records and deadlines, all read in one
        unit of work; the access record is written after it, in a unit of work of its own."""
        if kind not in ("verify", "access-log"):  # those are under audit:read, checked by _require
            self._scope(principal, "cases:read", kind)
        try:
            case, records, found = self._views.case_file(
                case_id, lambda c: self._admit(principal, c), history=history, deadlines=deadlines
            )
        except UnknownCase:
            self._log(principal, kind, NOT_FOUND, [None])
            raise
        if not self.sees(principal, case):
            self._log(principal, kind, NOT_FOUND, [case])
            raise UnknownCase(case_id)
        return case, records, found

    # --- reads (each logged) ----------------------------------------------------------------

    def case(self, principal: Principal, case_id: str, kind: str = "case") -> tuple[Case, list[Deadline]]:
        case, _, deadlines = self._file(principal, case_id, kind, deadlines=True)
        self._log(principal, kind, GRANTED, [case])
        return case, deadlines

    def next_steps(self, principal: Principal, case_id: str) -> NextSteps:
        """What the caller's role may do to the case now, and what is missing: a read of the case,
        logged as ``next`` (nothing goes into the audit trail)."""
        case = self._visible(principal, case_id, "next")
        steps = self._views.next_steps(case, principal.token.role)
        self._log(principal, "next", GRANTED, [case])
        return steps

    def cases(
        self,
        principal: Principal,
        *,
        state: str | None = None,
        route: str | None = None,
        overdue: bool = False,
        due_before: datetime | None = None,
    ) -> list[Case]:
        """Every case the caller sees, filtered, page after page of :meth:`worklist` (each page logged)."""
        query = WorkListQuery(state=state, route=route, overdue=overdue, due_before=due_before, limit=MAX_PAGE)
        found: list[Case] = []
        while True:
            page = self.worklist(principal, query)
            found += page.cases
            if page.next_cursor is None:
                return found
            query = replace(query, cursor=page.next_cursor)

    def worklist(self, principal: Principal, query: WorkListQuery) -> Page:
        """One page of the caller's work list (:mod:`workflow.service.worklists`), within what they
        see: their organisation's cases, a patient their own. ONE access record for the page
        (kind ``list``), naming every case shown, whatever the page's size; an empty page too."""
        check(self._rt, query)
        self._scope(principal, "cases:read", "list")
        visible = self._visibility(principal)
        page = Page([], None) if visible is None else self._worklists.page(query, visible=visible)
        self._log(principal, "list", GRANTED, page.cases, page=True)
        return page

    def case_counts(self, principal: Principal, query: WorkListQuery) -> dict[str, int]:
        """Cases per state the caller sees (a board's columns). Counts name no case: not logged."""
        self._scope(principal, "cases:read", "list")
        visible = self._visibility(principal)
        return {} if visible is None else self._worklists.counts(query, visible=visible)

    def board(
        self, principal: Principal, query: WorkListQuery, per_state: int
    ) -> tuple[dict[str, int], dict[str, Page]]:
        """A board: cases per state the caller sees (counted in SQL), and the first ``per_state`` of
        each state's cases in ``query``'s order. ONE access record (kind ``list``) names every case
        shown, as a page of a list does; the counts name none."""
        check(self._rt, query)
        self._scope(principal, "cases:read", "list")
        visible = self._visibility(principal)
        counts = {} if visible is None else self._worklists.counts(query, visible=visible)
        columns = {} if visible is None else {
            state: self._worklists.page(replace(query, state=state, limit=per_state, cursor=None), visible=visible)
            for state, count in counts.items() if count
        }  # fmt: skip
        self._log(principal, "list", GRANTED, [c for page in columns.values() for c in page.cases], page=True)
        return counts, columns

    def _visibility(self, principal: Principal) -> CaseFilter | None:
        """The role table's ``sees`` column as a listing filter; None: the role sees no case."""
        scope = self._scopes.get(principal.token.role)
        if scope == ORGANISATION:
            return CaseFilter(organisation=principal.organisation)
        if scope == OWN_CASE:
            return CaseFilter(organisation=principal.organisation, patient_ref=principal.token.actor)
        return None

    def history(self, principal: Principal, case_id: str, kind: str = "history") -> tuple[Case, list[AuditRecord]]:
        case, records, _ = self._file(principal, case_id, kind, history=True)
        self._log(principal, kind, GRANTED, [case])
        return case, records

    def deadlines(self, principal: Principal, case_id: str) -> list[Deadline]:
        case, _, found = self._file(principal, case_id, "deadlines", deadlines=True)
        self._log(principal, "deadlines", GRANTED, [case])
        return found

    def export(
        self, principal: Principal, recorded_from: datetime | None = None, after: int | None = None
    ) -> list[AuditRecord]:
        """The audit records of the caller's organisation's cases, in storage order (see
        :meth:`Views.export` for ``after`` and ``recorded_from``)."""
        self._require(principal, "audit", "export")
        every = self._views.export(recorded_from, after)
        # the cases after the records: each exported record's case is then known, so none is left
        # out below a later one of the same export (the caller's cursor would skip it for good)
        mine = {c.id: c for c in self._views.cases(None, principal.organisation)}
        records = [r for r in every if r.case_id in mine]
        exported = sorted({r.case_id for r in records})
        self._log(principal, "export", GRANTED, [mine[i] for i in exported] or [None])
        return records

    def report(
        self, principal: Principal, *, route: str | None = None, first: str | None = None, last: str | None = None
    ) -> Report:
        """Figures over the caller's organisation's cases (roles with the ``reports`` read), logged as
        one ``report`` record naming no case: a report holds counts and spreads, no case or patient.
        Bad parameters are refused before anything is read or logged."""
        self._require(principal, "reports", "report")
        span = reports.period(first, last, self._rt.clock.now())
        found = reports.Reports(self._rt).summary(principal.organisation, route, span)
        self._log(principal, "report", GRANTED, [None])
        return found

    def verify(self, principal: Principal, case_id: str | None = None) -> VerifyReport:
        self._require(principal, "audit", "verify")
        if case_id is not None:
            targets = [self._visible(principal, case_id, "verify")]
        else:
            targets = self._views.cases(None, principal.organisation)
        reports = [self._verification.verify(c.id) for c in targets]
        self._log(principal, "verify", GRANTED, list(targets) or [None])
        return VerifyReport(
            cases=sum(r.cases for r in reports),
            records=sum(r.records for r in reports),
            findings=tuple(f for r in reports for f in r.findings),
        )

    def access_records(self, principal: Principal, case_id: str | None = None) -> list[AccessRecord]:
        """The access log as the caller may see it; this read is itself logged first, so it shows.

        A patient (a role that sees its own case only) gets :func:`workflow.access.log.patient_view`: the records about
        their own case, by staff or by themselves, without client addresses and hashes."""
        self._require(principal, "access-log", "access-log")
        if case_id is not None:
            covered = [self._visible(principal, case_id, "access-log")]
        else:
            covered = [c for c in self._views.cases(None, principal.organisation) if self.sees(principal, c)]
        # one record per case whose accesses are shown, so each patient's overview shows this read
        self._log(principal, "access-log", GRANTED, list(covered) or [None])
        with self._rt.uow(False) as uow:
            if case_id is None and self._scopes.get(principal.token.role) == ORGANISATION:
                return uow.access.for_organisation(principal.organisation)
            records = sorted((r for c in covered for r in uow.access.for_case(c.id)), key=_position)
        if self._scopes.get(principal.token.role) == OWN_CASE:
            own = {c.id for c in covered}
            return access_log.patient_view(records, principal.token.actor, own, self._own_case_roles())
        return records

    def _own_case_roles(self) -> frozenset[str]:
        return frozenset(role for role, scope in self._scopes.items() if scope == OWN_CASE)

    def case_file(self, principal: Principal, case_id: str, kind: str) -> CaseFile:
        """A case with its audit records and deadlines, as one logged read (the FHIR views)."""
        case, records, deadlines = self._file(principal, case_id, kind, history=True, deadlines=True)
        self._log(principal, kind, GRANTED, [case])
        return case, records, deadlines

    def case_events(self, principal: Principal, case_id: str) -> tuple[list[AuditRecord], list[AccessRecord]]:
        """A case's audit records and, for those who may read the access log, its access records."""
        _, records, _ = self.case_file(principal, case_id, "fhir-audit")
        if principal.token.role not in self._capabilities["access-log"] or not principal.token.allows("audit:read"):
            return records, []
        return records, self.access_records(principal, case_id)

    # --- commands ---------------------------------------------------------------------------

    def open_case(
        self,
        principal: Principal,
        patient_ref: str,
        *,
        route: str = "domestic",
        occurred_at: datetime | None = None,
        idempotency_key: str | None = None,
        patient_name: str | None = None,
        provider: str | None = None,
    ) -> Receipt:
        self._scope(principal, "cases:write", "open")
        if self._scopes.get(principal.token.role) == OWN_CASE and patient_ref != principal.token.actor:
            raise ValidationError("patient_ref", "a patient's token opens a case only under its own patient reference")
        command = OpenCase(patient_ref, principal.actor, route, occurred_at, _scoped(principal, idempotency_key),
                           organisation=principal.organisation, patient_name=patient_name,
                           provider=provider)  # fmt: skip
        try:
            return self._commands.open_case(command)
        except PermissionDenied:
            self._log(principal, "open", DENIED, [None])  # no case exists to hold this in its audit trail
            raise

    def fire(self, principal: Principal, case_id: str, event: str, **options: Any) -> Receipt:
        """Fire as the caller, in one unit of work: the visibility check runs on the locked case.
        A case they may not see is unknown to them, untouched, and the attempt logged for its
        owners (what is fired at a visible case is in its audit trail)."""
        self._scope(principal, "cases:write", "fire")
        key = _scoped(principal, options.pop("idempotency_key", None))
        command = FireEvent(case_id, event, principal.actor, idempotency_key=key, **options)

        def admit(case: Case) -> None:
            if not self._admit(principal, case):
                raise NotVisible(case)

        try:
            return self._commands.fire(command, admit)
        except NotVisible as hidden:
            self._log(principal, "fire", NOT_FOUND, [hidden.case])
            raise UnknownCase(case_id) from None
        except UnknownCase:
            self._log(principal, "fire", NOT_FOUND, [None])
            raise

    def check(self, principal: Principal, case_id: str, event: str, **options: Any) -> Verdict:
        """What :meth:`fire` would decide, written nowhere but in the access log (``check``): it
        reads the case. Visibility, bad input and idempotency keys are treated as :meth:`fire` treats them."""
        self._scope(principal, "cases:read", "check")
        key = _scoped(principal, options.pop("idempotency_key", None))
        command = FireEvent(case_id, event, principal.actor, idempotency_key=key, **options)
        admitted: list[Case] = []

        def admit(case: Case) -> None:
            if not self._admit(principal, case):
                raise NotVisible(case)
            admitted.append(case)

        try:
            verdict = self._commands.check(command, admit)
        except NotVisible as hidden:
            self._log(principal, "check", NOT_FOUND, [hidden.case])
            raise UnknownCase(case_id) from None
        except UnknownCase:
            self._log(principal, "check", NOT_FOUND, [None])
            raise
        self._log(principal, "check", GRANTED, admitted[-1:])
        return verdict

    # --- verification of the log ------------------------------------------------------------

    def verify_log(self) -> tuple[int, list[str]]:
        """(records, problems) for the whole access log; an operator's check, not an API call."""
        with self._rt.uow(False) as uow:
            records = uow.access.all()
            shown = uow.access.shown()
        return len(records), access_log.verify_chain(records) + access_log.verify_shown(records, shown)

    # --- internals --------------------------------------------------------------------------

    def _log(
        self, principal: Principal, kind: str, outcome: str, cases: Sequence[Case | None], *, page: bool = False
    ) -> None:
        """Append one record per case (or one naming no case), chained, in one transaction; with
        ``page``, one record naming all of ``cases`` (a page of a list, every case one the caller sees).

        No record holds, as whom the caller acts for, a word of the registered name of a case it is
        about (:meth:`acting_for`): a read of cases the caller sees is refused before anything is
        written; a record about a case they do not see is written with :data:`WITHHELD` instead."""
        token = principal.token
        who = {"actor_id": token.actor, "actor_role": token.role, "organisation": token.organisation,
               "kind": kind, "outcome": outcome, "client": principal.client, "channel": principal.via,
               "credential": principal.credential, "encoding": access_log.ENCODING_VERSION}  # fmt: skip
        behalf = principal.on_behalf_of
        if behalf is not None:  # all the cases seen at once: O(words + cases), see inputs.screen_names_of
            seen = [c for c in cases if c is not None and self.sees(principal, c)]
            inputs.screen_names_of(self._rt, seen, {"X-On-Behalf-Of": behalf})
        if page:
            shown = [c for c in cases if c is not None]
            drafts = [{**who, "on_behalf_of": self._kept(behalf, principal, shown[0] if shown else None),
                       **_about(None), "case_organisation": shown[0].organisation if shown else None,
                       "cases": tuple(c.id for c in shown)}]  # fmt: skip
        else:
            drafts = [{**who, "on_behalf_of": self._kept(behalf, principal, c), **_about(c)} for c in cases]
        with self._rt.uow(True) as uow:
            head = uow.access.head()  # holds the log's end: its time is read, and the clock, after it
            now = forward(self._rt.clock.now(), uow.access.last_at(), self._rt.clock_tolerance, "access record")
            uow.access.append(access_log.chain(head, [{"at": now, **draft} for draft in drafts]))
            uow.commit()

    def acting_for(self, principal: Principal, case: Case | None) -> str | None:
        """Whom the caller acts for, as a record about ``case`` may hold it.

        - A case the caller sees: refused (:class:`ValidationError` on ``X-On-Behalf-Of``, a 422) if
          it holds a word of the case's registered name, as :meth:`_visible` refuses a single read;
          a list, export, verify or access-log read is thus refused whole, before any record.
        - A case the caller does not see (the not-found record of another organisation's case), or
          no case (a refused capability, an unknown id, an empty list): always :data:`WITHHELD`,
          without screening. Screening would either refuse (telling the caller a name belongs to a
          case they cannot see) or cost work that differs between a case that exists unseen and
          one that does not exist (before, a record about no case was screened against every case
          of the organisation: seconds per request, and a clock that told whether a case existed).
          Constant time, the same for both; the price is that the owners' auditors do not see
          whom a refused caller claimed to act for.
        """
        behalf = principal.on_behalf_of
        if behalf is not None and case is not None and self.sees(principal, case):
            inputs.screen_names(self._rt, case, {"X-On-Behalf-Of": behalf})
        return self._kept(behalf, principal, case)

    def _kept(self, behalf: str | None, principal: Principal, case: Case | None) -> str | None:
        """:meth:`acting_for` once screened: kept for a case the caller sees, else withheld."""
        if behalf is None or (case is not None and self.sees(principal, case)):
            return behalf
        return WITHHELD


def _scoped(principal: Principal, key: str | None) -> str | None:
    """Idempotency keys live in one namespace per caller (organisation and actor): nobody else
    choosing the same key replays our receipt or learns that we used it."""
    return None if key is None else f"{principal.organisation}/{principal.token.actor}/{key}"


def _about(case: Case | None) -> dict[str, str | None]:
    if case is None:
        return {"case_id": None, "patient_ref": None, "case_organisation": None}
    return {"case_id": case.id, "patient_ref": case.patient_ref, "case_organisation": case.organisation}


def _position(record: AccessRecord) -> int:
    return record.sequence or 0
