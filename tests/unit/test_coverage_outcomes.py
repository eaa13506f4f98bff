"""The three outcomes of a coverage decision (issue 15): covered, partly, not covered, over every
combination of the facts' values on every policy and route, each with the rules behind it."""

from __future__ import annotations

import itertools

import pytest

from workflow.coverage.rules import (
    COVERED,
    FACTS,
    NOT_COVERED,
    OUTCOMES,
    PARTLY,
    POLICIES,
    REFERRAL_RULE,
    SELF_ARRANGED_PARTLY,
    decide_coverage,
)

COMBINATIONS = [dict(zip([f.name for f in FACTS], values, strict=True))
                for values in itertools.product(*(f.values for f in FACTS))]  # fmt: skip


def test_the_combinations_are_every_value_of_every_fact():
    assert len(COMBINATIONS) == 3 * 3 * 2 * 2 * 4 * 2 * 2 * 2 * 2 == 2304


@pytest.mark.parametrize("policy", [p.id for p in POLICIES])
def test_every_combination_gets_one_outcome_with_its_reasons(policy):
    cover = {p.id: p for p in POLICIES}[policy].routes
    seen = set()
    for facts in COMBINATIONS:
        decision = decide_coverage(facts, policy)
        failed = {c.rule for c in decision.checks if not c.passed}
        assert decision.outcome in OUTCOMES and decision.checks, facts
        assert "not_work_disability" in {c.rule for c in decision.checks}  # 000: whatever the route
        route = cover.get(facts["route"])
        if not failed:
            expected = COVERED
        elif route is not None and failed == {REFERRAL_RULE}:
            expected = route.self_arranged
        else:
            expected = NOT_COVERED
        assert decision.outcome == expected, facts
        assert decision.covered is (expected == COVERED)
        assert (SELF_ARRANGED_PARTLY in decision.notes) is (expected == PARTLY)
        if expected == NOT_COVERED or facts["age_band"] == "minor":
            assert decision.deductible_applies is False
        seen.add(decision.outcome)
    assert seen >= {COVERED, NOT_COVERED}


def test_partly_is_reached_only_by_a_policy_that_pays_a_self_arranged_opinion_in_part():
    """001: "Regel je zelf een second opinion, dan kan het zijn dat deze niet wordt vergoed, of slechts
    gedeeltelijk". PNO Zorg's referral is a condition (000): not covered there."""
    facts = {"route": "domestic", "purpose": "diagnosis", "care_in_basic_package": True, "same_specialty": True,
             "referral_by": "none", "returns_to_first_provider": True, "gp_or_obstetric_care": False,
             "age_band": "adult"}  # fmt: skip
    assert decide_coverage(facts, "generic-basic").outcome == PARTLY
    assert decide_coverage(facts, "pno-basic").outcome == NOT_COVERED
    assert decide_coverage({**facts, "same_specialty": False}, "generic-basic").outcome == NOT_COVERED
    assert decide_coverage({**facts, "purpose": "work_disability"}, "generic-basic").outcome == NOT_COVERED
    assert [p.id for p in POLICIES if any(r.self_arranged == PARTLY for r in p.routes.values())] == ["generic-basic"]
