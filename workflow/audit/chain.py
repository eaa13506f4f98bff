"""The audit trail: hash-chained records, and the checks that prove a trail untouched.

Every command aimed at a case, accepted or refused, becomes one :class:`AuditRecord` in that
case's chain. A record's ``hash`` is SHA-256 over a canonical encoding of all its fields,
including ``prev_hash``, the hash of the record before it; the case row pins the chain's head
and length. Editing, removing or reordering any record therefore breaks either a hash, a link,
the numbering or the pinned head, and :func:`verify_case` names the first record where it
breaks. Since revision 0017 a record also keeps that encoding as it was hashed (``body``):
verification hashes the stored text and then checks that each field says what it says
(:func:`body_problem`), instead of rebuilding the text from the fields. The state of a case is
never trusted on its own: :func:`replay` rebuilds it from the accepted records, and
verification compares the two (state can always be rebuilt from the record of what happened).
"""

from __future__ import annotations

import hashlib
import json
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import rfc8785

from workflow.audit import jcs
from workflow.cases.case import Case, Transition
from workflow.cases.definitions import OPEN_EVENT, Definition
from workflow.cases.engine import Step, advance
from workflow.clock import utc_iso

GENESIS = "0" * 64
ACCEPTED, REJECTED, DENIED = "accepted", "rejected", "denied"
NOTED = "noted"
"""Outcome of what the library itself records about a case without moving it: deadline reminders,
breaches and recomputations (:mod:`workflow.deadlines.policies`)."""
NOTED_EVENTS = ("deadline_reminder", "deadline_breached", "deadline_recomputed")
ENCODING_VERSION = 2
"""The encoding new records are hashed in. 1: the fields as Python's ``json`` writes them with
sorted keys and no whitespace (records before issue 17 keep it, and keep verifying). 2: the same
fields and ``channel``, as RFC 8785 (JCS) canonical JSON, which any language reproduces byte for
byte (docs/audit-format.md)."""
ENCODINGS = (1, 2)


@dataclass(frozen=True)
class AuditRecord:
    case_id: str
    seq: int
    event: str
    outcome: str
    from_state: str | None
    to_state: str | None
    actor_id: str
    actor_role: str
    on_behalf_of: str | None
    occurred_at: datetime
    recorded_at: datetime
    idempotency_key: str | None
    payload: Mapping[str, Any]
    reason: str | None
    refusal: str | None
    prev_hash: str
    hash: str
    sequence: int | None = field(default=None, compare=False)
    """Global position in the audit table, assigned by storage; not part of the hash."""
    channel: str | None = None
    """Through what the command came (:attr:`workflow.cases.case.Actor.channel`); None before encoding 2."""
    encoding: int = 1
    """How this record is hashed (:data:`ENCODING_VERSION`); stored with it."""
    body: str | None = field(default=None, compare=False, repr=False)
    """The very text its hash is taken over (:func:`hash_input`, as UTF-8 text), kept from the moment
    it was sealed and stored beside the columns (schema revision 0017). Why: verification hashes the
    stored bytes, as a transparency log hashes its entries, instead of rebuilding them field by field
    (which cost 10 times the hashing, docs/benchmarks.md), and then checks separately that the
    columns say what those bytes say (:func:`body_problem`). None on records sealed before, whose
    hash is rebuilt from the fields as it always was."""


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
"""What ``json.dumps`` with these options builds on every call, built once."""


def canonical(fields: Mapping[str, Any]) -> bytes:
    """The exact bytes that are hashed: sorted keys, no whitespace, UTF-8, UTC ISO instants."""
    return _CANONICAL.encode(fields).encode()


def _utc_text(value: datetime) -> str:
    """:func:`utc_iso`, without converting an instant that is already in UTC (as stored ones are)."""
    text = value.isoformat(timespec="microseconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else utc_iso(value)


def hashed_fields(record: AuditRecord) -> dict[str, Any]:
    fields = _v1_fields(record)
    if record.encoding >= 2:
        fields["v"] = record.encoding
        fields["channel"] = record.channel
    return fields


def _v1_fields(record: AuditRecord) -> dict[str, Any]:
    return {
        "v": 1,
        "case_id": record.case_id,
        "seq": record.seq,
        "event": record.event,
        "outcome": record.outcome,
        "from_state": record.from_state,
        "to_state": record.to_state,
        "actor_id": record.actor_id,
        "actor_role": record.actor_role,
        "on_behalf_of": record.on_behalf_of,
        "occurred_at": _utc_text(record.occurred_at),
        "recorded_at": _utc_text(record.recorded_at),
        "idempotency_key": record.idempotency_key,
        "payload": record.payload if type(record.payload) is dict else dict(record.payload),
        "reason": record.reason,
        "refusal": record.refusal,
        "prev_hash": record.prev_hash,
    }


def hash_input(record: AuditRecord) -> bytes:
    """The exact bytes a record's hash is taken over, in its own encoding."""
    if record.encoding == 1:
        return canonical(hashed_fields(record))
    written = _jcs_record(record)
    return written if written is not None else rfc8785.dumps(hashed_fields(record))


_JCS_RECORD = (
    '{"actor_id":%s,"actor_role":%s,"case_id":%s,"channel":%s,"event":%s,"from_state":%s,'
    '"idempotency_key":%s,"occurred_at":%s,"on_behalf_of":%s,"outcome":%s,"payload":%s,"prev_hash":%s,'
    '"reason":%s,"recorded_at":%s,"refusal":%s,"seq":%d,"to_state":%s,"v":%d}'
)
"""An encoding-2 record as JCS writes it: the keys of :func:`hashed_fields` in JCS (UTF-16) order."""


def _jcs_record(record: AuditRecord) -> bytes | None:
    """:func:`hashed_fields` as JCS bytes, written field by field with the C string encoder instead
    of through ``rfc8785`` (the hashing part of verify, docs/benchmarks.md); None when a field is
    outside the domain where that is byte-identical (:mod:`workflow.audit.jcs`), and the caller
    falls back to the reference implementation. ``tests/unit/test_jcs.py`` holds the two equal."""
    texts = (record.actor_id, record.actor_role, record.case_id, record.channel, record.event,
             record.from_state, record.idempotency_key, record.on_behalf_of, record.outcome,
             record.prev_hash, record.reason, record.refusal, record.to_state)  # fmt: skip
    for text in texts:
        if text is not None and type(text) is not str:
            return None
    if type(record.seq) is not int or not 0 <= record.seq <= jcs.SAFE_INTEGER or type(record.encoding) is not int:
        return None
    string = jcs.string
    occurred = string(_utc_text(record.occurred_at))
    recorded = occurred if record.recorded_at == record.occurred_at else string(_utc_text(record.recorded_at))
    try:
        return (_JCS_RECORD % (
            string(record.actor_id), string(record.actor_role), string(record.case_id), string(record.channel),
            string(record.event), string(record.from_state), string(record.idempotency_key), occurred,
            string(record.on_behalf_of), string(record.outcome), jcs.mapping(record.payload),
            string(record.prev_hash), string(record.reason), recorded, string(record.refusal), record.seq,
            string(record.to_state), record.encoding,
        )).encode()  # fmt: skip
    except (UnicodeEncodeError, rfc8785.CanonicalizationError):
        return None  # a lone surrogate, or data JCS cannot carry: the reference names the problem


def compute_hash(record: AuditRecord) -> str:
    if record.encoding not in ENCODINGS:
        return ""  # no hash matches: verification names the record
    return hashlib.sha256(hash_input(record)).hexdigest()


def seal(**fields: Any) -> AuditRecord:
    """Build a record and fill in its hash and body; ``fields`` are every field but those two."""
    draft = AuditRecord(hash="", **fields)
    if draft.encoding not in ENCODINGS:
        return draft  # no hash matches: verification names the record
    written = hash_input(draft)
    object.__setattr__(draft, "hash", hashlib.sha256(written).hexdigest())  # sealed once, here, before anyone sees it
    if draft.encoding >= 2:
        object.__setattr__(draft, "body", written.decode())
    return draft


def stored_hash(record: AuditRecord) -> str:
    """The hash of what is stored: SHA-256 over the record's body where it has one, else over the
    hash input rebuilt from its fields (:func:`compute_hash`). This is the hashing part of
    verification; :func:`body_problem` is the part that ties the body to the fields."""
    return compute_hash(record) if record.body is None else body_hash(record.body)


def body_hash(body: object) -> str:
    """SHA-256 over a stored body's UTF-8 bytes; "" (which no hash matches) for what no sealed
    record holds: a body that is not text (SQLite keeps a BLOB in a TEXT column), or a lone
    surrogate. Shared with the access log's records (:func:`workflow.access.log.stored_hash`)."""
    if type(body) is not str:
        return ""
    try:
        return hashlib.sha256(body.encode()).hexdigest()
    except UnicodeEncodeError:
        return ""


_BODY_TEXTS = ("actor_id", "actor_role", "case_id", "channel", "event", "from_state", "idempotency_key",
               "on_behalf_of", "outcome", "prev_hash", "reason", "refusal", "to_state")  # fmt: skip
_BODY_KEYS = frozenset((*_BODY_TEXTS, "occurred_at", "recorded_at", "payload", "seq", "v"))
_TEXTS_IN_BODY = operator.itemgetter(*_BODY_TEXTS)
_TEXTS_OF_RECORD = operator.attrgetter(*_BODY_TEXTS)
_INSTANT_SHAPE = "0000-00-00T00:00:00.000000Z"
_SORTED = orjson.OPT_SORT_KEYS
_STRICT = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
"""The columns' payload as orjson writes it, refusing an integer beyond 2^53 as JCS does."""


def read_body(body: object) -> Any:
    """A stored body decoded (``orjson``: a third of the standard parser's time); None for one that
    is not text, which holds no record's fields. Raises ValueError on text that is not JSON. Shared
    with the access log's records (:func:`workflow.access.log.body_problem`)."""
    return orjson.loads(body) if type(body) is str else None


def body_problem(record: AuditRecord) -> str | None:
    """What the record's fields (its columns) say that its stored body does not, or None.

    The body is what the hash, the chain and the transparency log cover; the columns are what the
    library reads and queries. A column edited behind the library's back leaves the body, and so
    every hash, intact, and is found here, by name. Values are compared by type as well as value
    (JSON ``true`` is not ``1``), and instants must be written as :func:`hash_input` writes them.
    The body is read with ``orjson``, a third of the standard parser's time (docs/benchmarks.md)."""
    if record.body is None:
        return None
    try:
        stored = read_body(record.body)
    except ValueError:
        return "its stored body is not JSON (the record was altered)"
    if type(stored) is not dict or stored.keys() != _BODY_KEYS:
        return "its stored body does not hold a record's fields (the record was altered)"
    if (
        _TEXTS_IN_BODY(stored) == _TEXTS_OF_RECORD(record)  # the columns are text: equal means the same text
        and type(stored["seq"]) is int and stored["seq"] == record.seq
        and type(stored["v"]) is int and stored["v"] == record.encoding
        and _instant(stored["occurred_at"]) == record.occurred_at
        and _instant(stored["recorded_at"]) == record.recorded_at
        and _same_payload(stored["payload"], record.payload)
    ):  # fmt: skip
        return None
    differ = [name for name in _BODY_TEXTS if not jcs.same(stored[name], getattr(record, name))]
    for name in ("occurred_at", "recorded_at"):
        if _instant(stored[name]) != getattr(record, name):
            differ.append(name)
    if type(stored["seq"]) is not int or stored["seq"] != record.seq:
        differ.append("seq")
    if type(stored["v"]) is not int or stored["v"] != record.encoding:
        differ.append("encoding")
    if not jcs.same(stored["payload"], record.payload):
        differ.append("payload")
    names = ", ".join(sorted(differ)) or "its values"  # not one by itself: whole, they should not differ
    verb = "differs" if len(differ) == 1 else "differ"
    return f"contents do not match its hash (the record was altered: {names} {verb} from its hashed body)"


def _same_payload(stored: Any, payload: Mapping[str, Any]) -> bool:
    """:func:`jcs.same`, quicker where it can be: equal values and equal ``orjson`` text (which tells
    ``true`` from ``1``, in C) settle it; otherwise (``1`` against ``1.0``, which JCS writes alike; a
    tuple, which is no list to Python; what ``orjson`` cannot write; a real difference) the walk decides."""
    try:
        if stored == payload and orjson.dumps(stored, option=_SORTED) == orjson.dumps(payload, option=_STRICT):
            return True
    except TypeError:  # a mapping that is not a dict, an integer JCS refuses (beyond 2^53), found by review
        pass
    return jcs.same(stored, payload)


def _instant(text: Any) -> datetime | None:
    """An instant as the body writes it (``YYYY-MM-DDTHH:MM:SS.ffffffZ``), else None."""
    if type(text) is not str or len(text) != len(_INSTANT_SHAPE) or text[10] != "T" or text[19] != "." \
            or text[-1] != "Z":  # fmt: skip
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


# --- replay and verification ------------------------------------------------------------------


def replay(records: Sequence[AuditRecord]) -> str | None:
    """The state the accepted records lead to (None for an empty trail)."""
    state: str | None = None
    for record in records:
        if record.outcome == ACCEPTED:
            state = record.to_state
    return state


def replay_facts(records: Sequence[AuditRecord], definition: Definition) -> dict[str, Any]:
    """The facts the accepted records lead to, by running each through the transition function again."""
    facts: dict[str, Any] = {}
    state: str | None = None
    for record in records:
        if record.outcome != ACCEPTED:
            continue
        at = _utc_text(record.occurred_at)
        step = advance(definition, state, record.event, facts, record.payload, record.reason, record.actor_role, at)
        if step is None:  # not a transition of the table: verify_case names the record
            return facts
        state, facts = step.to_state, step.facts
    return facts


@dataclass(frozen=True)
class Finding:
    """The first thing wrong with one case's trail."""

    case_id: str
    seq: int | None
    problem: str

    def __str__(self) -> str:
        where = f"record {self.seq}" if self.seq is not None else "case row"
        return f"case {self.case_id}, {where}: {self.problem}"


@dataclass(frozen=True)
class VerifyReport:
    cases: int
    records: int
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return not self.findings


def verify_case(
    case: Case, records: Sequence[AuditRecord], transitions: Sequence[Transition], definition: Definition
) -> Finding | None:
    """Check one case's chain, replay and transition log; return the first problem or None.

    ``records`` must be in storage order (global sequence), so that a swap of two rows shows
    up as out-of-order numbering even when each row is intact.
    """
    prev = GENESIS
    state: str | None = None
    facts: dict[str, Any] = {}
    accepted: list[AuditRecord] = []
    for expected_seq, record in enumerate(records, start=1):

        def bad(problem: str, at: AuditRecord = record) -> Finding:
            return Finding(case.id, at.seq, problem)

        if record.case_id != case.id:
            return bad(f"belongs to case {record.case_id}")
        if record.seq != expected_seq:
            return bad(f"found where record {expected_seq} was expected (a record was removed or reordered)")
        if stored_hash(record) != record.hash:
            return bad("contents do not match its hash (the record was altered)")
        problem = body_problem(record)
        if problem is not None:
            return bad(problem)
        if record.prev_hash != prev:
            return bad("prev_hash does not match the hash of the record before it")
        prev = record.hash
        step = _replay_step(record, state, facts, definition)
        if isinstance(step, str):
            return bad(step)
        state, facts = step.to_state, step.facts
        if record.outcome == ACCEPTED:
            accepted.append(record)
    if records and records[0].payload.get("bsn_hmac") != case.bsn_hash:
        return Finding(case.id, None, "case row's BSN hash differs from the one recorded when it was opened")
    if records and tuple(records[0].payload.get("name_hmacs", ())) != tuple(case.name_hashes):
        return Finding(case.id, None, "case row's name hashes differ from those recorded when it was opened")
    if records and records[0].payload.get("organisation", "local") != case.organisation:
        return Finding(case.id, None, "case row's organisation differs from the one recorded when it was opened")
    if len(records) != case.audit_count:
        return Finding(case.id, None, f"case row counts {case.audit_count} records, the chain has {len(records)}")
    if prev != case.audit_head:
        return Finding(case.id, None, "case row's head hash does not match the chain's last record")
    if state != case.state:
        return Finding(case.id, None, f"stored state {case.state!r} differs from replayed state {state!r}")
    if len(accepted) != case.version:
        return Finding(case.id, None, f"stored version {case.version} differs from {len(accepted)} accepted records")
    stored_facts, replayed_facts = canonical(case.facts), canonical(facts)
    if stored_facts != replayed_facts and json.loads(stored_facts) != json.loads(replayed_facts):
        return Finding(case.id, None, "stored facts differ from the facts replayed from the audit trail")
    expected = [(i, r.event, r.from_state, r.to_state, r.seq) for i, r in enumerate(accepted, start=1)]
    stored = [(t.version, t.event, t.from_state, t.to_state, t.audit_seq) for t in transitions]
    if expected != stored:
        return Finding(case.id, None, "transition log does not match the accepted audit records")
    return None


def _replay_step(record: AuditRecord, state: str | None, facts: dict[str, Any], definition: Definition) -> str | Step:
    """The problem with ``record`` as the next step of a replay at ``state``, or where it leads."""
    if record.outcome not in (ACCEPTED, REJECTED, DENIED, NOTED):
        return f"unknown outcome {record.outcome!r}"
    if state is None and (record.event != OPEN_EVENT or record.outcome != ACCEPTED):
        return "the chain does not start with the accepted opening of the case"
    if state is not None and record.from_state != state:
        return f"starts from {record.from_state!r} but replay is at {state!r}"
    if record.outcome == NOTED and record.event not in NOTED_EVENTS:
        return f"{record.event!r} is not something the library notes"
    if record.outcome != ACCEPTED:
        assert state is not None
        return Step(state, facts) if record.to_state == state else f"a {record.outcome} record changed state"
    at = _utc_text(record.occurred_at)
    step = advance(definition, state, record.event, facts, record.payload, record.reason, record.actor_role, at)
    if step is None or record.to_state != step.to_state:
        if state is None:
            return "the chain does not start with the accepted opening of the case"
        return f"{record.event} from {state!r} to {record.to_state!r} is not a transition of the table"
    return step
