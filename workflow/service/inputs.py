"""Typed input, checked before anything is read or written.

One rule per kind of value, shared by the library, the CLI and the API: identifiers, event names,
event data, plain text, the supported years, and the bounds of each. Every check raises
:class:`~workflow.errors.ValidationError` naming the field (or :class:`~workflow.errors.UnknownCase`
for an id no case can have) and changes nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import rfc8785

from workflow import privacy
from workflow.cases.case import Actor, Case
from workflow.cases.definitions import Definition, RouteVersion
from workflow.clock import as_utc, utc_iso
from workflow.deadlines.calendar_data import FIRST_YEAR
from workflow.deadlines.calendars import LAST_YEAR, local_date
from workflow.errors import UnknownCase, ValidationError
from workflow.service.runtime import Runtime

IDENTIFIER = privacy.PATIENT_REF_PATTERN
"""The one identifier rule: actor ids, organisations, case ids, token ids (3-64 of letters,
digits and ``. _ : -``)."""

MAX_REASON_CHARS = 2000
"""A reason is a sentence or a paragraph, kept forever in the audit trail: the CLI, the API and the
library share this bound."""
MAX_DATA_DEPTH = 16
MAX_DATA_BYTES = 64 * 1024
"""Event data is a few facts, not a document store: what is stored is kept forever in the audit
trail and replayed on every read, so both its nesting and its size are bounded."""
MAX_KEY_CHARS = 200

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
"""Control characters but line breaks and tabs (\\t \\n \\r: 09, 0a, 0d)."""

_DATA_ENCODER = json.JSONEncoder(allow_nan=False, ensure_ascii=False)
"""``json.dumps(data, allow_nan=False, ensure_ascii=False)``, its encoder built once."""


def check_id(what: str, value: str) -> None:
    if not IDENTIFIER.fullmatch(value):
        raise ValidationError(what, "must be 3-64 characters of letters, digits and . _ : -")
    privacy.check_text(what, value)


def check_actor(actor: Actor, definition: Definition) -> None:
    for what, value in (("actor id", actor.id), ("on-behalf-of", actor.on_behalf_of)):
        if value is not None:
            check_id(what, value)
    if actor.role not in definition.role_names:
        raise ValidationError("role", f"{actor.role!r} is not a role; known: {', '.join(definition.role_names)}")


def check_key(key: str | None) -> None:
    """An idempotency key: printable, bounded, and no patient identity in it."""
    if key is None:
        return
    if not (1 <= len(key) <= MAX_KEY_CHARS and key.isprintable()):
        raise ValidationError("idempotency key", f"must be 1-{MAX_KEY_CHARS} printable characters")
    privacy.check_text("idempotency key", key)


def check_event_name(event: str) -> None:
    """A lower-case name, screened like every other text: an unknown event is refused *and
    recorded* (the refusal names it), so a BSN spelled as one (``bsn_111_222_333``) must be
    refused here, before anything is read or written."""
    if not privacy.EVENT_NAME.fullmatch(event):
        raise ValidationError("event", "must be a lower-case name such as 'refer' (see `second-opinion fire --help`)")
    privacy.check_text("event", event)
    if privacy.many_digits(event):  # no event of the table has a digit; nine, however spaced, may be a BSN
        problem = f"holds {privacy.BSN_MIN_DIGITS} or more digits; an event is a name such as 'refer'"
        raise ValidationError("event", problem)


def check_reason(reason: str | None) -> None:
    if reason is None:
        return
    if len(reason) > MAX_REASON_CHARS:
        raise ValidationError("reason", f"is longer than {MAX_REASON_CHARS} characters ({len(reason)})")
    check_text("reason", reason)


def check_route(definition: Definition, route: str) -> RouteVersion:
    rules = definition.route(route)
    if rules is None:
        raise ValidationError("route", f"{route!r} is not a route; known: {', '.join(definition.route_names)}")
    return rules


def check_provider(definition: Definition, route: RouteVersion, provider: str | None) -> dict[str, Any] | None:
    """The provider recorded at opening (id and the newest version of its rules): the one given,
    which must serve the route, or the only one serving it; None when the patient is to choose."""
    serving = definition.serving(route.name) if route.uses_providers else {}
    if provider is None:
        only = list(serving.values())
        return {"id": only[0].id, "version": only[0].version} if len(only) == 1 else None
    chosen = serving.get(provider)
    if chosen is None:  # what was typed is not repeated: it may be anything
        raise ValidationError("provider", f"must be a provider serving the {route.name} route: "
                              f"{', '.join(serving) or 'none'}")
    return {"id": chosen.id, "version": chosen.version}


def check_state(definition: Definition, state: str | None) -> None:
    if state is not None and state not in [s.name for s in definition.states]:
        known = ", ".join(s.name for s in definition.states)
        raise ValidationError("state", f"{state!r} is not a state; known: {known}")


def shaped(case_id: str) -> None:
    """An id no case can have is unknown without asking the database, which may refuse its bytes."""
    if not IDENTIFIER.fullmatch(case_id):
        raise UnknownCase(case_id)


def check_data(data: Mapping[str, Any]) -> None:
    """Event data is stored and hashed as JSON: refuse what JSON cannot carry, before writing."""
    if not data:
        return  # most commands carry none
    if depth(data) > MAX_DATA_DEPTH:
        raise ValidationError("data", f"nests deeper than {MAX_DATA_DEPTH} levels")
    try:
        text = _DATA_ENCODER.encode(data)
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            "data", f"must be plain JSON (objects, lists, strings, numbers, booleans): {exc}"
        ) from None
    if any(not isinstance(key, str) for key in data):
        raise ValidationError("data", "keys must be strings")
    check_text("data", text)
    try:  # the record is hashed as JCS (RFC 8785): numbers every language reads alike
        rfc8785.dumps(data)
    except (rfc8785.CanonicalizationError, UnicodeError):
        raise ValidationError("data", "numbers must be whole numbers within ±9007199254740991 (2^53 - 1) "
                                      "or finite decimals, so that every language hashes them alike") from None
    if len(text.encode()) > MAX_DATA_BYTES:
        raise ValidationError("data", f"is larger than {MAX_DATA_BYTES // 1024} KiB as JSON")


def check_text(field: str, text: str) -> None:
    """Text that every backend can store: valid Unicode, no control characters but line breaks and tabs."""
    try:
        text.encode()
    except UnicodeEncodeError:
        raise ValidationError(field, "is not valid Unicode text (it holds a lone surrogate)") from None
    if _CONTROL.search(text):
        raise ValidationError(field, "must not contain control characters (other than line breaks and tabs)")


def depth(value: Any) -> int:
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


def in_supported_years(what: str, instant: datetime) -> datetime:
    """Deadlines count Amsterdam days of the calendars' years, so a command dated outside them could
    be recorded but never counted (the UTC test first: near year 9999 the zone conversion overflows)."""
    if not (FIRST_YEAR - 1 <= instant.year <= LAST_YEAR and FIRST_YEAR <= local_date(instant).year <= LAST_YEAR):
        raise ValidationError(what, f"{utc_iso(instant)} is outside the supported years {FIRST_YEAR}-{LAST_YEAR}")
    return instant


def occurred(occurred_at: datetime | None, now: datetime, not_before: datetime | None = None) -> datetime:
    """When a command happened: ``now`` unless given; never in the future, never before the case."""
    if occurred_at is None:  # the clock's now: a FixedClock (SECOND_OPINION_CLOCK) can be set anywhere
        return in_supported_years("clock", now)
    at = in_supported_years("occurred_at", as_utc(occurred_at, "occurred_at"))
    if at > now:
        raise ValidationError("occurred_at", f"{utc_iso(at)} is in the future (now is {utc_iso(now)})")
    if not_before is not None and at < not_before:
        raise ValidationError("occurred_at", f"{utc_iso(at)} is before the case was opened ({utc_iso(not_before)})")
    return at


def screen_names(runtime: Runtime, case: Case, fields: Mapping[str, Any]) -> None:
    """Refuse (ValidationError, naming the fields given, never the value nor the one that matched)
    if any of ``fields`` holds a word of the name registered for ``case``; a case opened without a
    name passes everything. Callers run it before writing anything about the case (the access log
    included)."""
    screen_names_of(runtime, [case], fields)


def screen_names_of(runtime: Runtime, cases: Sequence[Case], fields: Mapping[str, Any]) -> None:
    """:func:`screen_names` for many cases at once (a list, an export): the typed words are hashed
    once and looked up in the hashes of all the cases together, since one key made them all, so the
    cost is O(words + cases), not O(words x cases); the answer does not say which case matched."""
    hashes = {h for case in cases for h in case.name_hashes}
    if hashes:
        privacy.check_names(fields, runtime.require_identity_key(), hashes)
