"""Commands: open a case, fire an event. The heart of the library.

The order inside :meth:`Commands.fire`: check the typed input (nothing read yet), lock the case,
let the caller's ``admit`` see it (the API's visibility check, under the same lock), decide with
the engine (no side effects), then write case row, transition row and audit record together. A
refusal writes exactly one thing, the audit record that says it was refused, and re-raises.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from workflow import privacy
from workflow.audit.chain import ACCEPTED, ENCODING_VERSION, GENESIS, seal
from workflow.cases.case import DEFAULT_ORGANISATION, Actor, Case
from workflow.cases.definitions import OPEN_EVENT, RouteVersion, initial_facts
from workflow.cases.engine import Decision
from workflow.clock import utc_iso
from workflow.deadlines.policies import on_event
from workflow.errors import (
    ConcurrentUpdate,
    GuardRefused,
    IdempotencyConflict,
    PermissionDenied,
    SecondOpinionError,
    UnknownCase,
    ValidationError,
)
from workflow.ports import UnitOfWork
from workflow.service import inputs
from workflow.service.observer import observed_command
from workflow.service.recording import (
    Receipt,
    fingerprint,
    next_record,
    readable,
    record_refusal,
    replayed,
    retrying,
    stamp,
    write_accepted,
)
from workflow.service.runtime import Runtime

Admit = Callable[[Case], None]
"""Called with the locked case before anything is decided; raises to refuse the caller the case."""


@dataclass(frozen=True)
class OpenCase:
    """Register a new case in the initial state, owned by ``organisation``."""

    patient_ref: str
    actor: Actor
    route: str = "domestic"
    occurred_at: datetime | None = None
    idempotency_key: str | None = None
    bsn: str | None = None
    """Kept only as a keyed hash."""
    organisation: str = DEFAULT_ORGANISATION
    patient_name: str | None = None
    """Kept only as keyed hashes of its words, against which this command and every later one
    about the case is screened (see :func:`workflow.privacy.check_names`)."""
    provider: str | None = None
    """The provider the patient chose (002, step 3), when already known; implied on a route that
    one provider serves (Royal Doctors, online). Later: the event ``choose_provider``."""


@dataclass(frozen=True)
class FireEvent:
    """Move a case by ``event``."""

    case_id: str
    event: str
    actor: Actor
    reason: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    expect_version: int | None = None
    occurred_at: datetime | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Verdict:
    """What ``fire`` would do with a command now (``fire --check``), written nowhere: accepted, to
    ``to_state``; or refused, with the refusal's kind, message and, as it has them, guard and field."""

    case_id: str
    event: str
    accepted: bool
    from_state: str
    to_state: str
    version: int
    """The case's version now; an accepted command would make it ``version + 1``."""
    refusal: dict[str, Any] | None = None
    replayed: bool = False
    """The idempotency key names a command already done: ``fire`` would return its receipt."""

    def as_dict(self) -> dict[str, Any]:
        return {"case_id": self.case_id, "event": self.event, "accepted": self.accepted, "from_state": self.from_state,
                "to_state": self.to_state, "version": self.version, "refusal": self.refusal, "replayed": self.replayed,
                "written": False}  # fmt: skip


class Commands:
    """The write side of the service layer: each method is one transaction."""

    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime

    def open_case(self, command: OpenCase) -> Receipt:
        return observed_command(self._rt.observer, OPEN_EVENT, True, lambda: self._open_case(command))

    def _open_case(self, command: OpenCase) -> Receipt:
        command = replace(command, actor=self._rt.with_channel(command.actor))
        rt, actor, definition = self._rt, command.actor, self._rt.definition
        inputs.check_actor(actor, definition)
        inputs.check_id("organisation", command.organisation)
        inputs.check_key(command.idempotency_key)
        privacy.check_patient_ref(command.patient_ref)
        names: tuple[str, ...] = ()
        if command.patient_name is not None:
            privacy.check_name(command.patient_name)  # bad input is a 422 whether or not a key is configured
            key = rt.require_identity_key()
            names = privacy.name_hashes(command.patient_name, key)
            privacy.check_names(
                {"patient reference": command.patient_ref, "organisation": command.organisation,
                 "actor id": actor.id, "on-behalf-of": actor.on_behalf_of,
                 "idempotency key": command.idempotency_key}, key, names,
            )  # fmt: skip
        route = inputs.check_route(definition, command.route)
        provider = inputs.check_provider(definition, route, command.provider)
        if not definition.may(actor.role, OPEN_EVENT):
            raise PermissionDenied(actor.role, OPEN_EVENT, definition.roles_for(OPEN_EVENT))
        now = inputs.in_supported_years("clock", rt.clock.now())  # it dates the record, whatever occurred_at says
        occurred = inputs.occurred(command.occurred_at, now)
        identity = None if command.bsn is None else privacy.bsn_hash(command.bsn, rt.require_identity_key())
        print_ = fingerprint(
            command.idempotency_key, OPEN_EVENT, command.patient_ref, command.route, actor, command.occurred_at,
            identity, command.organisation,
            *([names] if names else []),  # absent without a name: fingerprints stored before names stay valid
            *([command.provider] if command.provider else []),  # likewise without a provider
        )  # fmt: skip
        return retrying(lambda: self._open(command, route, occurred, now, print_, identity, names, provider))

    def fire(self, command: FireEvent, admit: Admit | None = None) -> Receipt:
        """Move a case; raises the refusal (after recording it) if not allowed.

        ``admit`` runs on the locked case first: what it raises leaves everything untouched. Bad
        input is refused before the case is read, except that a caller with ``admit`` learns
        nothing of a case it is not admitted to, not even that its input was bad."""
        command = replace(command, actor=self._rt.with_channel(command.actor))
        known = self._rt.definition.event(command.event) is not None

        def run() -> Receipt:
            data, print_ = self._validated(command, admit)
            return retrying(lambda: self._fire(command, data, print_, admit))

        return observed_command(self._rt.observer, command.event, known, run, command.case_id)

    def check(self, command: FireEvent, admit: Admit | None = None) -> Verdict:
        """The decision :meth:`fire` would take on ``command`` now, its checks in the same order,
        in a read unit of work: no audit record (not even of a refusal), no idempotency row, no
        deadline, no version. Bad input and an unseen case are raised as :meth:`fire` raises them;
        every refusal :meth:`fire` would record is returned instead."""
        rt, case_id, event, key = self._rt, command.case_id, command.event, command.idempotency_key
        data, print_ = self._validated(command, admit)
        with readable(), rt.uow(False) as uow:
            case = self._admitted(uow, command, data, admit, lock=False)
            stored = uow.keys.get(key) if key is not None else None
        now = inputs.in_supported_years("clock", rt.clock.now())
        try:
            if stored is not None:
                if stored.fingerprint != print_:
                    raise IdempotencyConflict(key or "")
                result = stored.result
                return Verdict(case_id, event, True, result["from_state"], result["to_state"], case.version,
                               replayed=True)  # fmt: skip
            decision, _ = self._decide(case, command, data, now)
        except SecondOpinionError as refused:
            refusal: dict[str, Any] = {"type": type(refused).__name__, "outcome": refused.outcome,
                                       "message": privacy.redact(str(refused))}  # fmt: skip
            if isinstance(refused, GuardRefused):
                refusal.update(guard=refused.guard, reason=refused.reason)
            if isinstance(refused, ValidationError):
                refusal["field"] = refused.field
            return Verdict(case_id, event, False, case.state, case.state, case.version, refusal)
        return Verdict(case_id, event, True, case.state, decision.to_state, case.version)

    # --- internals ----------------------------------------------------------------------------

    def _validated(self, command: FireEvent, admit: Admit | None) -> tuple[dict[str, Any], str]:
        """The typed input checked before anything is read; on bad input a caller with ``admit``
        is first checked against the case, so that it learns nothing of a case it may not see."""
        try:
            return self._checked(command)
        except ValidationError:
            if admit is not None:
                self._admit_only(command.case_id, admit)
            raise

    def _admitted(
        self, uow: UnitOfWork, command: FireEvent, data: dict[str, Any], admit: Admit | None, *, lock: bool
    ) -> Case:
        """The case, read (and locked by :meth:`fire`), shown to ``admit``, and screened for the
        patient's registered names before anything is written, even the record of a refusal: it
        would quote what was typed. One place for :meth:`fire` and :meth:`check` alike."""
        case = uow.cases.get(command.case_id, lock=True) if lock else uow.cases.get(command.case_id)
        if case is None:
            raise UnknownCase(command.case_id)
        if admit is not None:
            admit(case)
        if case.name_hashes:  # (the fields are gathered only for a case with a registered name)
            rt, event, actor = self._rt, command.event, command.actor
            inputs.screen_names(rt, case, {"event": None if rt.definition.event(event) else event,
                                           "reason": command.reason, "data": data, "actor id": actor.id,
                                           "on-behalf-of": actor.on_behalf_of,
                                           "idempotency key": command.idempotency_key})  # fmt: skip
        return case

    def _decide(
        self, case: Case, command: FireEvent, data: dict[str, Any], now: datetime
    ) -> tuple[Decision, datetime]:
        """The engine's decision on ``command`` against ``case`` and the moment it occurred, after
        the version, time and privacy checks: raises the refusal, writes nothing. The same steps
        for :meth:`fire` (which records a refusal) and :meth:`check` (which returns it)."""
        if command.expect_version is not None and command.expect_version != case.version:
            raise ConcurrentUpdate(case.id, command.expect_version, case.version)
        occurred = inputs.occurred(command.occurred_at, now, not_before=case.opened_at)
        if command.reason is not None:
            privacy.check_text("reason", command.reason)
        privacy.check_payload(data)
        decision = self._rt.engine.decide(
            case.state, command.event, command.actor.role, command.reason, data, case.facts, self._route_of(case),
            utc_iso(occurred),
        )  # fmt: skip
        return decision, occurred

    def _checked(self, command: FireEvent) -> tuple[dict[str, Any], str]:
        inputs.check_actor(command.actor, self._rt.definition)
        inputs.check_key(command.idempotency_key)
        inputs.shaped(command.case_id)
        inputs.check_event_name(command.event)
        data = dict(command.data or {})
        inputs.check_data(data)
        inputs.check_reason(command.reason)
        print_ = fingerprint(
            command.idempotency_key, command.case_id, command.event, command.actor, command.reason, data,
            command.expect_version, command.occurred_at,
        )  # fmt: skip
        return data, print_

    def _admit_only(self, case_id: str, admit: Admit) -> None:
        inputs.shaped(case_id)
        with self._rt.uow(False) as uow:
            case = uow.cases.get(case_id)
        if case is None:
            raise UnknownCase(case_id)
        admit(case)

    def _open(
        self,
        command: OpenCase,
        route: RouteVersion,
        occurred: datetime,
        now: datetime,
        print_: str,
        identity: str | None,
        names: tuple[str, ...],
        provider: dict[str, Any] | None,
    ) -> Receipt:
        rt, actor, key = self._rt, command.actor, command.idempotency_key
        with rt.uow(True) as uow:
            earlier = replayed(uow, key, print_)
            if earlier:
                return earlier
            # read again holding the log's end (the first read, before the unit, checked the input)
            now = stamp(uow, rt.clock, rt.clock_tolerance)
            if command.occurred_at is None:
                occurred = now
            case_id = rt.new_id()
            initial = rt.definition.initial
            record = seal(
                case_id=case_id, seq=1, event=OPEN_EVENT, outcome=ACCEPTED, from_state=None, to_state=initial,
                actor_id=actor.id, actor_role=actor.role, on_behalf_of=actor.on_behalf_of, occurred_at=occurred,
                recorded_at=now, idempotency_key=key, channel=actor.channel, encoding=ENCODING_VERSION,
                payload={
                    "patient_ref": command.patient_ref,
                    "route": route.name,
                    "route_version": route.version,
                    "organisation": command.organisation,
                    **({"bsn_hmac": identity} if identity else {}),
                    **({"name_hmacs": list(names)} if names else {}),
                    **({"provider": provider} if provider else {}),
                },
                reason=None, refusal=None, prev_hash=GENESIS,
            )  # fmt: skip
            case = Case(
                id=case_id, patient_ref=command.patient_ref, route=route.name, state=initial, version=1,
                opened_at=occurred, updated_at=now, audit_head=record.hash, audit_count=1,
                facts=initial_facts(route.version, provider and {**provider, "at": utc_iso(occurred),
                                                                 "by": actor.role}),
                bsn_hash=identity, organisation=command.organisation, name_hashes=names,
            )  # fmt: skip
            uow.cases.add(case)
            self._plan_deadlines(uow, case, OPEN_EVENT, case.state, occurred, now)
            return write_accepted(uow, record, case, print_)

    def _fire(self, command: FireEvent, data: dict[str, Any], print_: str, admit: Admit | None) -> Receipt:
        rt, case_id, event, actor = self._rt, command.case_id, command.event, command.actor
        key, reason = command.idempotency_key, command.reason
        with rt.uow(True) as uow:
            case = self._admitted(uow, command, data, admit, lock=True)
            # after the case lock, holding the log's end: recorded_at never runs backwards, in a
            # chain or across cases; before the try, as a refusal record would carry that time too
            now = stamp(uow, rt.clock, rt.clock_tolerance)
            try:
                earlier = replayed(uow, key, print_)
                if earlier:
                    return earlier
                decision, occurred = self._decide(case, command, data, now)
            except SecondOpinionError as refusal:
                record_refusal(uow, case, event, actor, now, key, refusal)
                raise
            record = next_record(
                case, event, actor, now, key, outcome=ACCEPTED, to_state=decision.to_state, occurred_at=occurred,
                payload=decision.payload, reason=reason, refusal=None,
            )  # fmt: skip
            moved = case.moved(decision.to_state, now, decision.facts, record.hash)
            if not uow.cases.update(moved, expected_version=case.version, expected_audit_count=case.audit_count):
                raise ConcurrentUpdate(case_id, case.version, case.version + 1)
            self._plan_deadlines(uow, moved, event, decision.to_state, occurred, now)
            return write_accepted(uow, record, moved, print_)

    def _plan_deadlines(
        self, uow: UnitOfWork, case: Case, event: str, to_state: str, at: datetime, now: datetime
    ) -> None:
        """Start, pause, resume or stop the case's deadlines in the command's own transaction."""
        rt = self._rt
        terminal = rt.definition.state(to_state).terminal
        if not terminal and event not in rt.deadline_events:
            return  # most commands touch no deadline: spare them the read
        existing = {} if event == OPEN_EVENT else {d.policy: d for d in uow.deadlines.for_case(case.id)}
        for deadline in on_event(
            rt.policies, rt.calendars, case_id=case.id, route=case.route, event=event, terminal=terminal, at=at,
            now=now, existing=existing,
        ):  # fmt: skip
            uow.deadlines.save(deadline, new=deadline.policy not in existing)

    def _route_of(self, case: Case) -> RouteVersion:
        version = case.facts.get("route_version", 1)
        rules = self._rt.definition.route(case.route, version)
        if rules is None:
            raise ValidationError("route", f"case is on {case.route} version {version}, which this library lacks")
        return rules
