"""The full (state, event) matrix, derived from the definition table: every pair either moves
exactly as the table says or is refused with InvalidTransition and changes no state."""

from __future__ import annotations

from collections import deque

import pytest

from tests.conftest import DESK
from workflow import DEFINITION, InvalidTransition


def paths_from_initial() -> dict[str, list[str]]:
    """Shortest event path to every reachable state (BFS over the table)."""
    paths = {DEFINITION.initial: []}
    queue = deque([DEFINITION.initial])
    while queue:
        state = queue.popleft()
        for name in DEFINITION.events_from(state):
            dest = DEFINITION.event(name).dest
            if dest not in paths:
                paths[dest] = [*paths[state], name]
                queue.append(dest)
    return paths


PATHS = paths_from_initial()
PAIRS = [(s.name, e.name) for s in DEFINITION.states for e in DEFINITION.events]


def test_every_state_is_reachable_and_every_open_state_can_close():
    assert set(PATHS) == {s.name for s in DEFINITION.states}
    terminal = {s.name for s in DEFINITION.states if s.terminal}
    for state in DEFINITION.open_states:
        seen, frontier = {state}, [state]
        while frontier:
            here = frontier.pop()
            for name in DEFINITION.events_from(here):
                dest = DEFINITION.event(name).dest
                if dest not in seen:
                    seen.add(dest)
                    frontier.append(dest)
        assert seen & terminal, f"{state} can never close"


def put_in(service, state: str) -> str:
    case_id = service.open_case("PX-1", actor=DESK).case_id
    for event in PATHS[state]:
        service.fire(case_id, event, actor=DESK, reason="matrix")
    assert service.case(case_id).state == state
    return case_id


@pytest.mark.parametrize("db_url", ["memory", "sqlite"], indirect=True)
@pytest.mark.parametrize(("state", "event"), PAIRS)
def test_pair(service, state, event):
    case_id = put_in(service, state)
    before = service.case(case_id)
    transitions_before = len([r for r in service.history(case_id) if r.outcome == "accepted"])
    definition = DEFINITION.event(event)
    reason = "matrix" if definition.reason_required else None
    if state in definition.sources:
        receipt = service.fire(case_id, event, actor=DESK, reason=reason)
        after = service.case(case_id)
        assert (after.state, after.version) == (definition.dest, before.version + 1)
        assert (receipt.from_state, receipt.to_state) == (state, definition.dest)
        accepted = [r for r in service.history(case_id) if r.outcome == "accepted"]
        assert len(accepted) == transitions_before + 1
    else:
        with pytest.raises(InvalidTransition) as refused:
            service.fire(case_id, event, actor=DESK, reason=reason)
        allowed = DEFINITION.events_from(state)
        assert refused.value.state == state and refused.value.allowed == allowed
        assert f"state {state!r}" in str(refused.value)
        after = service.case(case_id)
        assert (after.state, after.version, after.updated_at) == (before.state, before.version, before.updated_at)
        last = service.history(case_id)[-1]
        assert (last.outcome, last.event, last.to_state) == ("rejected", event, state)
        assert after.audit_count == before.audit_count + 1
    assert service.verify(case_id).ok
