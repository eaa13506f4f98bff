"""The one entry point: every CLI command, HTTP request and scheduled job goes through here.

Each public method is one transaction. The order inside :meth:`CaseService.fire` is the heart of
the library: lock the case, decide with the engine (no side effects), then write case row,
transition row and audit record together. A refusal writes exactly one thing, the audit
record that says it was refused, and re-raises the error for the caller.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from workflow import privacy
from workflow.audit.chain import ACCEPTED, GENESIS, AuditRecord, Finding, VerifyReport, seal, verify_case
from workflow.cases.case import DEFAULT_ORGANISATION, Actor, Case, Transition, new_case_id
from workflow.cases.definitions import OPEN_EVENT, RouteVersion, initial_facts
from workflow.cases.engine import Engine
from workflow.clock import Clock, as_utc, utc_iso
from workflow.deadlines.calendar_data import FIRST_YEAR
from workflow.deadlines.calendars import LAST_YEAR, Calendars, local_date
from workflow.deadlines.policies import (
    POLICIES,
    CalendarFor,
    Deadline,
    DeadlinePolicy,
    difference,
    on_event,
    policy_named,
    replay_deadlines,
)
from workflow.errors import (
    AuditIntegrityError,
    ConcurrentUpdate,
    ConfigurationError,
    IdempotencyConflict,
    PermissionDenied,
    SecondOpinionError,
    UnknownCase,
    ValidationError,
)
from workflow.ports import KeyTaken, StoredResult, UnitOfWork, UnitOfWorkFactory, UnreadableRow

_ACTOR_ID = privacy.PATIENT_REF_PATTERN


@dataclass(frozen=True)
class Receipt:
    """What an accepted command did; what an idempotent retry gets back unchanged."""

    case_id: str
    event: str
    from_state: str | None
    to_state: str
    version: int
    seq: int
    occurred_at: str
    recorded_at: str
    replayed: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class CaseService:
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
        self._uow = uow
        self.policies = tuple(policies)
        self.calendars: CalendarFor = calendars or Calendars()
        self._deadline_events = {e for p in self.policies for e in (p.starts_on, *p.stops_on, *p.pauses_on,
                                                                      *p.resumes_on)}  # fmt: skip
        self._on_close = on_close
        self._identity_key = identity_key
        self._clock = clock
        self._engine = engine or Engine()
        self._new_id = new_id
        self.definition = self._engine.definition

    def close(self) -> None:
        """Release the storage behind this service (connection pools)."""
        if self._on_close is not None:
            self._on_close()

    def __enter__(self) -> CaseService:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def unit_of_work(self) -> UnitOfWorkFactory:
        """The storage this service runs on, for the other services of the layer (deadlines)."""
        return self._uow

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
    ) -> Receipt:
        """Register a new case in the initial state, owned by ``organisation``; ``bsn`` is kept
        only as a keyed hash. ``patient_name`` is kept only as keyed hashes of its words, against
        which this command and every later one about the case is screened: a field holding a
        word of the name is refused and nothing is written (see :func:`privacy.check_names`)."""
        self._check_actor(actor)
        self._check_id("organisation", organisation)
        self._check_key(idempotency_key)
        privacy.check_patient_ref(patient_ref)
        names: tuple[str, ...] = ()
        if patient_name is not None:
            privacy.check_name(patient_name)  # bad input is a 422 whether or not a key is configured
            key = self._require_identity_key()
            names = privacy.name_hashes(patient_name, key)
            privacy.check_names(
                {"patient reference": patient_ref, "organisation": organisation, "actor id": actor.id,
                 "on-behalf-of": actor.on_behalf_of, "idempotency key": idempotency_key}, key, names,
            )  # fmt: skip
        route_rules = self.definition.route(route)
        if route_rules is None:
            raise ValidationError("route", f"{route!r} is not a route; known: {', '.join(self.definition.route_names)}")
        if not self.definition.may(actor.role, OPEN_EVENT):
            raise PermissionDenied(actor.role, OPEN_EVENT, self.definition.roles_for(OPEN_EVENT))
        now = _in_supported_years("clock", self._clock.now())  # it dates the record, whatever occurred_at says
        occurred = self._occurred(occurred_at, now)
        identity = None if bsn is None else privacy.bsn_hash(bsn, self._require_identity_key())
        fingerprint = _fingerprint(
            idempotency_key, OPEN_EVENT, patient_ref, route, actor, occurred_at, identity, organisation,
            *([names] if names else []),  # absent without a name: fingerprints stored before names stay valid
        )  # fmt: skip
        opening = (patient_ref, route_rules, actor, occurred, now, idempotency_key, fingerprint, identity)
        return self._retrying(lambda: self._open(*opening, organisation, names))

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
    ) -> Receipt:
        """Move a case by ``event``; raises the refusal (after recording it) if not allowed."""
        self._check_actor(actor)
        self._check_key(idempotency_key)
        _shaped(case_id)
        if not privacy.EVENT_NAME.fullmatch(event):
            raise ValidationError(
                "event", "must be a lower-case name such as 'refer' (see `second-opinion fire --help`)"
            )
        data = dict(data or {})
        _check_json(data)
        if reason is not None:
            if len(reason) > MAX_REASON_CHARS:
                raise ValidationError("reason", f"is longer than {MAX_REASON_CHARS} characters ({len(reason)})")
            _check_text("reason", reason)
        fingerprint = _fingerprint(idempotency_key, case_id, event, actor, reason, data, expect_version, occurred_at)
        return self._retrying(
            lambda: self._fire(
                case_id, event, actor, reason, data, expect_version, occurred_at, idempotency_key, fingerprint
            )
        )

    # --- queries ------------------------------------------------------------------------------

    def case(self, case_id: str) -> Case:
        _shaped(case_id)
        with _readable(), self._uow(False) as uow:
            case = uow.cases.get(case_id)
        if case is None:
            raise UnknownCase(case_id)
        return case

    def case_file(
        self, case_id: str, admit: Callable[[Case], bool], *, history: bool = False, deadlines: bool = False
    ) -> tuple[Case, list[AuditRecord], list[Deadline]]:
        """The case and, if ``admit(case)`` holds, as asked its audit records and deadlines: one
        read unit of work (one snapshot) where :meth:`case`, :meth:`history` and
        :meth:`deadlines_of` would take one each and read the case again. A case not admitted is
        returned alone (its other rows are not even read, so none of them can fail the read)."""
        _shaped(case_id)
        with _readable(), self._uow(False) as uow:
            case = uow.cases.get(case_id)
            if case is None:
                raise UnknownCase(case_id)
            if not admit(case):
                return case, [], []
            records = uow.audit.for_case(case_id) if history else []
            found = uow.deadlines.for_case(case_id) if deadlines else []
        return case, records, found

    def cases(self, state: str | None = None, organisation: str | None = None) -> list[Case]:
        if state is not None and state not in [s.name for s in self.definition.states]:
            known = ", ".join(s.name for s in self.definition.states)
            raise ValidationError("state", f"{state!r} is not a state; known: {known}")
        with _readable(), self._uow(False) as uow:
            found = uow.cases.list(state)
        return found if organisation is None else [c for c in found if c.organisation == organisation]

    def find_by_bsn(self, bsn: str, state: str | None = None) -> list[Case]:
        """Cases opened with this BSN (optionally only those in ``state``), found by its keyed hash."""
        identity = privacy.bsn_hash(bsn, self._require_identity_key())
        with _readable(), self._uow(False) as uow:
            return [c for c in uow.cases.find_by_bsn_hash(identity) if state is None or c.state == state]

    def screen_names(self, case: Case, fields: Mapping[str, Any]) -> None:
        """Refuse (ValidationError, naming the field, never the value) if any of ``fields`` holds a
        word of the name registered for ``case``; a case opened without a name passes everything.
        Callers run it before writing anything about the case (the access log included)."""
        if case.name_hashes:
            privacy.check_names(fields, self._require_identity_key(), case.name_hashes)

    def _require_identity_key(self) -> bytes:
        if self._identity_key is None:
            raise ConfigurationError(
                "identity key", "a BSN or a patient's name needs a secret key: set SECOND_OPINION_SECRET or "
                "SECOND_OPINION_SECRET_FILE (the key is never stored in the database)"
            )  # fmt: skip
        return self._identity_key

    def history(self, case_id: str) -> list[AuditRecord]:
        _shaped(case_id)
        with _readable(), self._uow(False) as uow:
            if uow.cases.get(case_id) is None:
                raise UnknownCase(case_id)
            return uow.audit.for_case(case_id)

    def export(self, recorded_from: datetime | None = None) -> list[AuditRecord]:
        """Audit records in storage order, from ``recorded_from`` on (all when None)."""
        with _readable(), self._uow(False) as uow:
            return list(uow.audit.since(recorded_from))

    verify_batch = 500
    """How many cases :meth:`verify` reads at once: three queries a batch rather than three a case."""

    def verify(self, case_id: str | None = None) -> VerifyReport:
        """Recompute every chain and replay every case; collect the first problem of each."""
        findings: list[Finding] = []
        records_seen = 0
        if case_id is not None:
            _shaped(case_id)
        with _readable(), self._uow(False) as uow:
            if case_id is not None:
                one = uow.cases.get(case_id)
                if one is None:
                    raise UnknownCase(case_id)
                cases = [one]
            else:
                cases = uow.cases.list()
            for start in range(0, len(cases), self.verify_batch):
                batch = cases[start : start + self.verify_batch]
                ids = [case.id for case in batch]
                audit, logs = uow.audit.for_cases(ids), uow.transitions.for_cases(ids)
                deadlines = uow.deadlines.for_cases(ids)
                for case in batch:
                    try:
                        records = audit.of(case.id)
                        transitions = logs.of(case.id)
                    except UnreadableRow as unreadable:
                        findings.append(Finding(case.id, None, str(unreadable)))
                        continue
                    records_seen += len(records)
                    finding = verify_case(case, records, transitions, self.definition)
                    if finding is None:
                        finding = self._check_deadlines(case, records, deadlines.of(case.id))
                    if finding:
                        findings.append(finding)
        return VerifyReport(cases=len(cases), records=records_seen, findings=tuple(findings))

    # --- internals ----------------------------------------------------------------------------

    def _check_deadlines(self, case: Case, records: list[AuditRecord], stored: list[Deadline]) -> Finding | None:
        """Deadline rows are derived data: the audit trail must rebuild them (see
        :func:`workflow.deadlines.policies.difference` for what is compared, and why not everything)."""
        terminal = [s.name for s in self.definition.states if s.terminal]
        rebuilt = replay_deadlines(records, case.route, self.policies, self.calendars, terminal)
        by_policy = {d.policy: d for d in stored}
        for name in sorted(set(rebuilt) | set(by_policy)):
            have, want = by_policy.get(name), rebuilt.get(name)
            if have is None or want is None:
                what = "is not in the audit trail" if want is None else "is missing"
                return Finding(case.id, None, f"deadline {name} {what}")
            policy = policy_named(name, self.policies)
            field = difference(have, want, None if policy is None else self.calendars(policy.calendar))
            if field:
                problem = (f"deadline {name}: {field} differs from what its audit trail and the calendar give "
                           "(altered, or calendar data changed: run `second-opinion deadlines recompute`)")  # fmt: skip
                return Finding(case.id, None, problem)
        return None

    def _retrying(self, command: Callable[[], Receipt]) -> Receipt:
        """Run once more if a concurrent writer took our idempotency key: the rerun replays it."""
        with _readable():
            try:
                return command()
            except KeyTaken:
                return command()

    def _open(
        self,
        patient_ref: str,
        route: RouteVersion,
        actor: Actor,
        occurred: datetime,
        now: datetime,
        key: str | None,
        fingerprint: str,
        identity: str | None,
        organisation: str,
        names: tuple[str, ...],
    ) -> Receipt:
        with self._uow(True) as uow:
            replayed = _replay(uow, key, fingerprint)
            if replayed:
                return replayed
            case_id = self._new_id()
            record = seal(
                case_id=case_id,
                seq=1,
                event=OPEN_EVENT,
                outcome=ACCEPTED,
                from_state=None,
                to_state=self.definition.initial,
                actor_id=actor.id,
                actor_role=actor.role,
                on_behalf_of=actor.on_behalf_of,
                occurred_at=occurred,
                recorded_at=now,
                idempotency_key=key,
                payload={
                    "patient_ref": patient_ref,
                    "route": route.name,
                    "route_version": route.version,
                    "organisation": organisation,
                    **({"bsn_hmac": identity} if identity else {}),
                    **({"name_hmacs": list(names)} if names else {}),
                },
                reason=None,
                refusal=None,
                prev_hash=GENESIS,
            )
            case = Case(
                id=case_id,
                patient_ref=patient_ref,
                route=route.name,
                state=self.definition.initial,
                version=1,
                opened_at=occurred,
                updated_at=now,
                audit_head=record.hash,
                audit_count=1,
                facts=initial_facts(route),
                bsn_hash=identity,
                organisation=organisation,
                name_hashes=names,
            )
            uow.cases.add(case)
            self._plan_deadlines(uow, case, OPEN_EVENT, case.state, occurred, now)
            return _write_accepted(uow, record, case.version, fingerprint)

    def _fire(
        self,
        case_id: str,
        event: str,
        actor: Actor,
        reason: str | None,
        data: dict[str, Any],
        expect_version: int | None,
        occurred_at: datetime | None,
        key: str | None,
        fingerprint: str,
    ) -> Receipt:
        with self._uow(True) as uow:
            case = uow.cases.get(case_id, lock=True)
            if case is None:
                raise UnknownCase(case_id)
            # before anything is written, even the record of a refusal: it would quote what was typed
            self.screen_names(case, {"event": None if self.definition.event(event) else event, "reason": reason,
                                     "data": data, "actor id": actor.id, "on-behalf-of": actor.on_behalf_of,
                                     "idempotency key": key})  # fmt: skip
            now = self._clock.now()  # after the lock: recorded_at never runs backwards in a chain
            _in_supported_years("clock", now)  # before the try: a refusal record would carry that time too
            try:
                replayed = _replay(uow, key, fingerprint)
                if replayed:
                    return replayed
                if expect_version is not None and expect_version != case.version:
                    raise ConcurrentUpdate(case_id, expect_version, case.version)
                occurred = self._occurred(occurred_at, now, not_before=case.opened_at)
                if reason is not None:
                    privacy.check_text("reason", reason)
                privacy.check_payload(data)
                decision = self._engine.decide(
                    case.state, event, actor.role, reason, data, case.facts, self._route_of(case), utc_iso(occurred)
                )
            except SecondOpinionError as refusal:
                self._record_refusal(uow, case, event, actor, now, key, refusal)
                raise
            record = _next_record(
                case,
                event,
                actor,
                now,
                key,
                outcome=ACCEPTED,
                to_state=decision.to_state,
                occurred_at=occurred,
                payload=data,
                reason=reason,
                refusal=None,
            )
            moved = case.moved(decision.to_state, now, decision.facts, record.hash)
            if not uow.cases.update(moved, expected_version=case.version, expected_audit_count=case.audit_count):
                raise ConcurrentUpdate(case_id, case.version, case.version + 1)
            self._plan_deadlines(uow, moved, event, decision.to_state, occurred, now)
            return _write_accepted(uow, record, moved.version, fingerprint)

    def _plan_deadlines(
        self, uow: UnitOfWork, case: Case, event: str, to_state: str, at: datetime, now: datetime
    ) -> None:
        """Start, pause, resume or stop the case's deadlines in the command's own transaction."""
        terminal = self.definition.state(to_state).terminal
        if not terminal and event not in self._deadline_events:
            return  # most commands touch no deadline: spare them the read
        existing = {} if event == OPEN_EVENT else {d.policy: d for d in uow.deadlines.for_case(case.id)}
        for deadline in on_event(
            self.policies, self.calendars, case_id=case.id, route=case.route, event=event, terminal=terminal, at=at,
            now=now, existing=existing,
        ):  # fmt: skip
            uow.deadlines.save(deadline, new=deadline.policy not in existing)

    def deadlines_of(self, case_id: str) -> list[Deadline]:
        """The case's deadlines, each with its due moment, state and how it was computed."""
        _shaped(case_id)
        with _readable(), self._uow(False) as uow:
            if uow.cases.get(case_id) is None:
                raise UnknownCase(case_id)
            return uow.deadlines.for_case(case_id)

    def _record_refusal(
        self,
        uow: UnitOfWork,
        case: Case,
        event: str,
        actor: Actor,
        now: datetime,
        key: str | None,
        refusal: SecondOpinionError,
    ) -> None:
        """Append the refusal to the case's chain and commit; the command's data is not kept,
        since it may be what was refused (an identity leak, say)."""
        record = _next_record(
            case,
            event,
            actor,
            now,
            key,
            outcome=refusal.outcome,
            to_state=case.state,
            occurred_at=now,
            payload={},
            reason=None,
            refusal=privacy.redact(f"{type(refusal).__name__}: {refusal}"),
        )
        if not uow.cases.update(
            case.chained(record.hash), expected_version=case.version, expected_audit_count=case.audit_count
        ):
            raise ConcurrentUpdate(case.id, case.version, case.version + 1)
        uow.audit.append(record)
        uow.commit()

    def _route_of(self, case: Case) -> RouteVersion:
        version = case.facts.get("route_version", 1)
        rules = self.definition.route(case.route, version)
        if rules is None:
            raise ValidationError("route", f"case is on {case.route} version {version}, which this library lacks")
        return rules

    @staticmethod
    def _check_key(key: str | None) -> None:
        if key is not None and not (1 <= len(key) <= 200 and key.isprintable()):
            raise ValidationError("idempotency key", "must be 1-200 printable characters")
        if key is not None:
            privacy.check_text("idempotency key", key)

    def _check_actor(self, actor: Actor) -> None:
        for what, value in (("actor id", actor.id), ("on-behalf-of", actor.on_behalf_of)):
            if value is not None:
                self._check_id(what, value)
        if actor.role not in self.definition.role_names:
            raise ValidationError(
                "role", f"{actor.role!r} is not a role; known: {', '.join(self.definition.role_names)}"
            )

    @staticmethod
    def _check_id(what: str, value: str) -> None:
        if not _ACTOR_ID.fullmatch(value):
            raise ValidationError(what, "must be 3-64 characters of letters, digits and . _ : -")
        privacy.check_text(what, value)

    def _occurred(self, occurred_at: datetime | None, now: datetime, not_before: datetime | None = None) -> datetime:
        if occurred_at is None:  # the clock's now: a FixedClock (SECOND_OPINION_CLOCK) can be set anywhere
            return _in_supported_years("clock", now)
        occurred = _in_supported_years("occurred_at", as_utc(occurred_at, "occurred_at"))
        if occurred > now:
            raise ValidationError("occurred_at", f"{utc_iso(occurred)} is in the future (now is {utc_iso(now)})")
        if not_before is not None and occurred < not_before:
            raise ValidationError(
                "occurred_at", f"{utc_iso(occurred)} is before the case was opened ({utc_iso(not_before)})"
            )
        return occurred


def _in_supported_years(what: str, instant: datetime) -> datetime:
    """Deadlines count Amsterdam days of the calendars' years, so a command dated outside them could
    be recorded but never counted (the UTC test first: near year 9999 the zone conversion overflows)."""
    if not (FIRST_YEAR - 1 <= instant.year <= LAST_YEAR and FIRST_YEAR <= local_date(instant).year <= LAST_YEAR):
        raise ValidationError(what, f"{utc_iso(instant)} is outside the supported years {FIRST_YEAR}-{LAST_YEAR}")
    return instant


@contextmanager
def _readable() -> Iterator[None]:
    """A row storage cannot read back is a matter for the auditor, reported as one clear error."""
    try:
        yield
    except UnreadableRow as unreadable:
        raise AuditIntegrityError(str(unreadable)) from None


def _next_record(case: Case, event: str, actor: Actor, now: datetime, key: str | None, **fields: Any) -> AuditRecord:
    """The record that extends ``case``'s chain by one command issued from its current state."""
    return seal(
        case_id=case.id,
        seq=case.audit_count + 1,
        prev_hash=case.audit_head,
        event=event,
        from_state=case.state,
        actor_id=actor.id,
        actor_role=actor.role,
        on_behalf_of=actor.on_behalf_of,
        recorded_at=now,
        idempotency_key=key,
        **fields,
    )


MAX_REASON_CHARS = 2000
"""A reason is a sentence or a paragraph, kept forever in the audit trail: the CLI, the API and the
library share this bound."""
MAX_DATA_DEPTH = 16
MAX_DATA_BYTES = 64 * 1024
"""Event data is a few facts, not a document store: what is stored is kept forever in the audit
trail and replayed on every read, so both its nesting and its size are bounded."""


def _shaped(case_id: str) -> None:
    """An id no case can have is unknown without asking the database, which may refuse its bytes."""
    if not _ACTOR_ID.fullmatch(case_id):
        raise UnknownCase(case_id)


_DATA_ENCODER = json.JSONEncoder(allow_nan=False, ensure_ascii=False)
"""``json.dumps(data, allow_nan=False, ensure_ascii=False)``, its encoder built once."""


def _check_json(data: Mapping[str, Any]) -> None:
    """Event data is stored and hashed as JSON: refuse what JSON cannot carry, before writing."""
    if not data:
        return  # most commands carry none
    if _depth(data) > MAX_DATA_DEPTH:
        raise ValidationError("data", f"nests deeper than {MAX_DATA_DEPTH} levels")
    try:
        text = _DATA_ENCODER.encode(data)
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            "data", f"must be plain JSON (objects, lists, strings, numbers, booleans): {exc}"
        ) from None
    if any(not isinstance(key, str) for key in data):
        raise ValidationError("data", "keys must be strings")
    _check_text("data", text)
    if len(text.encode()) > MAX_DATA_BYTES:
        raise ValidationError("data", f"is larger than {MAX_DATA_BYTES // 1024} KiB as JSON")


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
"""Control characters but line breaks and tabs (\\t \\n \\r: 09, 0a, 0d)."""


def _check_text(field: str, text: str) -> None:
    """Text that every backend can store: valid Unicode, no control characters but line breaks and tabs."""
    try:
        text.encode()
    except UnicodeEncodeError:
        raise ValidationError(field, "is not valid Unicode text (it holds a lone surrogate)") from None
    if _CONTROL.search(text):
        raise ValidationError(field, "must not contain control characters (other than line breaks and tabs)")


def _depth(value: Any) -> int:
    """How deeply ``value`` nests, counted without recursion (so no input can exhaust the stack)."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, level = todo.pop()
        children = item.values() if isinstance(item, Mapping) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DATA_DEPTH:
            break
        todo.extend((child, level + 1) for child in children)
    return deepest


def _fingerprint(key: str | None, *parts: Any) -> str:
    """A stable digest of a request, so a retry can be told from a different request; only
    needed (and only computed) when the caller gave an idempotency key."""
    if key is None:
        return ""

    def encode(value: Any) -> Any:
        if isinstance(value, datetime):
            return utc_iso(as_utc(value, "occurred_at"))
        if isinstance(value, Actor):
            return [value.id, value.role, value.on_behalf_of]
        return value

    text = json.dumps([encode(p) for p in parts], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _receipt(record: AuditRecord, version: int) -> Receipt:
    assert record.to_state is not None
    return Receipt(
        case_id=record.case_id,
        event=record.event,
        from_state=record.from_state,
        to_state=record.to_state,
        version=version,
        seq=record.seq,
        occurred_at=utc_iso(record.occurred_at),
        recorded_at=utc_iso(record.recorded_at),
    )


def _replay(uow: UnitOfWork, key: str | None, fingerprint: str) -> Receipt | None:
    if key is None:
        return None
    stored = uow.keys.get(key)
    if stored is None:
        return None
    if stored.fingerprint != fingerprint:
        raise IdempotencyConflict(key)
    return Receipt(**{**stored.result, "replayed": True})


def _write_accepted(uow: UnitOfWork, record: AuditRecord, version: int, fingerprint: str) -> Receipt:
    """After the case row: the transition row, the audit record and the idempotency key of an
    accepted command, then commit; all of them land together or none does."""
    assert record.to_state is not None
    uow.transitions.add(
        Transition(record.case_id, version, record.event, record.from_state, record.to_state, record.occurred_at,
                   record.seq)
    )  # fmt: skip
    uow.audit.append(record)
    receipt = _receipt(record, version)
    if record.idempotency_key is not None:
        uow.keys.put(
            StoredResult(record.idempotency_key, fingerprint, record.case_id, receipt.as_dict(), record.recorded_at)
        )
    uow.commit()
    return receipt
