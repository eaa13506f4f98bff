"""The JSON Schema of each event's ``data``, for ``/openapi.json``: built from the definition table.

Which fields an event requires is the table's (:attr:`workflow.cases.definitions.Event.required_data`);
what each field holds is :data:`FIELDS` below, keyed by the field's name, with the allowed values
taken from the rules that check them (consent bases, advice outcomes, checklist items, providers,
coverage policies). A new event therefore appears in the schema by itself; a new data field must be
described here, which ``tests/api/test_api_spec.py`` demands. The schema documents; the engine
still decides (a value the schema allows may be refused by a guard, with a 409 or 422).
"""

from __future__ import annotations

from typing import Any

from workflow.cases.definitions import DEFINITION, Event
from workflow.cases.rules import ADVICE_OUTCOMES, CIRCUMSTANCES, CONSENT_BASES
from workflow.coverage.rules import policy_ids
from workflow.service.inputs import MAX_REASON_CHARS

_ID = {"type": "string", "pattern": r"^[A-Za-z0-9._:-]{3,64}$"}
_ITEMS = sorted({i.name for i in DEFINITION.checklist} | {i.name for p in DEFINITION.providers for i in p.checklist})
_FLAG = {"type": "boolean"}

FIELDS: dict[str, dict[str, Any]] = {
    "provider": {"type": "string", "enum": sorted({p.id for p in DEFINITION.providers}),
                 "description": "A provider serving the case's route (GET /providers?route=...)."},
    "basis": {"type": "string", "enum": list(CONSENT_BASES), "description": "The basis of the consent."},
    "scope": {"type": "string", "minLength": 1,
              "description": "What the dossier may be used for, in words."},
    "item": {"type": "string", "enum": _ITEMS, "description": "A dossier item of the case's checklist."},
    "outcome": {"type": "string", "enum": list(ADVICE_OUTCOMES),
                "description": "The advice against the first provider's diagnosis or treatment."},
    "adopted": {"type": "boolean", "description": "Whether the first provider adopts the advice."},
    "to_version": {"type": "integer", "minimum": 2, "description": "A newer version of the case's route's rules."},
    "assignee": {**_ID, "description": "The actor id of the person the case is assigned to."},
    "policy": {"type": "string", "enum": list(policy_ids()), "description": "The insurance policy decided on."},
    "facts": {"type": "object", "description": "Coverage facts, as for POST /coverage (route, ...)."},
    **{name: {**_FLAG, "description": f"Circumstance {name} (003)."} for name in CIRCUMSTANCES},
}  # fmt: skip
"""Each data field any event takes -> its JSON Schema."""

OPTIONAL: dict[str, tuple[str, ...]] = {"record_circumstances": CIRCUMSTANCES}
"""Events whose data fields are all optional (at least one is given): the guard names them."""

EXAMPLE_VALUES: dict[str, Any] = {
    "provider": "umc-utrecht", "basis": "own_request", "scope": "the second opinion on this diagnosis",
    "item": "letter", "outcome": "agrees", "adopted": True, "to_version": 2, "assignee": "desk-2",
    "policy": "pno-basic", "facts": {"route": "domestic"}, **dict.fromkeys(CIRCUMSTANCES, False),
}  # fmt: skip
"""A value of each field for the examples in the schema (they are validated against it)."""

EXAMPLE_REASON = "the patient asked for it"


def variant_name(event: str) -> str:
    """``give_consent`` -> ``FireGiveConsent``: the component of that event's request body."""
    return "Fire" + "".join(part.capitalize() for part in event.split("_"))


def data_schema(event: Event) -> dict[str, Any]:
    names = (*event.required_data, *OPTIONAL.get(event.name, ()))
    schema: dict[str, Any] = {"type": "object", "additionalProperties": False,
                              "properties": {n: FIELDS[n] for n in names}}  # fmt: skip
    if event.required_data:
        schema["required"] = list(event.required_data)
    if event.name in OPTIONAL:
        schema["minProperties"] = 1
    return schema


def example(event: Event) -> dict[str, Any]:
    names = event.required_data or OPTIONAL.get(event.name, ())
    body: dict[str, Any] = {"event": event.name, "data": {n: EXAMPLE_VALUES[n] for n in names}}
    if event.reason_required:
        body["reason"] = EXAMPLE_REASON
    return body


def variant(event: Event) -> dict[str, Any]:
    """The request body of firing ``event``: its name, its data, a reason where it needs one."""
    required = ["event", *(["data"] if event.required_data or event.name in OPTIONAL else [])]
    reason: dict[str, Any] = {"type": "string", "maxLength": MAX_REASON_CHARS}
    if event.reason_required:
        required.append("reason")
        reason["minLength"] = 1
    else:
        reason = {"anyOf": [reason, {"type": "null"}]}
    return {
        "type": "object",
        "title": variant_name(event.name),
        "description": event.description,
        "additionalProperties": False,
        "required": required,
        "properties": {
            "event": {"type": "string", "const": event.name},
            "reason": reason,
            "data": data_schema(event),
            "occurred_at": {
                "anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}],
                "description": "When it happened, with a UTC offset; default now.",
            },
        },
        "examples": [example(event)],
    }


def variants(ref: str) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Every event's request body by component name, and the ``FireEvent`` schema choosing among
    them by ``event`` (``ref`` is the prefix of a component reference)."""
    found = {variant_name(e.name): variant(e) for e in DEFINITION.events}
    mapping = {e.name: ref + variant_name(e.name) for e in DEFINITION.events}
    choice = {
        "title": "FireEvent",
        "description": "An event of the definition table with the data it takes (one schema per event, chosen "
        "by `event`); the engine still checks the state, the role and the guards.",
        "oneOf": [{"$ref": target} for target in mapping.values()],
        "discriminator": {"propertyName": "event", "mapping": mapping},
    }
    return found, choice
