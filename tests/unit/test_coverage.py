"""The coverage decision as a table of cases: the all-conditions-met case, each failing
condition on its own, each exclusion, each route per policy, and each kind of bad input; and,
as properties, every combination of the facts' values on every policy (issue 15)."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from second_opinion.cli import app
from workflow import ValidationError
from workflow.coverage.rules import (
    ADVICE_MAY_EXCEED_COVER,
    DEDUCTIBLE_RULE,
    FACTS,
    POLICIES,
    ROUTE_VALUES,
    RULES,
    decide_all,
    decide_coverage,
)

ALL_MET = {
    "route": "domestic",
    "purpose": "treatment",
    "care_in_basic_package": True,
    "same_specialty": True,
    "referral_by": "first_provider",
    "returns_to_first_provider": True,
    "gp_or_obstetric_care": False,
    "first_provider_is_doctor": True,
    "age_band": "adult",
}
DOMESTIC_POLICIES = [p.id for p in POLICIES if "domestic" in p.routes]
SELF_ARRANGED_PAID_IN_PART = {"generic-basic"}  # 001: "niet ... vergoed, of slechts gedeeltelijk"


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
        ({"first_provider_is_doctor": False}, "referred_by_doctor"),
        ({"returns_to_first_provider": False}, "returns_to_first_provider"),
        ({"purpose": "work_disability"}, "not_work_disability"),
    ],
)
def test_each_failing_condition_alone_refuses_cover_and_is_named(policy, change, rule):
    decision = decide_coverage({**ALL_MET, **change}, policy)
    assert not decision.covered
    assert failed(decision) == [rule]
    # only a self-arranged opinion (the referral alone fails) may be paid in part, and only where the
    # policy says so; what is paid in part carries this adult's eigen risico, what is not paid none
    partly = rule == "referred_by_doctor" and policy in SELF_ARRANGED_PAID_IN_PART
    assert decision.outcome == ("partly" if partly else "not_covered")
    assert decision.deductible_applies is partly


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
        ({**ALL_MET, "age_band": "child"}, "pno-basic", "facts.age_band: 'child' is not one of: minor, adult"),
        ({**ALL_MET, "age_band": "2010-05-01"}, "pno-basic", "facts.age_band: '2010-05-01' is not one of"),
        ({**ALL_MET, "age_band": 12}, "pno-basic", "facts.age_band: 12 is not one of"),
        ({**ALL_MET, "first_provider_is_doctor": "yes"}, "pno-basic", "facts.first_provider_is_doctor: 'yes'"),
        ({k: v for k, v in ALL_MET.items() if k != "age_band"}, "pno-basic",
         "missing fact(s) this decision needs: age_band"),
        ({k: v for k, v in ALL_MET.items() if k != "first_provider_is_doctor"}, "pno-basic",
         "missing fact(s) this decision needs: first_provider_is_doctor"),
        ({"route": "online"}, "interpolis-basic", "missing fact(s) this decision needs: purpose"),
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


# --- issue 15: the seeds' rules on every route ------------------------------------------------


@pytest.mark.parametrize("policy", [p.id for p in POLICIES])
@pytest.mark.parametrize("route", ROUTE_VALUES)
def test_000_work_disability_is_never_covered_whatever_the_route(policy, route):
    """Seed 000, "Dit wordt niet vergoed: een second opinion over de mate waarin u arbeidsongeschikt
    bent": on every route, the online one included, and whether or not the policy offers the route."""
    decision = decide_coverage({**ALL_MET, "route": route, "purpose": "work_disability"}, policy)
    assert not decision.covered
    assert "not_work_disability" in failed(decision)
    assert decision.deductible_applies is False


def test_000_online_opinion_on_work_disability_is_refused_for_that_reason():
    """The finding itself: 2e arts online (004) came out covered for a work-disability opinion."""
    decision = decide_coverage({"route": "online", "purpose": "work_disability"}, "interpolis-basic")
    assert (decision.covered, failed(decision)) == (False, ["not_work_disability"])
    assert decide_coverage({"route": "online", "purpose": "treatment"}, "interpolis-basic").covered


@pytest.mark.parametrize("policy", DOMESTIC_POLICIES)
def test_000_a_referral_by_the_first_provider_counts_only_when_a_doctor(policy):
    """Seed 000, "Dit kan uw eigen zorgverlener zijn als dat een arts is. Anders kunt u uw huisarts
    om een verwijzing vragen": a physiotherapist's referral does not count, the GP's does."""
    not_doctor = {**ALL_MET, "first_provider_is_doctor": False}
    assert failed(decide_coverage(not_doctor, policy)) == ["referred_by_doctor"]
    assert decide_coverage({**not_doctor, "referral_by": "gp"}, policy).covered
    assert decide_coverage(ALL_MET, policy).covered


def test_000_who_the_first_provider_is_matters_only_when_they_referred():
    gp_referral = {k: v for k, v in ALL_MET.items() if k != "first_provider_is_doctor"} | {"referral_by": "gp"}
    assert decide_coverage(gp_referral, "pno-basic").covered


@pytest.mark.parametrize("policy", DOMESTIC_POLICIES)
def test_000_no_eigen_risico_for_a_minor(policy):
    """Seed 000: "Gaat het om een second opinion over andere zorg? Dan geldt het eigen risico wel" —
    for the insured who pays one at all: under the Zorgverzekeringswet (art. 19) no one under 18."""
    minor = decide_coverage({**ALL_MET, "age_band": "minor"}, policy)
    assert minor.covered and minor.deductible_applies is False
    assert decide_coverage(ALL_MET, policy).deductible_applies is True


def test_000_text_output_says_nothing_about_eigen_risico_for_a_minor():
    runner = CliRunner()
    minor = runner.invoke(app, ["coverage", "--facts", json.dumps({**ALL_MET, "age_band": "minor"}),
                                "--policy", "pno-basic"])  # fmt: skip
    assert minor.exit_code == 0 and "COVERED" in minor.stdout
    assert "eigen risico" not in minor.stdout and "deductible" not in minor.stdout
    adult = runner.invoke(app, ["coverage", "--facts", json.dumps(ALL_MET), "--policy", "pno-basic"])
    assert "eigen risico" in adult.stdout
    bad = runner.invoke(app, ["coverage", "--facts", json.dumps({**ALL_MET, "age_band": "2010-05-01"})])
    assert bad.exit_code == 1 and "facts.age_band: '2010-05-01' is not one of: minor, adult" in bad.stderr


EVERY_COMBINATION = [
    dict(zip([f.name for f in FACTS], values, strict=True)) for values in itertools.product(*(f.values for f in FACTS))
]


def test_every_combination_of_every_policy_is_answered_with_reasons():
    """Route x purpose x referrer x policy x age band x first_provider_is_doctor (and the other
    yes/no facts): each is decided, with at least one reason citing a seed, and no answer
    contradicts seed 000's exclusion or the Zvw's deductible for minors."""
    assert len(EVERY_COMBINATION) == 3 * 3 * 2 * 2 * 4 * 2 * 2 * 2 * 2
    for facts in EVERY_COMBINATION:
        for policy in POLICIES:
            decision = decide_coverage(facts, policy.id)
            assert isinstance(decision.covered, bool) and decision.checks, (facts, policy.id)
            assert all(c.seed and c.description for c in decision.checks)
            assert decision.covered == all(c.passed for c in decision.checks)
            assert (decision.outcome == "covered") is decision.covered
            if decision.outcome == "partly":  # a self-arranged opinion, where the policy pays one in part
                assert failed(decision) == ["referred_by_doctor"] and policy.id in SELF_ARRANGED_PAID_IN_PART
            else:
                assert decision.outcome in ("covered", "not_covered")
            assert "not_work_disability" in [c.rule for c in decision.checks]
            if facts["purpose"] == "work_disability":
                assert decision.outcome == "not_covered"
            if facts["age_band"] == "minor" or decision.outcome == "not_covered":
                assert decision.deductible_applies is False
            if decision.deductible_applies:
                assert DEDUCTIBLE_RULE.holds(facts)


@settings(max_examples=300, deadline=None)
@given(
    facts=st.fixed_dictionaries({}, optional={f.name: st.sampled_from(f.values) for f in FACTS}),
    policy=st.sampled_from([p.id for p in POLICIES]),
)
def test_any_subset_of_facts_is_decided_or_refused_by_name(facts, policy):
    """With facts left out, the answer is a decision with reasons or an error naming what is
    missing: never a KeyError from a rule reading a fact nobody asked for."""
    try:
        decision = decide_coverage(facts, policy)
    except ValidationError as refused:
        assert "missing fact(s) this decision needs: " in str(refused)
        named = str(refused).split("needs: ", 1)[1].split(", ")
        assert named and all(name not in facts for name in named)
    else:
        assert decision.checks
