"""Recording: what every command writes, in the same shape whoever issues it.

The receipt of an accepted command, the next record of a case's chain, the record of a refusal,
the request fingerprint behind idempotency keys and the replay of a stored result. Commands
(:mod:`workflow.service.commands`) and the deadline sweep (:mod:`workflow.service.deadlines`)
both append to a case's chain through :func:`next_record`, so a chain has one writer's rules.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from workflow import privacy
from workflow.audit.chain import ENCODING_VERSION, AuditRecord, seal
from workflow.cases.case import Actor, Case, Transition
from workflow.clock import Clock, as_utc, forward, utc_iso
from workflow.errors import AuditIntegrityError, ConcurrentUpdate, IdempotencyConflict, SecondOpinionError
from workflow.ports import KeyTaken, StoredResult, UnitOfWork, UnreadableRow
from workflow.service import inputs
from workflow.service.publishing import publish


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

    @classmethod
    def of(cls, record: AuditRecord, version: int) -> Receipt:
        assert record.to_state is not None
        return cls(
            case_id=record.case_id,
            event=record.event,
            from_state=record.from_state,
            to_state=record.to_state,
            version=version,
            seq=record.seq,
            occurred_at=utc_iso(record.occurred_at),
            recorded_at=utc_iso(record.recorded_at),
        )


def stamp(uow: UnitOfWork, clock: Clock, tolerance: timedelta) -> datetime:
    """The time of the records this write unit appends: the clock's now, read while the unit holds
    the audit log's end (:meth:`~workflow.ports.AuditLog.last_recorded_at`), and never earlier
    than the last record of any case (:func:`~workflow.clock.forward`). Called before a record is
    built (its hash covers the time), the refusal record's included: a clock too far behind
    raises :class:`~workflow.errors.ClockBehind`, a clock outside the calendars' years a
    :class:`~workflow.errors.ValidationError`, and nothing at all is written."""
    last = uow.audit.last_recorded_at()
    return forward(inputs.in_supported_years("clock", clock.now()), last, tolerance)


def next_record(case: Case, event: str, actor: Actor, now: datetime, key: str | None, **fields: Any) -> AuditRecord:
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
        channel=actor.channel,
        encoding=ENCODING_VERSION,
        **fields,
    )


def fingerprint(key: str | None, *parts: Any) -> str:
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


def replayed(uow: UnitOfWork, key: str | None, fingerprint: str) -> Receipt | None:
    """The stored receipt of an earlier request with this key; a different request under it is refused."""
    if key is None:
        return None
    stored = uow.keys.get(key)
    if stored is None:
        return None
    if stored.fingerprint != fingerprint:
        raise IdempotencyConflict(key)
    return Receipt(**{**stored.result, "replayed": True})


def write_accepted(uow: UnitOfWork, record: AuditRecord, case: Case, fingerprint: str) -> Receipt:
    """After the case row (``case``, as written): the transition row, the audit record, the change
    event with its webhook deliveries (:func:`~workflow.service.publishing.publish`) and the
    idempotency key of an accepted command, then commit; all of them land together or none does."""
    assert record.to_state is not None
    version = case.version
    uow.transitions.add(
        Transition(record.case_id, version, record.event, record.from_state, record.to_state, record.occurred_at,
                   record.seq)
    )  # fmt: skip
    uow.audit.append(record)
    publish(uow, record, case)
    receipt = Receipt.of(record, version)
    if record.idempotency_key is not None:
        uow.keys.put(
            StoredResult(record.idempotency_key, fingerprint, record.case_id, receipt.as_dict(), record.recorded_at)
        )
    uow.commit()
    return receipt


def record_refusal(
    uow: UnitOfWork, case: Case, event: str, actor: Actor, now: datetime, key: str | None, refusal: SecondOpinionError
) -> None:
    """Append the refusal to the case's chain and commit; the command's data is not kept,
    since it may be what was refused (an identity leak, say).

    Every text the record keeps of the command (event name, actor id, on-behalf-of, idempotency
    key) went through the screens before the command got here; should one still read as a BSN it
    is kept as :data:`~workflow.privacy.WITHHELD`, and the refusal's message is masked
    (:func:`~workflow.privacy.redact`): a refusal record never keeps what failed a screen."""
    who = Actor(_kept(actor.id) or actor.id, actor.role, _kept(actor.on_behalf_of), actor.channel)
    record = next_record(
        case, _kept_event(event), who, now, _kept(key), outcome=refusal.outcome, to_state=case.state,
        occurred_at=now, payload={}, reason=None, refusal=privacy.redact(f"{type(refusal).__name__}: {refusal}"),
    )  # fmt: skip
    if not uow.cases.update(
        case.chained(record.hash), expected_version=case.version, expected_audit_count=case.audit_count
    ):
        raise ConcurrentUpdate(case.id, case.version, case.version + 1)
    uow.audit.append(record)
    uow.commit()


def _kept(value: str | None) -> str | None:
    """``value`` as a refusal record may keep it: withheld if it reads as a BSN."""
    return None if value is None else privacy.WITHHELD if privacy.contains_bsn(value) else value


def _kept_event(event: str) -> str:
    """An event name as a refusal record may keep it: withheld, too, when it holds eight or more
    digits however they are spaced (no event of the table has one; a refused command's event name
    is kept for ever, and one such as ``x_1_1_1_2_2_2_3_3_3`` may be a BSN the screens cannot
    tell from prose). :func:`~workflow.service.inputs.check_event_name` refuses those before a
    command runs; this holds for callers that reach the recording directly."""
    if privacy.contains_bsn(event) or privacy.many_digits(event):
        return privacy.WITHHELD
    return event


def retrying(command: Callable[[], Receipt]) -> Receipt:
    """Run once more if a concurrent writer took our idempotency key: the rerun replays it."""
    with readable():
        try:
            return command()
        except KeyTaken:
            return command()


@contextmanager
def readable() -> Iterator[None]:
    """A row storage cannot read back is a matter for the auditor, reported as one clear error."""
    try:
        yield
    except UnreadableRow as unreadable:
        raise AuditIntegrityError(str(unreadable)) from None
