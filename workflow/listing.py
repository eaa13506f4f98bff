"""Work lists as the domain sees them: what a case listing filters on, how it is ordered, and the
cursor that carries a page's position to the next (keyset pagination). Plain values, no I/O:
storage applies a :class:`CaseFilter` in SQL, the service layer (:mod:`workflow.service.worklists`)
checks the caller's input and builds it.

Each case has a *work-list due moment*: the earliest due moment of its open deadlines (running,
or breached and not stopped since; see :func:`case_due_at`). Storage keeps it beside the case
(derived, like the provider and the assignee taken from the case's facts), so that "overdue" and
"due within" are index ranges rather than joins.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from workflow.cases.case import Case
from workflow.clock import parse_instant, utc_iso
from workflow.deadlines.policies import BREACHED, RUNNING, Deadline
from workflow.errors import ValidationError

OPEN_DEADLINE_STATES = (RUNNING, BREACHED)
"""A deadline is *open* (counts for overdue and the due moment) while running, or breached and not
stopped since: a breach the worker recorded keeps the case on the overdue list until the deadline
is stopped (a breached deadline stopped later keeps its state and gets ``stopped_at``)."""

SORT_COLUMNS = {"opened": "opened_at", "updated": "updated_at", "due": "due_at"}
"""The sort keys a listing offers, each a column of the case row; every order ends with the case id."""
SORTS = tuple(f"{prefix}{key}" for key in SORT_COLUMNS for prefix in ("", "-"))
"""``due`` ascending, ``-due`` descending, and so on: the fixed set a caller may ask for."""
DEFAULT_SORT = "opened"
DEFAULT_PAGE, MAX_PAGE = 50, 200
MAX_CURSOR_CHARS = 400


def is_open(d: Deadline) -> bool:
    return d.state in OPEN_DEADLINE_STATES and d.stopped_at is None and d.due_at is not None


def case_due_at(deadlines: Iterable[Deadline]) -> datetime | None:
    """The work-list due moment of a case: the earliest due moment of its open deadlines."""
    return min((d.due_at for d in deadlines if is_open(d) and d.due_at is not None), default=None)


def provider_of(facts: Mapping[str, Any]) -> str | None:
    """The chosen provider's id (``facts.provider.id``), as the listing filters on it."""
    return _id_in(facts.get("provider"))


def assignee_of(facts: Mapping[str, Any]) -> str | None:
    """The assignee's id (``facts.assignee.id``, set by the ``assign`` event), as the listing filters on it."""
    return _id_in(facts.get("assignee"))


def _id_in(value: Any) -> str | None:
    found = value.get("id") if isinstance(value, Mapping) else None
    return found if isinstance(found, str) else None


@dataclass(frozen=True)
class CaseFilter:
    """What a case listing keeps; each field applies when given (all of them: a conjunction).

    ``due_before``/``due_from``/``due_to`` bound the work-list due moment (before: strictly;
    from, to: inclusive); ``dated`` keeps only cases with (True) or without (False) one."""

    organisation: str | None = None
    state: str | None = None
    route: str | None = None
    provider: str | None = None
    assignee: str | None = None
    patient_ref: str | None = None
    updated_since: datetime | None = None
    due_before: datetime | None = None
    due_from: datetime | None = None
    due_to: datetime | None = None
    dated: bool | None = None

    def given(self) -> dict[str, Any]:
        """The filters that apply, by name (storage names its statement after them)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    def keeps(self, case: Case, due_at: datetime | None) -> bool:
        """The filter in Python: what the in-memory backend runs, and what SQL must agree with."""
        equal = {"organisation": case.organisation, "state": case.state, "route": case.route,
                 "provider": provider_of(case.facts), "assignee": assignee_of(case.facts),
                 "patient_ref": case.patient_ref}  # fmt: skip
        if any(getattr(self, name) is not None and getattr(self, name) != value for name, value in equal.items()):
            return False
        if self.updated_since is not None and case.updated_at < self.updated_since:
            return False
        if self.dated is not None and (due_at is not None) != self.dated:
            return False
        bounds = (self.due_before, self.due_from, self.due_to)
        if any(b is not None for b in bounds) and due_at is None:
            return False
        return not (
            (self.due_before is not None and due_at is not None and not due_at < self.due_before)
            or (self.due_from is not None and due_at is not None and due_at < self.due_from)
            or (self.due_to is not None and due_at is not None and due_at > self.due_to)
        )


@dataclass(frozen=True)
class Listed:
    """A case as a listing returns it, with its work-list due moment."""

    case: Case
    due_at: datetime | None


ListedCases = list[Listed]
"""A page as storage returns it (an alias: the repositories' own ``list`` method shadows the builtin)."""


@dataclass(frozen=True)
class Position:
    """Where a page ended: the last row's sort key and case id (keyset pagination)."""

    key: datetime | None
    case_id: str


def sort_key(listed: Listed, column: str) -> datetime | None:
    if column == "due_at":
        return listed.due_at
    value: datetime = getattr(listed.case, column)
    return value


def parse_sort(sort: str | None) -> tuple[str, bool]:
    """``-updated`` -> (``updated_at``, descending); anything outside :data:`SORTS` is refused."""
    sort = DEFAULT_SORT if sort is None else sort
    if sort not in SORTS:
        raise ValidationError("sort", f"{sort[:40]!r} is not a sort order; one of: {', '.join(SORTS)}")
    return SORT_COLUMNS[sort.lstrip("-")], sort.startswith("-")


def check_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_PAGE
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise ValidationError("limit", f"{limit!r} must be a whole number from 1 to {MAX_PAGE}")
    return limit


# --- the cursor ---------------------------------------------------------------------------------


def _digest(body: bytes, query: str) -> str:
    return hashlib.sha256(b"worklist-cursor/1\0" + query.encode() + b"\0" + body).hexdigest()[:16]


def encode_cursor(position: Position, query: str) -> str:
    """An opaque token for the page after ``position`` of the listing ``query`` (its filters and
    order, :func:`query_fingerprint`). It carries a digest over both: a cursor that was edited,
    cut short, or is used with other filters or another order is refused, not followed. It is not
    a secret (it holds a case id the caller was shown and a sort key) and grants nothing: every page
    applies the caller's own visibility again."""
    key = None if position.key is None else utc_iso(position.key)
    body = json.dumps([key, position.case_id], separators=(",", ":")).encode()
    raw = body + b"." + _digest(body, query).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, query: str) -> Position:
    """The position in ``cursor``; :class:`ValidationError` ("cursor") for anything this listing
    did not hand out."""
    problem = ValidationError("cursor", "is not a cursor of this listing (its filters and sort must be the same "
                              "as on the page that gave it); start again without one")  # fmt: skip
    if not cursor or len(cursor) > MAX_CURSOR_CHARS or not cursor.isascii():
        raise problem
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        body, _, digest = raw.rpartition(b".")
        if digest.decode() != _digest(body, query):
            raise problem
        key, case_id = json.loads(body)
        if not isinstance(case_id, str) or not (key is None or isinstance(key, str)):
            raise problem
        return Position(None if key is None else parse_instant(key, "cursor"), case_id)
    except (ValueError, TypeError, UnicodeDecodeError):
        raise problem from None


def query_fingerprint(parts: Mapping[str, Any]) -> str:
    """The listing a cursor belongs to: its filters and order, canonical."""
    plain = {k: utc_iso(v) if isinstance(v, datetime) else v for k, v in sorted(parts.items()) if v is not None}
    return json.dumps(plain, sort_keys=True, separators=(",", ":"), default=str)
