"""The next-step forms of the case page: which events a caller is offered, the fields each one
asks for, and the submitted form turned back into the command's reason and data.

The events offered are those the permission table lets the caller's role fire from the case's
state (:func:`offered`) that next steps (:mod:`workflow.cases.next_steps`, the same guards the
engine runs) find allowed now; the case page lists each blocked one with what blocks it, so a
coordinator sees what is missing without trying (and without a refused record).

Every value is bounded before it reaches the service, which checks it again (:mod:`workflow.service.inputs`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from workflow.cases import insurer
from workflow.cases.case import Case
from workflow.cases.definitions import Definition, Event
from workflow.cases.rules import ADVICE_OUTCOMES, CIRCUMSTANCES, CONSENT_BASES
from workflow.coverage.rules import FACTS, policy_ids
from workflow.errors import ValidationError

MAX_TEXT = 2000
"""Characters of one text field (the service's limit for a reason)."""
MAX_JSON = 64 * 1024
MAX_FIELDS = 64
"""Fields of one submitted form (a form has at most a dozen)."""


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: str  # text | textarea | choice | yesno | check | number | json
    options: tuple[str, ...] = ()
    required: bool = True


@dataclass(frozen=True)
class EventForm:
    event: str
    description: str
    fields: tuple[Field, ...]
    reason: str  # required | optional


def offered(definition: Definition, case: Case, role: str) -> list[Event]:
    """The events the role may fire from the case's state, by the permission table (the case page
    keeps those next steps find allowed now)."""
    return [e for name in definition.events_from(case.state)
            if definition.may(role, name) and (e := definition.event(name)) is not None]  # fmt: skip


def checklist_items(definition: Definition, case: Case) -> list[tuple[str, str, str]]:
    """The case's checklist as (item, description, status): received, waived or missing."""
    route = definition.route(case.route, case.facts.get("route_version", 1))
    if route is None:
        return []
    recorded = case.facts.get("checklist", {})
    found = []
    for item in definition.checklist_for(route, case.facts):
        entry = recorded.get(item.name) if isinstance(recorded, Mapping) else None
        status = entry.get("status", "received") if isinstance(entry, Mapping) else "missing"
        found.append((item.name, item.description, str(status)))
    return found


def form_for(definition: Definition, case: Case | None, event: Event) -> EventForm:
    """The form of ``event`` on ``case``; without a case (reading a posted form), the choices that
    depend on the case (its checklist's items, its route's providers) are left to the service."""
    fields: list[Field] = []
    if event.name == "record_circumstances":
        fields = [Field(name, name.replace("_", " "), "check", required=False) for name in CIRCUMSTANCES]
    elif event.name == insurer.EVENT:
        fields = [Field("policy", "policy", "choice", policy_ids())]
        fields += [Field(f"facts.{f.name}", f.name.replace("_", " "), "choice", _values(f.values), required=False)
                   for f in FACTS if f.name != "route"]  # fmt: skip
    else:
        fields = [_field(definition, case, name) for name in event.required_data]
    reason = "required" if event.reason_required else "optional"
    return EventForm(event.name, event.description, tuple(fields), reason)


def _values(values: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple(json.dumps(v) if isinstance(v, bool) else str(v) for v in values)


def _field(definition: Definition, case: Case | None, name: str) -> Field:
    if name == "item":
        items = checklist_items(definition, case) if case else []
        missing = tuple(item for item, _, status in items if status == "missing")
        return Field(name, name, "choice", missing or tuple(item for item, _, _ in items))
    if name == "provider":
        return Field(name, name, "choice", tuple(definition.serving(case.route)) if case else ())
    if name == "basis":
        return Field(name, name, "choice", CONSENT_BASES)
    if name == "outcome":
        return Field(name, name, "choice", ADVICE_OUTCOMES)
    if name == "adopted":
        return Field(name, name, "yesno", ("true", "false"))
    if name == "to_version":
        return Field(name, "to version", "number")
    return Field(name, name.replace("_", " "), "text")


@dataclass(frozen=True)
class Submitted:
    event: str
    version: int
    reason: str | None
    data: dict[str, Any]


def parse_fire(form: Mapping[str, str], definition: Definition) -> Submitted:
    """The command a next-step form posted; a malformed one is a ValidationError naming the field.
    Read without the case (reading it would be one more logged access): the service checks the rest."""
    event_name = form.get("event", "")
    event = definition.event(event_name)
    if event is None:
        raise ValidationError("event", f"{event_name[:64]!r} is not an event")
    version_text = form.get("version", "")
    if not version_text.isdigit() or len(version_text) > 9:
        raise ValidationError("version", "the form carries no case version; reload the case page")
    spec = form_for(definition, None, event)
    data: dict[str, Any] = {}
    for field in spec.fields:
        raw = form.get(field.name, "").strip()
        if len(raw) > MAX_TEXT:
            raise ValidationError(field.label, f"at most {MAX_TEXT} characters")
        if field.kind == "check":
            data[field.name] = raw == "on"
            continue
        if not raw:
            if field.required:
                raise ValidationError(field.label, "is required")
            continue
        if field.options and raw not in field.options:
            raise ValidationError(field.label, f"must be one of {', '.join(field.options)}")
        if field.kind == "yesno" or (field.options and raw in ("true", "false")):  # a yes/no coverage fact
            value: Any = raw == "true"
        elif field.kind == "number":
            if not raw.isdigit() or len(raw) > 4:
                raise ValidationError(field.label, "must be a whole number")
            value = int(raw)
        else:
            value = raw
        _put(data, field.name, value)
    reason = form.get("reason", "").strip() or None
    if reason is not None and len(reason) > MAX_TEXT:
        raise ValidationError("reason", f"at most {MAX_TEXT} characters")
    if event.name == insurer.EVENT:
        data.setdefault("facts", {})
    return Submitted(event.name, int(version_text), reason, data)


def _put(data: dict[str, Any], name: str, value: Any) -> None:
    """``facts.purpose`` goes into ``data["facts"]["purpose"]``."""
    head, dot, rest = name.partition(".")
    if dot:
        data.setdefault(head, {})[rest] = value
    else:
        data[name] = value
