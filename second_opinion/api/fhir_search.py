"""FHIR Task search (``GET /fhir/Task``) as a work-list query, and the CapabilityStatement saying so.

The search parameters are a table (:data:`TASK_SEARCH`), read by the route and printed in
``GET /fhir/metadata``; each becomes a filter of :class:`~workflow.service.worklists.WorkListQuery`,
so a search sees exactly the cases the token's work list sees (its organisation's; a patient's own
case) and pages the same way. A Task status that covers several of our states (``in-progress``,
``completed``) is searched state by state; the page cursor says which state it is in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from urllib.parse import urlencode

from workflow.clock import AMSTERDAM, parse_instant
from workflow.errors import ValidationError
from workflow.listing import MAX_CURSOR_CHARS
from workflow.privacy import contains_bsn

FHIR_VERSION = "4.0.1"
CAPABILITY_DATE = "2026-12-03"
"""When the CapabilityStatement last changed (its ``date``): moved with :data:`TASK_SEARCH`."""
MAX_COUNT, DEFAULT_COUNT = 50, 20
"""Tasks per page: each is a read of its case (its audit records and deadlines), logged as one."""
CURSOR_CHARS = MAX_CURSOR_CHARS + 8

_SYSTEM = "urn:second-opinion:"
TASK_SEARCH: dict[str, tuple[str, str]] = {
    "status": ("token", "Task.status (requested, accepted, in-progress, completed, cancelled, rejected): the "
               "cases in the states mapped to it (docs/api.md, FHIR Task.status)."),
    "owner": ("reference", "The owning organisation: its name, or urn:second-opinion:organisation|<name>; only "
              "your own organisation has cases you see."),
    "patient": ("reference", "The pseudonymous patient reference: the reference, or "
                "urn:second-opinion:patient-ref|<reference>; never a BSN or a name."),
    "period": ("date", "ge<date or instant>: Tasks changed on or after it (Task.lastModified; a date is midnight "
               "in Europe/Amsterdam). Other prefixes are refused."),
    "_count": ("number", f"Tasks per page, 1-{MAX_COUNT} (default {DEFAULT_COUNT})."),
}  # fmt: skip
"""Search parameter -> (FHIR search type, what it selects)."""
PAGING = "_cursor"
"""The opaque page position, from the Bundle's ``next`` link: never typed, only followed."""


@dataclass(frozen=True)
class TaskSearch:
    """A Task search as work-list filters: the states to go through, in order, and where in them."""

    states: tuple[str | None, ...]
    organisation: str | None
    patient_ref: str | None
    updated_since: datetime | None
    count: int
    index: int = 0
    cursor: str | None = None

    def link(self, path: str, params: Mapping[str, str], index: int, cursor: str) -> str:
        """The relative URL of the page at ``index``/``cursor``: every filter as given, and the position."""
        kept = [(k, v) for k, v in params.items() if k != PAGING]
        return f"{path}?{urlencode([*kept, (PAGING, f'{index}.{cursor}')])}"


def task_search(params: Mapping[str, str], task_status: Mapping[str, str]) -> TaskSearch:
    """Read the query (each parameter known, once, bounded) into a :class:`TaskSearch`."""
    status = params.get("status")
    if status is None:
        states: tuple[str | None, ...] = (None,)
    else:
        states = tuple(state for state, code in task_status.items() if code == status)
        if not states:
            codes = ", ".join(dict.fromkeys(task_status.values()))
            raise ValidationError("status", f"{status[:40]!r} is no Task.status of ours; one of {codes}")
    count = params.get("_count", str(DEFAULT_COUNT))
    if not count.isdigit() or not 1 <= int(count) <= MAX_COUNT:
        raise ValidationError("_count", f"must be a whole number from 1 to {MAX_COUNT}")
    index, cursor = _position(params.get(PAGING), len(states))
    owner, patient = _identifier(params, "owner", "organisation"), _identifier(params, "patient", "patient-ref")
    return TaskSearch(states, owner, patient, _since(params.get("period")), int(count), index, cursor)


_LITERAL = {"patient": "Patient/", "owner": "Organization/"}


def _identifier(params: Mapping[str, str], name: str, kind: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    literal = _LITERAL[name]  # a literal reference (Patient/PX-0001, Organization/org-a) names the same thing
    if value.startswith(literal):
        value = "|" + value.removeprefix(literal)
    system, bar, code = value.rpartition("|")
    if bar and system not in ("", _SYSTEM + kind):
        raise ValidationError(name, f"the system must be {_SYSTEM}{kind} (or none)")
    if not 1 <= len(code) <= 64:
        raise ValidationError(name, "must be 1 to 64 characters")
    if contains_bsn(code):  # never echoed in the Bundle's links, never a filter: refused as everywhere
        raise ValidationError(name, "looks like a BSN; search by the pseudonymous reference or organisation name")
    return code


def _since(period: str | None) -> datetime | None:
    if period is None:
        return None
    if not period.startswith("ge"):
        raise ValidationError("period", "only ge<date> is supported, e.g. period=ge2026-11-01")
    text = period[2:]
    if len(text) == 10:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise ValidationError("period", "must be ge and a date such as 2026-11-01, or an instant") from None
        return datetime.combine(day, time(0), AMSTERDAM)
    return parse_instant(text, "period")


def _position(cursor: str | None, states: int) -> tuple[int, str | None]:
    if cursor is None:
        return 0, None
    index, dot, inner = cursor.partition(".")
    if not dot or not index.isdigit() or int(index) >= states:
        raise ValidationError(PAGING, "is not a cursor of this search; follow the Bundle's next link")
    return int(index), inner or None


def check_parameters(params: list[tuple[str, str]]) -> None:
    """Every parameter known and given once: a typo is a 422 naming it, never silently ignored."""
    known = {*TASK_SEARCH, PAGING}
    names = [name for name, _ in params]
    for name in names:
        if name not in known:
            raise ValidationError("query", f"unknown parameter {name[:40]!r}; known: {', '.join(sorted(known))}")
        if names.count(name) > 1:
            raise ValidationError(name, "is given more than once; give it once")
    for name, value in params:
        if len(value) > (CURSOR_CHARS if name == PAGING else 120):
            raise ValidationError(name, "is too long")


def capability_statement(version: str) -> dict[str, Any]:
    """What this FHIR endpoint does: read and search Task, search AuditEvent, JSON only, bearer tokens."""
    task_params = [{"name": name, "type": kind, "documentation": what} for name, (kind, what) in TASK_SEARCH.items()]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": CAPABILITY_DATE,
        "publisher": "second-opinion",
        "kind": "instance",
        "software": {"name": "second-opinion", "version": version},
        "implementation": {"description": "Read-only FHIR R4 views of second-opinion cases: a case as a Task, its "
                           "audit and access records as AuditEvents."},
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "rest": [{
            "mode": "server",
            "security": {"description": "Every request but this one needs a bearer token (second-opinion token "
                         "create); a token sees its organisation's cases, a patient's only their own."},
            "resource": [
                {"type": "Task", "interaction": [{"code": "read"}, {"code": "search-type"}],
                 "searchParam": task_params},
                {"type": "AuditEvent", "interaction": [{"code": "search-type"}],
                 "searchParam": [{"name": "entity", "type": "reference",
                                  "documentation": "The case: its id or Task/<id> (required)."}]},
            ],
        }],
    }  # fmt: skip
