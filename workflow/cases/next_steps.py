"""Next steps: what a role may do to a case now, and what is missing for the rest.

Every event of the definition, for one case and one role, is put in one of four classes:

- ``allowed``: the role may fire it in this state and the event's guards pass, given a reason
  where one is required and one of the listed data values;
- ``blocked``: permission and state allow it, but a guard refuses (named, with its message), or
  the data the case offers cannot be valid (the field named);
- ``not_permitted``: the permission table does not let the role fire it;
- ``not_in_this_state``: the table does not allow it in the case's state.

Nothing here is a rule of its own. Each event is asked of :meth:`Engine.decide` itself, the
function ``fire`` runs, with candidate commands built from what the definition knows of the
event's data (:data:`FIELDS`: the case's checklist items, the providers serving its route, the
advice outcomes, consent bases, coverage policies, route versions); where a value cannot be
enumerated (a scope, coverage facts, an assignee) a placeholder stands in and, should the event's
``decide`` refuse the placeholder, the guards alone answer (:meth:`Engine.refusal`). What the
engine is told about the case's checklist comes from :meth:`Engine.guard_input`, the very input
its guards read. Pure: nothing is read or written here.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from workflow.cases.case import Case
from workflow.cases.definitions import Definition, Event, RouteVersion
from workflow.cases.engine import Engine
from workflow.cases.rules import ADVICE_OUTCOMES, CIRCUMSTANCES, CONSENT_BASES, GuardInput
from workflow.coverage.rules import policy_ids
from workflow.errors import GuardRefused, InvalidTransition, PermissionDenied, ValidationError

ALLOWED, BLOCKED, NOT_PERMITTED, NOT_IN_THIS_STATE = "allowed", "blocked", "not_permitted", "not_in_this_state"
CHOICE, BOOLEAN, INTEGER, TEXT, ID, OBJECT = "choice", "boolean", "integer", "text", "id", "object"
FREE_KINDS = (TEXT, ID, OBJECT)
"""Kinds whose values cannot be listed: a placeholder stands in for them."""
PLACEHOLDER: dict[str, Any] = {TEXT: "(text)", ID: "someone", OBJECT: {}}
PLACEHOLDER_REASON = "(a reason)"
MAX_CANDIDATES = 64
"""Candidate commands tried per event (the largest product today: consent bases x 1 scope)."""


@dataclass(frozen=True)
class DataField:
    """One field of an event's data, as a form would ask for it."""

    name: str
    kind: str
    description: str
    required: bool = True
    choices: tuple[Any, ...] = ()
    """The values that would be accepted now (blocked: the values there are); empty for a free kind."""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "description": self.description,
                               "required": self.required}  # fmt: skip
        if self.kind not in FREE_KINDS:
            out["choices"] = list(self.choices)
        return out


@dataclass(frozen=True)
class Step:
    """One event as the caller meets it now."""

    event: str
    status: str
    description: str = ""
    to_state: str | None = None
    reason_required: bool = False
    data: tuple[DataField, ...] = ()
    guard: str | None = None
    """blocked: the guard that refuses (None when the data the case offers is refused instead)."""
    message: str | None = None
    field: str | None = None
    """blocked by the data: the field the engine named."""
    also: tuple[tuple[str, str], ...] = ()
    """blocked: the event's other guards that refuse too (guard, message), in the table's order."""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "event": self.event, "status": self.status, "description": self.description, "to_state": self.to_state,
            "reason_required": self.reason_required, "data": [f.as_dict() for f in self.data],
        }  # fmt: skip
        if self.status == BLOCKED:
            out.update(guard=self.guard, message=self.message, field=self.field,
                       also=[{"guard": g, "message": m} for g, m in self.also])  # fmt: skip
        return out


@dataclass(frozen=True)
class NextSteps:
    case_id: str
    state: str
    version: int
    role: str
    steps: tuple[Step, ...]
    checklist: dict[str, Any] = field(default_factory=dict)

    def of(self, status: str) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.status == status)

    def step(self, event: str) -> Step:
        return next(s for s in self.steps if s.event == event)

    def as_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id, "state": self.state, "version": self.version, "role": self.role,
            "events": [s.as_dict() for s in self.steps if s.status in (ALLOWED, BLOCKED)],
            "not_in_this_state": [s.event for s in self.of(NOT_IN_THIS_STATE)],
            "not_permitted": [s.event for s in self.of(NOT_PERMITTED)],
            "checklist": self.checklist,
        }  # fmt: skip


# --- what each event's data is ----------------------------------------------------------------

Fields = Callable[[GuardInput], tuple[DataField, ...]]


def _unrecorded(g: GuardInput, items: tuple[str, ...]) -> tuple[str, ...]:
    """Of ``items``, those neither received nor waived yet; all of them when none is left."""
    done = g.facts.get("checklist", {})
    return tuple(i for i in items if i not in done) or items


def _circumstances(g: GuardInput) -> tuple[DataField, ...]:
    recorded = g.facts.get("circumstances", {})
    return tuple(DataField(c, BOOLEAN, "recorded already" if c in recorded else "not recorded yet", False,
                           (True, False)) for c in CIRCUMSTANCES)  # fmt: skip


FIELDS: dict[str, Fields] = {
    "record_circumstances": _circumstances,
    "choose_provider": lambda g: (DataField("provider", CHOICE, "A provider serving the case's route.",
                                            choices=g.providers),),
    "give_consent": lambda g: (DataField("basis", CHOICE, "On what the consent rests (002).", choices=CONSENT_BASES),
                               DataField("scope", TEXT, "What may be shared, and with whom.")),
    "receive_item": lambda g: (DataField("item", CHOICE, "A checklist item (not yet received or waived first).",
                                         choices=_unrecorded(g, g.known_items)),),
    "waive_item": lambda g: (DataField("item", CHOICE, "A checklist item that may be waived.",
                                       choices=_unrecorded(g, g.waivable)),),
    "decide_coverage": lambda g: (DataField("policy", CHOICE, "The patient's policy.", choices=policy_ids()),
                                  DataField("facts", OBJECT, "The coverage facts (see docs/domain.md).")),
    "upgrade_route": lambda g: (DataField("to_version", INTEGER, "A newer version of the case's route.",
                                          choices=g.route_versions),),
    "record_adoption": lambda g: (DataField("adopted", BOOLEAN, "Does the first provider adopt the advice.",
                                            choices=(True, False)),),
    "return_advice": lambda g: (DataField("outcome", CHOICE, "The advice against the first provider's diagnosis "
                                          "or treatment.", choices=ADVICE_OUTCOMES),),
    "assign": lambda g: (DataField("assignee", ID, "The actor id of the person who takes the case."),),
}  # fmt: skip
"""The data of the events that take any; the engine's ``required_data`` must be among these
fields (a test holds them together). The choices are read from the guards' own input."""


def route_of(definition: Definition, case: Case) -> RouteVersion:
    """The rules of the route version the case was opened (or upgraded) under."""
    version = case.facts.get("route_version", 1)
    rules = definition.route(case.route, version)
    if rules is None:
        raise ValidationError("route", f"case is on {case.route} version {version}, which this library lacks")
    return rules


# --- the answer -------------------------------------------------------------------------------


def next_steps(engine: Engine, case: Case, role: str, at: str) -> NextSteps:
    """Every event of the definition for ``case`` and ``role``, classified (see the module)."""
    definition = engine.definition
    route = route_of(definition, case)
    steps = tuple(_step(engine, case, route, ev, role, at) for ev in definition.events)
    return NextSteps(case.id, case.state, case.version, role, steps, checklist(engine, case, route))


def checklist(engine: Engine, case: Case, route: RouteVersion) -> dict[str, Any]:
    """The dossier as the guards see it: each item of the case's checklist, whether it is required
    (by the circumstances recorded), and its status; the required ones still missing; the
    circumstances the checklist reads that are not recorded yet; the provider whose list it is."""
    g = engine.guard_input(case.state, "receive_dossier", "coordinator", None, {}, case.facts, route)
    done = case.facts.get("checklist", {})
    items = [
        {"item": item, "required": item in g.required_items,
         "status": done[item].get("status", "received") if item in done else "missing"}
        for item in g.known_items
    ]  # fmt: skip
    recorded = case.facts.get("circumstances", {})
    provider = case.facts.get("provider")
    return {
        "provider": provider.get("id") if isinstance(provider, Mapping) else None,
        "provider_required": bool(g.providers),
        "items": items,
        "missing": [i["item"] for i in items if i["required"] and i["status"] == "missing"],
        "circumstances_missing": [c for c in g.needed_circumstances if c not in recorded],
    }


def _step(engine: Engine, case: Case, route: RouteVersion, ev: Event, role: str, at: str) -> Step:
    definition = engine.definition
    if not definition.may(role, ev.name):
        return Step(ev.name, NOT_PERMITTED)
    if ev.name not in definition.events_from(case.state):
        return Step(ev.name, NOT_IN_THIS_STATE)
    g = engine.guard_input(case.state, ev.name, role, None, {}, case.facts, route)
    fields = FIELDS[ev.name](g) if ev.name in FIELDS else ()
    candidates = _candidates(fields)
    common: dict[str, Any] = {"description": ev.description, "to_state": definition.destination(ev, case.state)}

    def attempt(reason: str | None) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        passed, first = [], None
        for data in candidates:
            refused = _try(engine, case, route, ev, role, reason, data, at, fields)
            if refused is None:
                passed.append(data)
            elif first is None:
                first = refused
        return passed, first

    reason = PLACEHOLDER_REASON if ev.reason_required else None
    passed, refused = attempt(reason)
    needs_reason = ev.reason_required
    if not passed and reason is None:  # a reason may be what lets it through (a change of provider)
        passed_with, _ = attempt(PLACEHOLDER_REASON)
        if passed_with:
            passed, needs_reason = passed_with, True
    if passed:
        offered = tuple(_offered(f, passed) for f in fields)
        return Step(ev.name, ALLOWED, reason_required=needs_reason, data=offered, **common)
    assert refused is not None
    data = candidates[0]
    also = tuple(r for r in engine.refusals(case.state, ev.name, role, reason, data, case.facts, route)
                 if r[0] != refused["guard"])  # fmt: skip
    return Step(ev.name, BLOCKED, reason_required=needs_reason, data=fields, guard=refused["guard"],
                message=refused["message"], field=refused["field"], also=also, **common)  # fmt: skip


def _candidates(fields: tuple[DataField, ...]) -> list[dict[str, Any]]:
    """The commands' data to try: every combination of the required fields' values (a
    placeholder for a free one, None for a choice with nothing to choose); an event whose fields
    are all optional (circumstances) needs one of them."""
    required = [f for f in fields if f.required]
    if not required:
        optional = [f for f in fields if f.choices]
        return [{optional[0].name: optional[0].choices[0]}] if optional else [{}]
    values = [_values(f) for f in required]
    combos = itertools.islice(itertools.product(*values), MAX_CANDIDATES)
    return [dict(zip((f.name for f in required), combo, strict=True)) for combo in combos]


def _values(f: DataField) -> tuple[Any, ...]:
    if f.kind in FREE_KINDS:
        return (PLACEHOLDER[f.kind],)
    return f.choices or (None,)


def _offered(f: DataField, passed: list[dict[str, Any]]) -> DataField:
    if f.kind in FREE_KINDS or not f.required:
        return f
    accepted = tuple(dict.fromkeys(data[f.name] for data in passed if f.name in data))
    return DataField(f.name, f.kind, f.description, f.required, accepted)


def _try(
    engine: Engine, case: Case, route: RouteVersion, ev: Event, role: str, reason: str | None,
    data: dict[str, Any], at: str, fields: tuple[DataField, ...],
) -> dict[str, Any] | None:  # fmt: skip
    """None if ``fire`` would accept this command; else what refuses it (guard, message, field)."""
    try:
        engine.decide(case.state, ev.name, role, reason, data, case.facts, route, at)
    except GuardRefused as refused:
        return {"guard": refused.guard, "message": refused.reason, "field": None}
    except (PermissionDenied, InvalidTransition):  # checked above, from the same table: a bug if reached
        raise
    except ValidationError as invalid:
        placeholders = any(f.kind in FREE_KINDS and f.required for f in fields)
        if not placeholders:
            return {"guard": None, "message": invalid.problem, "field": invalid.field}
        # ``decide`` refused the placeholder, not the case: the guards alone answer
        found = engine.refusal(case.state, ev.name, role, reason, data, case.facts, route)
        return None if found is None else {"guard": found[0], "message": found[1], "field": None}
    return None
