"""The coverage decision as a table of cases: the all-conditions-met case, each failing
condition on its own, each exclusion, each route per policy, and each kind of bad input."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from second_opinion.cli import app
from workflow import ValidationError
from workflow.coverage.rules import ADVICE_MAY_EXCEED_COVER, POLICIES, RULES, decide_all, decide_coverage

ALL_MET = {
    "route": "domestic",
    "purpose": "treatment",
    "care_in_basic_package": True,
    "same_specialty": True,
    "referral_by": "first_provider",
    "returns_to_first_provider": True,
    "gp_or_obstetric_care": False,
}
DOMESTIC_POLICIES = [p.id for p in POLICIES if "domestic" in p.routes]


def failed(decision) -> list[str]:
    return [c.rule for c in decision.checks if not c.passed]


@pytest.mark.parametrize("policy", DOMESTIC_POLICIES)
def test_all_five_conditions_met_is_covered_with_deductible(policy):
    decision = decide_coverage(ALL_MET, policy)
    assert decision.covered and failed(decision) == []
    assert [c.rule for c in decision.checks] == [
        "basic_package", "same_specialty", "referred_by_doctor", "returns_to_first_provider", "not_work_disability",
    ]  # fmt: skip
    assert decision.deductible_applies is True
    assert all(c.seed for c in decision.checks)


@pytest.mark.parametrize("policy", DOMESTIC_POLICIES)
@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"care_in_basic_package": False}, "basic_package"),
        ({"same_specialty": False}, "same_specialty"),
        ({"referral_by": "none"}, "referred_by_doctor"),
        ({"referral_by": "other_doctor"}, "referred_by_doctor"),
        ({"returns_to_first_provider": False}, "returns_to_first_provider"),
        ({"purpose": "work_disability"}, "not_work_disability"),
    ],
)
def test_each_failing_condition_alone_refuses_cover_and_is_named(policy, change, rule):
    decision = decide_coverage({**ALL_MET, **change}, policy)
    assert not decision.covered
    assert failed(decision) == [rule]
    assert decision.deductible_applies is False


@pytest.mark.parametrize("referral_by", ["first_provider", "gp"])
def test_either_doctor_may_refer(referral_by):
    assert decide_coverage({**ALL_MET, "referral_by": referral_by}, "pno-basic").covered


def test_no_deductible_for_gp_or_obstetric_care():
    decision = decide_coverage({**ALL_MET, "gp_or_obstetric_care": True}, "pno-basic")
    assert decision.covered and decision.deductible_applies is False


def test_exclusions_are_always_listed():
    for decision in decide_all(ALL_MET):
        assert any("work disability" in text for text in decision.never_covered)
        assert any("copy of the medical dossier" in text for text in decision.never_covered)


@pytest.mark.parametrize(
    ("policy", "route", "covered", "rules"),
    [
        ("pno-basic", "royal-doctors", False, ["route_offered"]),
        ("pno-basic", "online", False, ["route_offered"]),
        ("interpolis-basic", "royal-doctors", False, ["zorgactief_for_royal_doctors"]),
        ("interpolis-basic", "online", True, []),
        ("interpolis-zorgactief", "royal-doctors", True, []),
        ("interpolis-zorgactief", "online", True, []),
    ],
)
def test_routes_per_policy(policy, route, covered, rules):
    decision = decide_coverage({"route": route, "purpose": "diagnosis"}, policy)
    assert (decision.covered, failed(decision)) == (covered, rules)
    assert decision.deductible_applies is False


def test_royal_doctors_needs_no_referral_and_carries_the_advice_note():
    decision = decide_coverage({"route": "royal-doctors", "purpose": "diagnosis"}, "interpolis-zorgactief")
    assert decision.covered and decision.notes == (ADVICE_MAY_EXCEED_COVER,)
    excluded = decide_coverage({"route": "royal-doctors", "purpose": "work_disability"}, "interpolis-zorgactief")
    assert failed(excluded) == ["not_work_disability"]


@pytest.mark.parametrize(
    ("facts", "policy", "message"),
    [
        ({}, "pno-basic", "missing fact(s) this decision needs: route"),
        ({"route": "domestic"}, "pno-basic", "missing fact(s) this decision needs: care_in_basic_package"),
        ({**ALL_MET, "bsn": "x"}, "pno-basic", "unknown fact(s): 'bsn'"),
        ({**ALL_MET, "same_specialty": "yes"}, "pno-basic", "facts.same_specialty: 'yes' is not one of"),
        ({**ALL_MET, "same_specialty": 1}, "pno-basic", "facts.same_specialty: 1 is not one of"),
        ({**ALL_MET, "referral_by": "nurse"}, "pno-basic", "facts.referral_by: 'nurse' is not one of"),
        ({**ALL_MET, "route": "abroad"}, "pno-basic", "facts.route: 'abroad'"),
        (ALL_MET, "zilveren-kruis", "'zilveren-kruis' is not a policy; known: pno-basic"),
    ],
)
def test_bad_input_is_named_never_guessed(facts, policy, message):
    with pytest.raises(ValidationError) as refused:
        decide_coverage(facts, policy)
    assert message in str(refused.value)


def test_every_rule_cites_a_seed_page():
    for rule in RULES:
        assert rule.seed and all(part.strip() in {"000", "001", "002", "003", "004"} for part in rule.seed.split(","))


def test_cli_json_and_errors():
    runner = CliRunner()
    one = runner.invoke(app, ["coverage", "--facts", json.dumps(ALL_MET), "--policy", "pno-basic", "--json"])
    assert one.exit_code == 0
    data = json.loads(one.stdout)
    assert data["covered"] is True and data["deductible_applies"] is True and len(data["checks"]) == 5
    every = runner.invoke(app, ["coverage", "--facts", json.dumps(ALL_MET), "--json"])
    assert [d["policy"] for d in json.loads(every.stdout)] == [p.id for p in POLICIES]
    table = runner.invoke(app, ["coverage", "--facts", json.dumps({**ALL_MET, "same_specialty": False})])
    assert table.exit_code == 0 and "NOT COVERED" in table.stdout and "same_specialty" in table.stdout
    bad = runner.invoke(app, ["coverage", "--facts", '{"route": "domestic"}', "--policy", "pno-basic"])
    assert bad.exit_code == 1 and bad.stderr.startswith("error: invalid facts: missing fact(s)")
    assert bad.stderr.count("\n") == 1
    not_json = runner.invoke(app, ["coverage", "--facts", "{"])
    assert not_json.exit_code == 1 and "invalid --facts: not valid JSON" in not_json.stderr
