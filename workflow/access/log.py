"""The access log (NEN 7513): who looked at which case, when, from where, and what they got.

The audit trail records what was *done* to a case; this log records who *read* it. Every read
of a case, its history, its deadlines, an export or the access log itself becomes one
:class:`AccessRecord`. Records form one hash chain across the whole log (``prev_hash`` is the
hash of the record before it, in storage order), so removing, editing or reordering a record
breaks a link that :func:`verify_chain` names. Storage appends only: the table refuses updates
and deletes, as the audit table does.

A record names the patient only by the pseudonymous ``patient_ref`` of the case; the token's
actor id and organisation say who, ``on_behalf_of`` for whom they acted, ``client`` from where,
``channel`` through what (``api``, ``web``) and ``credential`` with which proof (an API token's id,
or ``oidc:<issuer hash>:<subject>`` for a bearer JWT of the configured identity provider): every use
of a token to read case data is a record naming the token. Records from revision 0015 on are hashed
as RFC 8785 (JCS) canonical JSON with those two fields (:data:`ENCODING_VERSION` 3); records
written before keep their encoding and verify as before.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import rfc8785

from workflow.audit import jcs
from workflow.audit.chain import GENESIS, body_hash, canonical, read_body
from workflow.clock import utc_iso

LEGACY_ENCODING = 1
"""Stored ``encoding`` of records before revision 0015: sorted-key JSON, hashed as ``v`` 1, or ``v`` 2
when it names the cases a list page showed (:data:`PAGE_ENCODING_VERSION`)."""
PAGE_ENCODING_VERSION = 2
"""A record that names the cases a list page showed (``cases``) is hashed as version 2, with them;
every other record is hashed exactly as before, so the records written before still verify."""
ENCODING_VERSION = 3
"""New records: every field of version 1 and 2, plus ``channel`` and ``credential``, as RFC 8785
(JCS) canonical JSON; ``cases`` only on a list page, as in version 2."""
ENCODINGS = (LEGACY_ENCODING, ENCODING_VERSION)

GRANTED, DENIED, NOT_FOUND = "granted", "denied", "not-found"
OUTCOMES = (GRANTED, DENIED, NOT_FOUND)
"""``not-found`` is what a caller of another organisation got: the case exists, but they were
told it does not. The record still names the case, so its own organisation's auditors see the attempt."""

KINDS = {
    "case": "read a case (state, facts, deadlines)",
    "list": "a page of a list of cases was served (one record per page, naming every case shown; before "
    "issue 16, one record per case listed)",
    "history": "read a case's audit trail",
    "deadlines": "read a case's deadlines",
    "export": "a case's audit records were exported",
    "verify": "a case's audit trail was verified",
    "fhir-task": "read a case as a FHIR Task",
    "fhir-audit": "read a case's audit records as FHIR AuditEvents",
    "access-log": "read the access log (one record per case whose accesses were shown)",
    "next": "read what the caller's role may do to a case now (next steps)",
    "check": "asked what firing an event at a case would do (fire --check; nothing is written to the case)",
    "fire": "fired an event at a case it may not see (refused; other commands are in the audit trail)",
    "open": "tried to open a case with a role that may not (refused)",
    "report": "read a report: figures over the organisation's cases, one record naming no case",
    "reference": "used a stateless answer (coverage, providers, working days): one record naming no case",
    "events": "a page of the change feed was served (GET /events: one record per page, naming every case in it)",
    "subscriptions": "listed the organisation's webhook subscriptions, or tried to read or manage them with a role "
    "that may not (refused)",
    "subscription-added": "added a webhook subscription (its URL and secret go to the organisation's change feed)",
    "subscription-removed": "removed a webhook subscription",
    "subscription-rotated": "rotated a webhook subscription's signing secret",
}
"""Every kind of access that is logged; the API docs are generated from this table."""


@dataclass(frozen=True)
class AccessRecord:
    at: datetime
    actor_id: str
    actor_role: str
    organisation: str
    on_behalf_of: str | None
    kind: str
    outcome: str
    client: str | None
    case_id: str | None
    patient_ref: str | None
    case_organisation: str | None
    """Whose case it is: the organisation whose auditors see this record."""
    prev_hash: str
    hash: str
    sequence: int | None = field(default=None, compare=False)
    """Position in the log, assigned by storage; not part of the hash (the chain already orders)."""
    cases: tuple[str, ...] | None = None
    """A list page: the ids of the cases it showed, in the order shown (``case_id`` is then None).
    Part of the hash when present; None on every other record, and on those written before."""
    channel: str | None = None
    """``api`` or ``web`` (:attr:`workflow.access.rules.Principal.via`); None before encoding 3."""
    credential: str | None = None
    """The token id, or ``oidc:<issuer hash>:<subject>``; None before encoding 3."""
    encoding: int = LEGACY_ENCODING
    """How this record is hashed (:data:`ENCODINGS`); stored with it."""
    body: str | None = field(default=None, compare=False, repr=False)
    """The text its hash is taken over, kept from sealing and stored beside the columns (revision
    0017): verification hashes it and checks the columns against it (:func:`body_problem`), as for
    audit records (:attr:`workflow.audit.chain.AuditRecord.body`). None on records sealed before."""

    def names(self, case_id: str) -> bool:
        """Whether this record is about ``case_id``: its own case, or a list page that showed it."""
        return self.case_id == case_id or (self.cases is not None and case_id in self.cases)


def hashed_fields(record: AccessRecord) -> dict[str, Any]:
    page = {} if record.cases is None else {"v": PAGE_ENCODING_VERSION, "cases": list(record.cases)}
    fields = _legacy_fields(record) | page
    if record.encoding >= ENCODING_VERSION:
        fields |= {"v": record.encoding, "channel": record.channel, "credential": record.credential}
    return fields


def _legacy_fields(record: AccessRecord) -> dict[str, Any]:
    return {
        "v": LEGACY_ENCODING,
        "at": utc_iso(record.at),
        "actor_id": record.actor_id,
        "actor_role": record.actor_role,
        "organisation": record.organisation,
        "on_behalf_of": record.on_behalf_of,
        "kind": record.kind,
        "outcome": record.outcome,
        "client": record.client,
        "case_id": record.case_id,
        "patient_ref": record.patient_ref,
        "case_organisation": record.case_organisation,
        "prev_hash": record.prev_hash,
    }


def hash_input(record: AccessRecord) -> bytes:
    """The exact bytes a record's hash is taken over, in its own encoding."""
    if record.encoding == LEGACY_ENCODING:
        return canonical(hashed_fields(record))
    if record.encoding == ENCODING_VERSION:
        return rfc8785.dumps(hashed_fields(record))
    raise ValueError(f"access record encoding {record.encoding} is not one of {ENCODINGS}")


def compute_hash(record: AccessRecord) -> str:
    return hashlib.sha256(hash_input(record)).hexdigest()


def seal(**fields: Any) -> AccessRecord:
    """A record with its hash filled in; ``fields`` are every field but ``hash``."""
    if fields["kind"] not in KINDS:
        raise ValueError(f"unknown access kind {fields['kind']!r}")
    if fields["outcome"] not in OUTCOMES:
        raise ValueError(f"unknown access outcome {fields['outcome']!r}")
    draft = AccessRecord(hash="", **fields)
    written = hash_input(draft)
    object.__setattr__(draft, "hash", hashlib.sha256(written).hexdigest())  # sealed once, here, before anyone sees it
    if draft.encoding >= ENCODING_VERSION:
        object.__setattr__(draft, "body", written.decode())
    return draft


def stored_hash(record: AccessRecord) -> str:
    """SHA-256 over the stored body where there is one, else over the hash input rebuilt from the fields."""
    return compute_hash(record) if record.body is None else body_hash(record.body)


def body_problem(record: AccessRecord) -> str | None:
    """What the record's fields (its columns) say that its stored body does not, by name; or None."""
    if record.body is None:
        return None
    try:
        stored = read_body(record.body)
    except ValueError:
        return "its stored body is not JSON (it was edited)"
    expected = hashed_fields(record)
    if type(stored) is not dict or stored.keys() != expected.keys():
        return "its stored body does not hold its fields (it was edited)"
    differ = sorted("encoding" if name == "v" else name for name, value in expected.items()
                    if not jcs.same(stored[name], value))  # fmt: skip
    if differ:
        verb = "differs" if len(differ) == 1 else "differ"
        return f"its content does not match its hash (it was edited: {', '.join(differ)} {verb} from its hashed body)"
    return None


def chain(head: str, drafts: Sequence[dict[str, Any]]) -> list[AccessRecord]:
    """Seal ``drafts`` in order after the record whose hash is ``head`` (GENESIS for an empty log)."""
    out: list[AccessRecord] = []
    for draft in drafts:
        record = seal(prev_hash=head, **draft)
        out.append(record)
        head = record.hash
    return out


def verify_chain(records: Sequence[AccessRecord]) -> list[str]:
    """Problems with the whole log in storage order, first break first; empty when untouched."""
    problems = []
    expected = GENESIS
    for record in records:
        where = f"access record {record.sequence}"
        if record.prev_hash != expected:
            problems.append(f"{where}: does not follow the record before it (a record was removed or reordered)")
        if record.encoding not in ENCODINGS:
            problems.append(f"{where}: its encoding {record.encoding} is not one this version knows (edited?)")
        elif stored_hash(record) != record.hash:
            problems.append(f"{where}: its content does not match its hash (it was edited)")
        elif (problem := body_problem(record)) is not None:
            problems.append(f"{where}: {problem}")
        expected = record.hash
    return problems


def verify_shown(records: Sequence[AccessRecord], shown: Sequence[tuple[str, str]]) -> list[str]:
    """Problems with the index of cases shown (``access_cases_shown``: one ``(prev_hash, case_id)``
    row per case a list page showed) against the pages themselves, whose lists the chain covers.

    Why: "who saw this patient" (:meth:`AccessLogStore.for_case`) finds list pages through that
    index, which no hash covers. A row removed hides a page from a case's access log; a row added
    makes a page seem to have shown a case it did not. Either is named here, by the record's
    position; the chain itself is :func:`verify_chain`'s."""
    expected = {(r.prev_hash, c) for r in records for c in set(r.cases or ())}
    stored = set(shown)
    where = {r.prev_hash: r.sequence for r in records}
    problems = []
    for prev_hash, case_id in sorted(expected - stored, key=lambda row: (where[row[0]] or 0, row[1])):
        problems.append(f"access record {where[prev_hash]}: the index of cases shown lacks case {case_id} "
                        "(a row was removed: the case's access log no longer finds this page)")
    foreign_last = lambda row: (row[0] not in where, where.get(row[0]) or 0, row)  # noqa: E731
    for prev_hash, case_id in sorted(stored - expected, key=foreign_last):
        if prev_hash in where:
            problems.append(f"access record {where[prev_hash]}: the index of cases shown names case {case_id}, "
                            "which the page did not show (a row was added)")
        else:
            problems.append(f"the index of cases shown names case {case_id} for a record that is not in the log "
                            "(a row was added)")
    return problems


def as_dict(record: AccessRecord) -> dict[str, Any]:
    """Every field, ``channel`` and ``credential`` too (None on records written before them)."""
    return {
        "sequence": record.sequence, **hashed_fields(record), "channel": record.channel,
        "credential": record.credential, "hash": record.hash,
    }  # fmt: skip


def patient_view(
    records: Sequence[AccessRecord], patient: str, cases: Collection[str], patient_roles: Collection[str]
) -> list[AccessRecord]:
    """What a patient sees of the access log: who of the staff read their own case, and their own
    reads. Left out: records about any other case (an attempt on another case is no business of
    theirs), records made by another patient's token (its actor id is that patient's reference:
    another patient tried to read this case), and of every record kept, the client address (where
    the staff member sat) and the chain hashes (which would let a patient test guesses of an
    address against the hash; the chain is verified by the operator, ``access-log verify``).
    A list page that showed their case is kept, naming their case alone."""
    own = set(cases)
    return [
        replace(r, client=None, prev_hash="", hash="", cases=only_own(r.cases, own), body=None)
        for r in records
        if any(r.names(c) for c in own) and (r.actor_role not in patient_roles or r.actor_id == patient)
    ]


def only_own(shown: tuple[str, ...] | None, own: Collection[str]) -> tuple[str, ...] | None:
    """Of a list page's cases, the patient's own: which other cases were on the page is none of theirs."""
    return None if shown is None else tuple(c for c in shown if c in own)
