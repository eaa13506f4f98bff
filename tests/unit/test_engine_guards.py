"""The engine on its own: guards and required data from the table, the order of refusals, a
table that refuses to be built broken, and one shared machine that is safe across threads."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from workflow import DEFINITION, Engine, GuardRefused, InvalidTransition, PermissionDenied, UnknownEvent
from workflow.cases.definitions import Definition, Event, Role, RouteVersion, State
from workflow.cases.rules import EffectInput, Guard
from workflow.errors import ValidationError


def needs_consent(guard_input) -> str | None:
    return None if guard_input.data.get("consent") == "written" else "no written consent recorded"


CONSENT = Guard("written_consent", "Dossier only with written consent.", needs_consent)


def count_shares(e: EffectInput) -> dict:
    return {**e.facts, "shares": e.facts.get("shares", 0) + 1, "last_share": e.at}


SMALL = Definition(
    states=(State("open", "o"), State("shared", "s"), State("closed", "c", terminal=True)),
    roles=(Role("desk", "d"), Role("doctor", "dr")),
    events=(
        Event("share", ("open",), "shared", "share the dossier", guards=(CONSENT,), effect=count_shares),
        Event("close", ("open", "shared"), "closed", "close", required_data=("outcome",)),
    ),
    permissions={"desk": ("open", "share", "close"), "doctor": ("close",)},
    routes=(RouteVersion("r", 1, "route", referral_roles=("desk",)),),
    checklist=(),
    initial="open",
)
ROUTE = SMALL.routes[0]
AT = "2026-11-23T09:00:00.000000Z"


def decide(engine, state, event, role, data, facts=None, definition_route=ROUTE):
    return engine.decide(state, event, role, None, data, facts or {}, definition_route, AT)


def test_guard_refuses_with_its_name_and_reason():
    with pytest.raises(GuardRefused) as refused:
        decide(Engine(SMALL), "open", "share", "desk", {})
    assert refused.value.guard == "written_consent"
    assert "guard 'written_consent' refused: no written consent recorded" in str(refused.value)
    assert isinstance(refused.value, InvalidTransition) and refused.value.outcome == "rejected"


def test_guard_passes_when_its_rule_holds():
    decision = decide(Engine(SMALL), "open", "share", "desk", {"consent": "written"})
    assert (decision.from_state, decision.to_state) == ("open", "shared")


def test_required_data_is_named():
    with pytest.raises(ValidationError, match="close requires data field\\(s\\): outcome"):
        decide(Engine(SMALL), "shared", "close", "doctor", {})
    assert decide(Engine(SMALL), "shared", "close", "doctor", {"outcome": "advice"}).to_state == "closed"


@pytest.mark.parametrize(
    ("state", "event", "role", "data", "error"),
    [
        ("open", "fly", "desk", {}, UnknownEvent),
        ("closed", "share", "doctor", {}, PermissionDenied),  # role first: never allowed, whatever the state
        ("closed", "close", "desk", {}, InvalidTransition),  # state before missing data
        ("shared", "close", "desk", {}, ValidationError),
        ("open", "share", "desk", {}, GuardRefused),  # guards last
    ],
)
def test_refusals_come_in_a_fixed_order(state, event, role, data, error):
    with pytest.raises(error) as refused:
        decide(Engine(SMALL), state, event, role, data)
    assert type(refused.value) is error


def test_permission_denied_is_audited_as_denied():
    with pytest.raises(PermissionDenied) as refused:
        decide(Engine(), "requested", "refer", "auditor", {}, definition_route=DEFINITION.route("domestic"))
    assert refused.value.outcome == "denied"
    assert "permitted roles: patient, gp, first_provider, care_consultant" in str(refused.value)


def test_unknown_event_lists_the_known_ones():
    known = r"known events: record_circumstances, .*, refer, proceed_self_paying, receive_dossier"
    with pytest.raises(UnknownEvent, match=known):
        decide(Engine(), "requested", "to_referred", "coordinator", {}, definition_route=DEFINITION.route("domestic"))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: replace(d, initial="nowhere"), "initial state 'nowhere' is not a state"),
        (lambda d: replace(d, events=(*d.events, Event("x", ("open",), "limbo", ""))), "unknown state"),
        (lambda d: replace(d, events=(*d.events, Event("x", ("closed",), "open", ""))), "leaves terminal"),
        (lambda d: replace(d, permissions={"nurse": ("share",)}), "unknown role 'nurse'"),
        (lambda d: replace(d, permissions={"desk": ("fly",)}), "unknown event 'fly'"),
        (lambda d: replace(d, events=(*d.events, d.events[0])), "defined twice"),
        (lambda d: replace(d, routes=(*d.routes, d.routes[0])), "version 1 defined twice"),
        (lambda d: replace(d, routes=(RouteVersion("r", 1, "", referral_roles=("nurse",)),)), "unknown role"),
    ],
)
def test_broken_tables_are_refused(change, problem):
    with pytest.raises(ValueError, match=problem):
        change(SMALL)


def test_one_machine_no_shortcuts():
    engine = Engine()
    machine = engine._machine
    for _ in range(3):
        decide(engine, "requested", "refer", "gp", {}, definition_route=DEFINITION.route("domestic"))
    assert engine._machine is machine and machine.models == []
    assert not [name for name in machine.events if name.startswith("to_")]
    assert set(machine.events) == set(DEFINITION.event_names)


def test_shared_engine_is_thread_safe():
    engine = Engine(SMALL)
    inputs = [("open", "share", "desk", {"consent": "written"} if i % 2 else {}) for i in range(200)] + [
        ("shared", "close", "doctor", {"outcome": "x"})
    ] * 50

    def outcome(args):
        try:
            return decide(engine, args[0], args[1], args[2], args[3]).to_state
        except Exception as exc:
            return type(exc).__name__

    expected = [outcome(a) for a in inputs]
    results: dict[int, list] = {}

    def run(t: int) -> None:
        results[t] = [outcome(a) for a in inputs]

    threads = [threading.Thread(target=run, args=(t,)) for t in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(results[t] == expected for t in range(20))
    assert expected.count("GuardRefused") == 100


def test_effects_compute_new_facts_without_touching_the_old():
    before = {"route_version": 1}
    decision = decide(Engine(SMALL), "open", "share", "desk", {"consent": "written"}, facts=before)
    assert decision.facts == {"route_version": 1, "shares": 1, "last_share": AT}
    assert before == {"route_version": 1}
