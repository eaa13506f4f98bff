"""The full (state, event) matrix, derived from the definition table: in every state, an event
the table does not allow there is refused with InvalidTransition (not a guard) and changes
nothing but the audit trail; one it allows either moves exactly as the table says or is refused
by a named guard. The happy path (tests/conftest.py PATHS) shows every state is reachable."""

from __future__ import annotations

import pytest

from tests.conftest import DESK, EXAMPLES, PATHS, fire_example, walk
from workflow import DEFINITION, GuardRefused, InvalidTransition

PAIRS = [(s.name, e.name) for s in DEFINITION.states for e in DEFINITION.events]


def test_every_state_is_reachable_and_every_open_state_can_close():
    assert set(PATHS) == {s.name for s in DEFINITION.states}
    terminal = {s.name for s in DEFINITION.states if s.terminal}
    for state in DEFINITION.open_states:
        seen, frontier = {state}, [state]
        while frontier:
            here = frontier.pop()
            for name in DEFINITION.events_from(here):
                dest = DEFINITION.destination(DEFINITION.event(name), here)
                if dest not in seen:
                    seen.add(dest)
                    frontier.append(dest)
        assert seen & terminal, f"{state} can never close"


def test_every_event_has_an_example_fired_by_a_permitted_role():
    assert set(EXAMPLES) == set(DEFINITION.event_names)
    for event, (actor, _, _) in EXAMPLES.items():
        assert DEFINITION.may(actor.role, event), f"{actor.role} may not {event}"


@pytest.mark.parametrize("db_url", ["memory", "sqlite"], indirect=True)
@pytest.mark.parametrize(("state", "event"), PAIRS)
def test_pair(service, state, event):
    case_id = service.open_case("PX-1", actor=DESK).case_id
    walk(service, case_id, state)
    before = service.case(case_id)
    definition = DEFINITION.event(event)
    if state in definition.sources:
        try:
            receipt = fire_example(service, case_id, event)
        except GuardRefused as refused:
            assert refused.guard in {g.name for g in definition.guards}
            after = service.case(case_id)
            assert (after.state, after.version, after.facts) == (before.state, before.version, before.facts)
        else:
            after = service.case(case_id)
            assert after.state == DEFINITION.destination(definition, state) == receipt.to_state
            assert after.version == before.version + 1
    else:
        with pytest.raises(InvalidTransition) as refused:
            fire_example(service, case_id, event)
        assert type(refused.value) is InvalidTransition
        assert refused.value.state == state and refused.value.allowed == DEFINITION.events_from(state)
        after = service.case(case_id)
        assert (after.state, after.version, after.updated_at, after.facts) == (
            before.state, before.version, before.updated_at, before.facts)  # fmt: skip
        last = service.history(case_id)[-1]
        assert (last.outcome, last.event, last.to_state) == ("rejected", event, state)
        assert after.audit_count == before.audit_count + 1
    assert service.verify(case_id).ok
