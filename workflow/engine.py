"""Deciding a transition, without touching storage.

One :class:`transitions.Machine` is built per :class:`~workflow.definitions.Definition`
(``model=None``, no ``to_<state>`` shortcuts) and shared by every case and thread: firing an
event triggers the machine's event on a throw-away :class:`_Probe` carrying the current state.
Nothing is persisted here, so a refusal can never leave a half-moved case behind: the service
layer persists only the :class:`Decision` this module returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from transitions import EventData, Machine, MachineError

from .definitions import DEFINITION, Definition, Guard, GuardInput
from .errors import (
    GuardRefused,
    InvalidTransition,
    PermissionDenied,
    UnknownEvent,
    ValidationError,
)


@dataclass(frozen=True)
class Decision:
    event: str
    from_state: str
    to_state: str


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
    """Validates a command against the table and computes the resulting state."""

    def __init__(self, definition: Definition = DEFINITION) -> None:
        self.definition = definition
        self._machine = Machine(
            model=None,
            states=[s.name for s in definition.states],
            transitions=[
                {
                    "trigger": ev.name,
                    "source": list(ev.sources),
                    "dest": ev.dest,
                    "conditions": [_condition(g) for g in ev.guards],
                }
                for ev in definition.events
            ],
            initial=None,
            auto_transitions=False,
            send_event=True,
        )

    def decide(self, state: str, event: str, role: str, reason: str | None, data: Mapping[str, Any]) -> Decision:
        """Return where ``event`` takes a case in ``state``, or raise the precise refusal.

        Checks run from the most fundamental to the most specific, so the error names the first
        thing that must change: an unknown event, a role that may never fire it, a state that
        does not allow it, missing reason or data, and last the table's guards.
        """
        definition = self.definition
        ev = definition.event(event)
        if ev is None:
            raise UnknownEvent(event, definition.event_names)
        if role not in ev.roles:
            raise PermissionDenied(role, event, ev.roles)
        allowed = definition.events_from(state)
        if event not in allowed:
            raise InvalidTransition(event, state, allowed)
        if ev.reason_required and not (reason and reason.strip()):
            raise ValidationError("reason", f"{event} requires a reason (--reason)")
        missing = [key for key in ev.required_data if key not in data]
        if missing:
            raise ValidationError("data", f"{event} requires data field(s): {', '.join(missing)}")
        probe = _Probe(state)
        guard_input = GuardInput(state=state, event=event, role=role, reason=reason, data=data)
        try:
            moved = self._machine.events[event].trigger(probe, guard_input=guard_input)
        except MachineError:  # the table and the machine disagree: a bug, but never a silent move
            raise InvalidTransition(event, state, allowed) from None
        if not moved:
            raise GuardRefused(event, state, allowed, probe.refused_by or "?", probe.refusal or "refused")
        return Decision(event=event, from_state=state, to_state=probe.state)
