"""What a change event holds, and the opaque cursor of the pull feed.

An event is written in the transaction of the change it reports (the case's row and its audit
record land with it or not at all), so the feed never reports a change that did not happen and
never misses one that did. Its id is derived from the audit record it reports (``evt_`` and the
first 32 hex digits of the record's hash): stable across retries, redeliveries and re-reads, and
unique because the hash chains the case, its sequence and everything recorded.

What it carries is what an integration needs to act (which case, which organisation, which
route, from which state to which, by which role, when) and nothing of the patient: no BSN, no
name, and none of the HMACs of either the case row keeps (a hash of nine digits under a leaked
key gives the BSN back), nor the patient reference, nor the event's data or reason (free text).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from workflow.audit.chain import AuditRecord
from workflow.cases.case import Case
from workflow.clock import utc_iso
from workflow.errors import ValidationError

OPENED, TRANSITIONED = "case.opened", "case.transitioned"
DEADLINE_PREFIX = "deadline."

EVENT_TYPES: dict[str, str] = {
    OPENED: "A case was opened (from_state is null).",
    TRANSITIONED: "An event was accepted and the case moved (or stayed) as the definition says.",
    "deadline.reminder": "A deadline's reminder fell due (the case did not move).",
    "deadline.breach": "A deadline passed without the case reaching a state that stops it.",
}
"""Every type of event the feed carries; a subscription's filter names some of them (or a family,
``case.*`` or ``deadline.*``)."""

_DEADLINE_TYPES = {"deadline_reminder": "deadline.reminder", "deadline_breached": "deadline.breach"}

MAX_LIMIT = 500
DEFAULT_LIMIT = 100
_CURSOR_PREFIX = "f1."


@dataclass(frozen=True)
class ChangeEvent:
    """One entry of the feed. ``sequence`` is the feed's own order (set by storage on append)."""

    id: str
    type: str
    case_id: str
    organisation: str
    route: str
    from_state: str | None
    to_state: str
    event: str
    version: int
    occurred_at: datetime
    recorded_at: datetime
    actor_role: str
    sequence: int | None = None

    def payload(self) -> dict[str, Any]:
        """The event as JSON: the body of a webhook delivery and one item of ``GET /events``.
        The envelope (``id``, ``type``, ``timestamp``, ``data``) is Standard Webhooks'."""
        return {
            "id": self.id,
            "type": self.type,
            "timestamp": utc_iso(self.recorded_at),
            "data": {
                "case_id": self.case_id,
                "organisation": self.organisation,
                "route": self.route,
                "from_state": self.from_state,
                "to_state": self.to_state,
                "event": self.event,
                "version": self.version,
                "occurred_at": utc_iso(self.occurred_at),
                "recorded_at": utc_iso(self.recorded_at),
                "actor_role": self.actor_role,
            },
        }


def event_id(record: AuditRecord) -> str:
    return "evt_" + record.hash[:32]


def of_record(record: AuditRecord, case: Case) -> ChangeEvent:
    """The event reporting ``record``, an accepted or noted record of ``case`` (as it is after it)."""
    kind = _DEADLINE_TYPES.get(record.event, OPENED if record.from_state is None else TRANSITIONED)
    assert record.to_state is not None
    return ChangeEvent(
        id=event_id(record), type=kind, case_id=case.id, organisation=case.organisation, route=case.route,
        from_state=record.from_state, to_state=record.to_state, event=record.event, version=case.version,
        occurred_at=record.occurred_at, recorded_at=record.recorded_at, actor_role=record.actor_role,
    )  # fmt: skip


def cursor_of(sequence: int) -> str:
    """The opaque cursor after an event: clients keep it and pass it back, never build one."""
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{sequence}".encode()).decode().rstrip("=")


def position_of(cursor: str | None) -> int:
    """The sequence a cursor stands for (0: from the start); anything not made by
    :func:`cursor_of` is refused as a :class:`ValidationError` naming ``after``."""
    if cursor is None or cursor == "":
        return 0
    problem = "is not a cursor of this feed (pass back the next_cursor of an earlier page)"
    if len(cursor) > 40:
        raise ValidationError("after", problem)
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raise ValidationError("after", problem) from None
    digits = text.removeprefix(_CURSOR_PREFIX)
    if not text.startswith(_CURSOR_PREFIX) or not digits.isdigit() or not digits.isascii() or len(digits) > 18:
        raise ValidationError("after", problem)
    return int(digits)


def checked_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError("limit", f"must be from 1 to {MAX_LIMIT}")
    return limit
