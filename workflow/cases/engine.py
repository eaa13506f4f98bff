"""Deciding a command, without touching storage.

One :class:`transitions.Machine` is built per :class:`~workflow.cases.definitions.Definition`
(``model=None``, no ``to_<state>`` shortcuts) and shared by every case and thread: firing an
event triggers the machine's event on a throw-away :class:`_Probe` carrying the current state;
the table's guards run as the machine's conditions. Events that only record a fact are the
machine's internal transitions. Nothing is persisted here, so a refusal can never leave a
half-moved case behind: the service layer persists only the :class:`Decision` returned.

What an event does to a case (its destination and its effect on the facts) is answered in one
place, :func:`advance`: :meth:`Engine.decide` calls it once the checks and guards have passed, and
replaying the audit trail (:mod:`workflow.audit.chain`, ``audit verify``) calls it again for every
accepted record, so a live decision and its replay cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from transitions import EventData, Machine, MachineError

from workflow.cases.definitions import DEFINITION, OPEN_EVENT, SAME, Definition, RouteVersion
from workflow.cases.definitions import initial_facts as initial_facts_of
from workflow.cases.rules import ALWAYS, CIRCUMSTANCES, DOCTOR_DECIDES, EffectInput, Guard, GuardInput
from workflow.errors import GuardRefused, InvalidTransition, PermissionDenied, UnknownEvent, ValidationError


@dataclass(frozen=True)
class Decision:
    event: str
    from_state: str
    to_state: str
    facts: dict[str, Any]
    payload: dict[str, Any]
    """What to record as the event's data: the command's, or what the event's ``decide`` made of it."""


class _Probe:
    """The plain object the shared machine is triggered on; lives for one decision."""

    __slots__ = ("refusal", "refused_by", "state")

    def __init__(self, state: str) -> None:
        self.state = state
        self.refused_by: str | None = None
        self.refusal: str | None = None


def _condition(guard: Guard) -> Any:
    def check(event_data: EventData) -> bool:
        probe = cast(_Probe, event_data.model)
        reason = guard.check(event_data.kwargs["guard_input"])
        if reason is None:
            return True
        if probe.refused_by is None:
            probe.refused_by, probe.refusal = guard.name, reason
        return False

    check.__name__ = f"guard_{guard.name}"
    return check


class Engine:
    """Validates a command against the tables and computes the resulting state and facts."""

    def __init__(self, definition: Definition = DEFINITION) -> None:
        self.definition = definition
        self._route_versions = {
            name: tuple(r.version for r in definition.routes if r.name == name) for name in definition.route_names
        }
        self._machine = Machine(
            model=None,
            states=[s.name for s in definition.states],
            transitions=[
                {
                    "trigger": ev.name,
                    "source": list(ev.sources),
                    "dest": None if ev.dest == SAME else ev.dest,  # None: internal, state unchanged
                    "conditions": [_condition(g) for g in ev.guards],
                }
                for ev in definition.events
            ],
            initial=None,
            auto_transitions=False,
            send_event=True,
        )

    def decide(
        self,
        state: str,
        event: str,
        role: str,
        reason: str | None,
        data: Mapping[str, Any],
        facts: Mapping[str, Any],
        route: RouteVersion,
        at: str,
    ) -> Decision:
        """Return where ``event`` takes a case, or raise the precise refusal.

        Checks run from the most fundamental to the most specific, so the error names the first
        thing that must change: an unknown event, a role the permission table does not allow,
        a state that does not allow it, missing reason or data, and last the table's guards.
        """
        definition = self.definition
        ev = definition.event(event)
        if ev is None:
            raise UnknownEvent(event, definition.event_names)
        if not definition.may(role, event):
            raise PermissionDenied(role, event, definition.roles_for(event))
        allowed = definition.events_from(state)
        if event not in allowed:
            raise InvalidTransition(event, state, allowed)
        if ev.reason_required and not (reason and reason.strip()):
            raise ValidationError("reason", f"{event} requires a reason (--reason)")
        missing = [key for key in ev.required_data if key not in data]
        if missing:
            raise ValidationError("data", f"{event} requires data field(s): {', '.join(missing)}")
        if ev.decide is not None:  # decided now, recorded, and only read from then on
            data = ev.decide(data, route.name, definition.providers)
        probe = self._probe(state, event, role, reason, data, facts, route)
        if probe.refused_by is not None:
            raise GuardRefused(event, state, allowed, probe.refused_by, probe.refusal or "refused")
        step = advance(definition, state, event, facts, data, reason, role, at)
        if step is None or step.to_state != probe.state:  # the table and the machine disagree: a bug
            raise InvalidTransition(event, state, allowed)
        return Decision(event=event, from_state=state, to_state=step.to_state, facts=step.facts, payload=dict(data))
    def refusal(
        self, state: str, event: str, role: str, reason: str | None, data: Mapping[str, Any],
        facts: Mapping[str, Any], route: RouteVersion,
    ) -> tuple[str, str] | None:  # fmt: skip
        """The first of the event's guards to refuse, as (guard, why), or None when they all pass:
        the guards alone, as :meth:`decide` runs them once its other checks have passed (for a
        question that has no complete command yet, :mod:`workflow.cases.next_steps`)."""
        probe = self._probe(state, event, role, reason, data, facts, route)
        return None if probe.refused_by is None else (probe.refused_by, probe.refusal or "refused")

    def refusals(
        self, state: str, event: str, role: str, reason: str | None, data: Mapping[str, Any],
        facts: Mapping[str, Any], route: RouteVersion,
    ) -> tuple[tuple[str, str], ...]:  # fmt: skip
        """Every one of the event's guards that refuses, in the table's order (the first is the one
        :meth:`decide` names): what else stands in the way once the first is dealt with."""
        ev = self.definition.event(event)
        if ev is None:
            return ()
        g = self.guard_input(state, event, role, reason, data, facts, route)
        found = ((guard.name, guard.check(g)) for guard in ev.guards)
        return tuple((name, why) for name, why in found if why is not None)

    def _probe(
        self, state: str, event: str, role: str, reason: str | None, data: Mapping[str, Any],
        facts: Mapping[str, Any], route: RouteVersion,
    ) -> _Probe:  # fmt: skip
        """Trigger the shared machine on a throw-away probe: the table's guards run as its conditions."""
        guard_input = self.guard_input(state, event, role, reason, data, facts, route)
        probe = _Probe(state)
        try:
            moved = self._machine.events[event].trigger(probe, guard_input=guard_input)
        except MachineError:  # the table and the machine disagree: a bug, but never a silent move
            raise InvalidTransition(event, state, self.definition.events_from(state)) from None
        if not moved and probe.refused_by is None:
            probe.refused_by, probe.refusal = "?", "refused"
        return probe

    def guard_input(
        self, state: str, event: str, role: str, reason: str | None, data: Mapping[str, Any],
        facts: Mapping[str, Any], route: RouteVersion,
    ) -> GuardInput:  # fmt: skip
        """What the guards see: on a route version with providers, the chosen provider's rules;
        on version 1, the rules every case had then (one checklist, the route's consultation)."""
        definition = self.definition
        checklist = definition.checklist_for(route, facts)
        provider = definition.provider_of(route, facts)
        if route.uses_providers:
            consultation = provider.consultation if provider else DOCTOR_DECIDES
            needed = provider.needs_circumstances() if provider else CIRCUMSTANCES
            costs_team, serving = bool(provider and provider.costs_team_first), tuple(definition.serving(route.name))
        else:
            consultation = ALWAYS if route.consultation_required else DOCTOR_DECIDES
            needed, costs_team, serving = CIRCUMSTANCES, True, ()
        return GuardInput(
            state=state, event=event, role=role, reason=reason, data=data, facts=facts,
            referral_roles=route.referral_roles, consultation=consultation,
            required_items=definition.required_items(facts, checklist),
            known_items=tuple(item.name for item in checklist),
            route_versions=self._route_versions.get(route.name, ()), screened_by=route.screened_by,
            needed_circumstances=needed, costs_team_first=costs_team, providers=serving,
            waived_by=definition.waived_by(route.name), waivable=tuple(i.name for i in checklist if i.waivable),
            self_paying=route.self_paying,
        )  # fmt: skip


@dataclass(frozen=True)
class Step:
    """Where an event takes a case, and the facts it leaves behind."""

    to_state: str
    facts: dict[str, Any]


def advance(
    definition: Definition,
    state: str | None,
    event: str,
    facts: Mapping[str, Any],
    data: Mapping[str, Any],
    reason: str | None,
    role: str,
    at: str,
) -> Step | None:
    """The one transition function: what ``event`` does from ``state`` (None: a case not yet
    opened), or None when the table has no such transition. No check, no guard: those decide
    *whether* a command may happen (:meth:`Engine.decide`); this says *what* it does, for the
    live decision and for the replay of the audit trail alike."""
    if state is None:
        if event != OPEN_EVENT:
            return None
        provider = data.get("provider")  # chosen at opening (recorded since issue 15)
        chosen = {**provider, "at": at, "by": role} if isinstance(provider, Mapping) else None
        return Step(definition.initial, initial_facts_of(data.get("route_version", 1), chosen))
    ev = definition.event(event)
    if ev is None or state not in ev.sources:
        return None
    to_state = state if ev.dest == SAME else ev.dest
    if ev.effect is None:
        return Step(to_state, dict(facts))
    return Step(to_state, ev.effect(EffectInput(facts=facts, data=data, reason=reason, role=role, at=at)))
