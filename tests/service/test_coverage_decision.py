"""The insurer's decision as an event on the case (issue 15), each test citing the seed it reads.

002 ("Neem contact op met uw zorgverzekeraar om te controleren of een second opinion vergoed
wordt") and 001 ("Overleg inwinnen bij je zorgverzekeraar") put the check before the opinion is
under way; 000's five conditions and its eigen risico rule are what it decides on.
"""

from __future__ import annotations

import dataclasses

import pytest

from tests.conftest import CONSULTANT, COVERAGE_FACTS, DESK, DOCTOR, PATIENT, walk
from workflow import InvalidTransition, PermissionDenied, ValidationError
from workflow.audit.chain import DENIED, REJECTED
from workflow.coverage import rules as coverage_rules

pytestmark = pytest.mark.parametrize("db_url", ["memory", "sqlite"], indirect=True)

EVENT = "decide_coverage"


def decide(service, case_id, facts=COVERAGE_FACTS, policy="pno-basic", actor=CONSULTANT):  # type: ignore[no-untyped-def]
    return service.fire(case_id, EVENT, actor=actor, data={"policy": policy, "facts": facts})


def test_000_decision_is_recorded_with_its_reasons_and_shown(service):
    """000: the five conditions hold, so the basic insurance covers it, and eigen risico applies to
    an adult's second opinion on specialist care. The decision is on the case and in its trail."""
    case_id = service.open_case("PX-000", actor=PATIENT).case_id
    receipt = decide(service, case_id)
    assert (receipt.from_state, receipt.to_state) == ("requested", "requested")  # a record, not a move
    latest = service.case(case_id).facts["coverage"]
    assert (latest["outcome"], latest["policy"], latest["route"], latest["number"]) == (
        "covered", "pno-basic", "domestic", 1)  # fmt: skip
    assert latest["decided_by"] == "care_consultant"
    assert latest["facts"] == {**COVERAGE_FACTS, "route": "domestic"}  # the route is the case's
    assert {r["rule"]: r["seed"] for r in latest["reasons"]} == {
        "basic_package": "000", "same_specialty": "000", "referred_by_doctor": "000, 002",
        "returns_to_first_provider": "000", "not_work_disability": "000"}  # fmt: skip
    assert all(r["passed"] for r in latest["reasons"])
    assert latest["eigen_risico"] == {"applies": True, "rule": "deductible", "seed": "000, 001"}
    record = service.history(case_id)[-1]
    assert record.event == EVENT and record.payload["decision"]["outcome"] == "covered"


def test_000_new_facts_make_a_second_decision_and_the_first_is_kept(service):
    """000: "een second opinion over de mate waarin u arbeidsongeschikt bent" is never covered.
    Learning that is a new decision, a new record; the first stays in the trail as it was."""
    case_id = service.open_case("PX-000", actor=PATIENT).case_id
    decide(service, case_id)
    walk(service, case_id, "referred")  # the check may be made again after the referral (002 step 1, 004 step 2)
    decide(service, case_id, {**COVERAGE_FACTS, "purpose": "work_disability"}, actor=DESK)
    latest = service.case(case_id).facts["coverage"]
    assert (latest["number"], latest["outcome"], latest["decided_by"]) == (2, "not_covered", "coordinator")
    assert [r["rule"] for r in latest["reasons"] if not r["passed"]] == ["not_work_disability"]
    assert latest["eigen_risico"]["applies"] is False
    decisions = [r.payload["decision"]["outcome"] for r in service.history(case_id) if r.event == EVENT]
    assert decisions == ["covered", "not_covered"]


def test_bad_facts_are_refused_with_the_rules_error_and_nothing_written(service):
    """The coverage rules' own error names the fact; the case, its facts and transitions stay as
    they were, and only the refusal is recorded (without the refused data, as for any refusal)."""
    case_id = service.open_case("PX-000", actor=PATIENT).case_id
    before = service.case(case_id)
    for facts, policy, field in (
        ({**COVERAGE_FACTS, "purpose": "curiosity"}, "pno-basic", "facts.purpose"),
        ({k: v for k, v in COVERAGE_FACTS.items() if k != "same_specialty"}, "pno-basic", "facts"),
        (COVERAGE_FACTS, "no-such-policy", "policy"),
        ({**COVERAGE_FACTS, "route": "online"}, "pno-basic", "facts.route"),  # not this case's route
    ):
        with pytest.raises(ValidationError) as refused:
            decide(service, case_id, facts, policy)
        assert refused.value.field == field, refused.value
    after = service.case(case_id)
    assert (after.version, after.state, dict(after.facts)) == (before.version, before.state, dict(before.facts))
    refusals = service.history(case_id)[1:]
    assert [r.outcome for r in refusals] == [REJECTED] * 4 and all("decision" not in r.payload for r in refusals)


def test_a_role_that_may_not_decide_is_denied(service):
    """The insurer decides (its care consultant, 001/004, or a coordination desk); the
    second-opinion doctor and the patient do not."""
    case_id = service.open_case("PX-000", actor=PATIENT).case_id
    for actor in (DOCTOR, PATIENT):
        with pytest.raises(PermissionDenied):
            decide(service, case_id, actor=actor)
        assert service.history(case_id)[-1].outcome == DENIED
    assert "coverage" not in service.case(case_id).facts


def test_verify_replays_the_recorded_decision_not_todays_rules(service, monkeypatch):
    """A recorded decision stays decided: after the rules change, ``audit verify`` still passes,
    because replay reads the decision from the record and never asks the rules again."""
    case_id = service.open_case("PX-000", actor=PATIENT).case_id
    decide(service, case_id)
    decide(service, case_id, {**COVERAGE_FACTS, "age_band": "minor"})  # Zvw art. 19: no eigen risico under 18
    assert service.case(case_id).facts["coverage"]["eigen_risico"]["applies"] is False
    assert service.verify().ok
    changed = [dataclasses.replace(r, holds=lambda f: False) for r in coverage_rules.RULES]
    monkeypatch.setattr(coverage_rules, "_RULES", {r.id: r for r in changed})
    assert not coverage_rules.decide_coverage({**COVERAGE_FACTS, "route": "domestic"}, "pno-basic").covered
    report = service.verify()
    assert report.ok and report.records == 3
    assert service.case(case_id).facts["coverage"]["outcome"] == "covered"


def test_the_decision_is_made_where_the_seeds_place_it(service):
    """002 and 001: before the opinion is under way; once the dossier is in, the question is no
    longer the insurer's first check."""
    case_id = service.open_case("PX-000", actor=PATIENT).case_id
    walk(service, case_id, "dossier_received")
    with pytest.raises(InvalidTransition):
        decide(service, case_id)
