"""Routes are versioned data: a new version never silently changes open cases; moving an open
case to it is an explicit, audited command, and replay follows the version each case was on."""

from __future__ import annotations

from dataclasses import replace

import pytest

from storage import open_backend
from tests.conftest import COVERAGE_FACTS, DESK, DOCTOR, PATIENT, T0, fire_example, walk
from workflow import DEFINITION, CaseService, Engine, FixedClock, GuardRefused

# The library before version 2 of the routes shipped (issue 15: the case's provider decides its
# checklist and whether the patient is seen); today's DEFINITION is the library after it.
BEFORE = replace(DEFINITION, routes=tuple(r for r in DEFINITION.routes if r.version == 1))
NEWER = DEFINITION


@pytest.fixture
def services():
    """The same storage seen by the code before and after the new route version shipped."""
    backend = open_backend("memory://")
    clock = FixedClock(T0)
    before = CaseService(backend.unit_of_work, clock, engine=Engine(BEFORE))
    after = CaseService(backend.unit_of_work, clock, engine=Engine(NEWER))
    return before, after


def test_open_cases_keep_their_version(services):
    before, after = services
    old = before.open_case("PX-OLD", actor=DESK).case_id
    walk(before, old, "dossier_received")
    new = after.open_case("PX-NEW", actor=DESK).case_id
    walk(after, new, "dossier_received")  # chooses UMC Utrecht, which sees every patient
    assert (after.case(old).facts["route_version"], after.case(new).facts["route_version"]) == (1, 2)
    after.fire(old, "review", actor=DOCTOR)  # version 1: no consultation needed, even under the new code
    with pytest.raises(GuardRefused, match="must be seen first"):
        after.fire(new, "review", actor=DOCTOR)
    assert after.verify().ok


def test_upgrading_is_explicit_audited_and_then_binding(services):
    before, after = services
    case_id = before.open_case("PX-1", actor=DESK).case_id
    walk(before, case_id, "referred")
    with pytest.raises(GuardRefused, match="to_version must be one of this route's versions: 1"):
        before.fire(case_id, "upgrade_route", actor=DESK, data={"to_version": 2})
    with pytest.raises(GuardRefused, match="has no providers"):  # version 1 has none to choose
        after.fire(case_id, "choose_provider", actor=PATIENT, data={"provider": "umc-utrecht"})
    after.fire(case_id, "upgrade_route", actor=DESK, data={"to_version": 2})
    record = after.history(case_id)[-1]
    assert (record.event, record.outcome, record.actor_role, record.payload) == (
        "upgrade_route", "accepted", "coordinator", {"to_version": 2})  # fmt: skip
    with pytest.raises(GuardRefused, match="already at version 2"):
        after.fire(case_id, "upgrade_route", actor=DESK, data={"to_version": 2})
    # version 2 binds: the provider's rules, once one is chosen (UMC Utrecht sees every patient)
    with pytest.raises(GuardRefused, match="choose the provider first"):
        after.fire(case_id, "receive_item", actor=DOCTOR, data={"item": "letter"})
    after.fire(case_id, "choose_provider", actor=PATIENT, data={"provider": "umc-utrecht"})
    after.fire(case_id, "receive_item", actor=DOCTOR, data={"item": "letter"})
    after.fire(case_id, "receive_dossier", actor=DOCTOR)
    with pytest.raises(GuardRefused, match="must be seen first"):
        after.fire(case_id, "review", actor=DOCTOR)
    after.fire(case_id, "record_consultation", actor=DOCTOR)
    after.fire(case_id, "review", actor=DOCTOR)
    assert after.case(case_id).facts["route_version"] == 2
    assert after.verify().ok


def test_a_case_on_a_version_the_code_lacks_is_refused_clearly(services):
    before, after = services
    case_id = after.open_case("PX-1", actor=DESK, provider="umc-utrecht").case_id
    with pytest.raises(Exception, match="domestic version 2, which this library lacks"):
        before.fire(case_id, "withdraw", actor=DESK, reason="x")


NOT_COVERED = {"policy": "pno-basic", "facts": {**COVERAGE_FACTS, "same_specialty": False}}


def test_a_version_1_case_keeps_its_costs_team_rule_insured_abroad_only(services):
    """Version 2 extends UMC Utrecht's costs-team rule to an opinion the insurance does not cover
    (003); a case opened under version 1 keeps the rule it had: only insured abroad blocks."""
    before, after = services
    old = before.open_case("PX-OLD", actor=DESK).case_id
    new = after.open_case("PX-NEW", actor=DESK).case_id
    for case_id in (old, new):
        walk(before if case_id == old else after, case_id, "referred")
        fire_example(after, case_id, "receive_item")
        fire_example(after, case_id, "decide_coverage", data=NOT_COVERED)
        assert after.case(case_id).facts["coverage"]["outcome"] == "not_covered"
    fire_example(after, old, "receive_dossier")  # as before version 2 shipped
    with pytest.raises(GuardRefused, match="not covered by the insurance: contact the provider's costs team first"):
        fire_example(after, new, "receive_dossier")
    fire_example(after, new, "contact_costs_team")
    fire_example(after, new, "receive_dossier")
    assert after.verify().ok
