"""The full (state, event) matrix, derived from the definition table: in every state, an event
the table does not allow there is refused with InvalidTransition (not a guard) and changes
nothing but the audit trail; one it allows either moves exactly as the table says or, where
:data:`GUARDED` says so, is refused by that guard for that reason. The happy path
(tests/conftest.py PATHS) shows every state is reachable."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.conftest import DESK, EXAMPLES, PATHS, fire_example, walk
from workflow import DEFINITION, CaseService, Engine, GuardRefused, InvalidTransition

PAIRS = [(s.name, e.name) for s in DEFINITION.states for e in DEFINITION.events]
_UPGRADE = ("newer_route_version", "already at version 2")  # a new case opens at its route's newest version
GUARDED: dict[tuple[str, str], tuple[str, str]] = {
    # (state, event) -> (guard, part of its reason): where the example, fired at a case walked along
    # PATHS, is refused; every other pair the table allows is accepted
    ("requested", "withdraw_consent"): ("consent_active", "no consent recorded"),
    ("requested", "proceed_self_paying"): ("self_paying_decided", "record the insurer's decision first"),
    ("requested", "upgrade_route"): _UPGRADE,
    ("referred", "choose_provider"): ("provider_change", "umc-utrecht is already the case's provider"),
    ("referred", "receive_dossier"): ("checklist_complete", "still missing: letter"),
    ("referred", "upgrade_route"): _UPGRADE,
    ("dossier_received", "receive_information"): ("awaiting", "no information is awaited"),
    ("dossier_received", "review"): ("consultation_if_required", "the patient must be seen first"),
    ("dossier_received", "upgrade_route"): _UPGRADE,
    ("reviewed", "upgrade_route"): _UPGRADE,
    ("advice_returned", "upgrade_route"): _UPGRADE,
    # nobody is assigned along the happy path
    **{(state, "unassign"): ("assigned", "not assigned to anyone") for state in DEFINITION.open_states},
}
# The library before version 2 of the routes shipped: it opens cases at version 1.
VERSION_1 = replace(DEFINITION, routes=tuple(r for r in DEFINITION.routes if r.version == 1))


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
        if (state, event) in GUARDED:
            guard, reason = GUARDED[state, event]
            with pytest.raises(GuardRefused) as refused:
                fire_example(service, case_id, event)
            assert refused.value.guard == guard and reason in str(refused.value)
            after = service.case(case_id)
            assert (after.state, after.version, after.facts) == (before.state, before.version, before.facts)
        else:
            receipt = fire_example(service, case_id, event)
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


def test_guarded_pairs_are_pairs_the_table_allows():
    for state, event in GUARDED:
        assert state in DEFINITION.event(event).sources, (state, event)
        assert GUARDED[state, event][0] in {g.name for g in DEFINITION.event(event).guards}


@pytest.mark.parametrize("db_url", ["memory", "sqlite"], indirect=True)
@pytest.mark.parametrize("state", DEFINITION.event("upgrade_route").sources)
def test_upgrade_route_moves_a_version_1_case_in_every_open_state(service, clock, state):
    """The example the matrix sees refused (a new case is already at version 2), accepted where it
    applies: a case opened at version 1, in each state it may be upgraded from."""
    older = CaseService(service.unit_of_work, clock, engine=Engine(VERSION_1))
    case_id = older.open_case("PX-1", actor=DESK).case_id
    walk(older, case_id, state)
    before = service.case(case_id)
    assert before.facts["route_version"] == 1
    receipt = fire_example(service, case_id, "upgrade_route")
    after = service.case(case_id)
    assert after.state == receipt.to_state == state and after.version == before.version + 1
    assert after.facts["route_version"] == 2
    assert service.verify(case_id).ok
