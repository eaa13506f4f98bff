"""Will the insurer pay? A pure decision over facts the caller states, with its rules as data.

A coverage question is asked before anything is booked (seed 002: "Neem contact op met uw
zorgverzekeraar om te controleren of een second opinion vergoed wordt"), often before a case
exists, so it reads no case and writes nothing. Every answer lists each rule it checked, passed
or failed, with the seed page the rule comes from, so a care consultant can explain it.

The three tables below are the only place these rules live: :data:`FACTS` (what a caller must
state, a contract), :data:`RULES` (one row per condition, citing its seed) and :data:`POLICIES`
(which rules an insurer's policy applies per route). ``docs/domain.md`` is generated from them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from workflow.errors import ValidationError

# --- facts: the caller's side of the contract --------------------------------------------------


@dataclass(frozen=True)
class Fact:
    name: str
    description: str
    values: tuple[Any, ...]  # the allowed values; (True, False) for a yes/no fact


_YES_NO = (True, False)
ROUTE_VALUES = ("domestic", "royal-doctors", "online")

FACTS = (
    Fact("route", "How the second opinion is organised.", ROUTE_VALUES),
    Fact("purpose", "What the second opinion is about.", ("diagnosis", "treatment", "work_disability")),
    Fact("care_in_basic_package", "The care (and what the opinion is about) is in the basic package.", _YES_NO),
    Fact("same_specialty", "The second-opinion doctor works in the first provider's specialty.", _YES_NO),
    Fact("referral_by", "Who referred the patient.", ("first_provider", "gp", "other_doctor", "none")),
    Fact("returns_to_first_provider", "The patient goes back to the first provider afterwards.", _YES_NO),
    Fact("gp_or_obstetric_care", "The opinion is about GP care or obstetric care.", _YES_NO),
    Fact("first_provider_is_doctor", "The first provider is a doctor; needed when `referral_by` is `first_provider`.",
         _YES_NO),
    Fact("age_band", "`minor` (under 18) or `adult`, never a date of birth; needed where the deductible is consulted.",
         ("minor", "adult")),
)  # fmt: skip
_FACTS = {f.name: f for f in FACTS}

# --- rules ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    seed: str
    reads: tuple[str, ...]  # every fact the rule may read
    holds: Callable[[Mapping[str, Any]], bool]
    needs: Callable[[Mapping[str, Any]], tuple[str, ...]] | None = None
    """The facts the rule needs given the others, when not all of ``reads`` always matter: who the
    first provider is matters only when the first provider referred. None: all of ``reads``."""

    def required(self, facts: Mapping[str, Any]) -> tuple[str, ...]:
        return self.reads if self.needs is None else self.needs(facts)


def _referral_needs(facts: Mapping[str, Any]) -> tuple[str, ...]:
    return ("referral_by", "first_provider_is_doctor") if facts.get("referral_by") == "first_provider" else (
        "referral_by",)


def _referred_by_doctor(facts: Mapping[str, Any]) -> bool:
    """000: "Dit kan uw eigen zorgverlener zijn als dat een arts is. Anders kunt u uw huisarts om een
    verwijzing vragen": the GP always counts, the first provider only when a doctor."""
    if facts["referral_by"] == "first_provider":
        return facts["first_provider_is_doctor"] is True
    return bool(facts["referral_by"] == "gp")


RULES = (
    Rule("basic_package", "The care, and the diagnosis or treatment the opinion is about, is basic-package care.",
         "000", ("care_in_basic_package",), lambda f: f["care_in_basic_package"] is True),
    Rule("same_specialty", "The second-opinion doctor works in the same specialty as the first provider.",
         "000", ("same_specialty",), lambda f: f["same_specialty"] is True),
    Rule("referred_by_doctor", "A referral from the GP, or from the first provider if that provider is a doctor.",
         "000, 002", ("referral_by", "first_provider_is_doctor"), _referred_by_doctor, _referral_needs),
    Rule("returns_to_first_provider", "The patient returns to the first provider with the opinion.",
         "000", ("returns_to_first_provider",), lambda f: f["returns_to_first_provider"] is True),
    Rule("not_work_disability", "Not an opinion on the degree of work disability (never covered).",
         "000", ("purpose",), lambda f: f["purpose"] != "work_disability"),
    Rule("zorgactief_for_royal_doctors", "Royal Doctors abroad is covered only with the supplementary ZorgActief.",
         "004", (), lambda f: False),
    Rule("zorgactief_covers_royal_doctors", "ZorgActief covers the Royal Doctors opinion in full; no referral needed.",
         "004", (), lambda f: True),
    Rule("insurer_online_service", "2e arts online is the insurer's own service to its insured.",
         "004", (), lambda f: True),
)  # fmt: skip
_RULES = {r.id: r for r in RULES}

DEDUCTIBLE_RULE = Rule(
    "deductible",
    "The deductible (eigen risico) applies unless the opinion is about GP or obstetric care, and only to"
    " adults: under the Zorgverzekeringswet (art. 19) no one under 18 pays it.",
    "000, 001",
    ("gp_or_obstetric_care", "age_band"),
    lambda f: f["gp_or_obstetric_care"] is False and f["age_band"] == "adult",
)

EVERY_ROUTE = ("not_work_disability",)
"""Rules checked on every route of every policy, after the route's own: seed 000 lists what is
"niet vergoed" whatever the route, so no route table can leave the purpose unread."""

NEVER_COVERED = (
    ("work_disability", "a second opinion on the degree of work disability", "000"),
    ("dossier_copy", "the cost of a copy of the medical dossier, when the provider charges for it", "000"),
)
ADVICE_MAY_EXCEED_COVER = (
    "The advice may recommend care that the basic insurance does not cover: foreign doctors may "
    "advise differently from Dutch practice (004)."
)

# --- policies ---------------------------------------------------------------------------------

COVERED, PARTLY, NOT_COVERED = "covered", "partly", "not_covered"
OUTCOMES = (COVERED, PARTLY, NOT_COVERED)
REFERRAL_RULE = "referred_by_doctor"
SELF_ARRANGED_PARTLY = (
    "A self-arranged opinion (no referral by a doctor) is reimbursed in part; how much depends on the "
    "insurer's conditions (001), which this decision does not know."
)


@dataclass(frozen=True)
class RouteCover:
    """How one policy treats one route: the rules that must all hold (besides :data:`EVERY_ROUTE`),
    and whether the deductible is consulted."""

    rules: tuple[str, ...]
    deductible: bool  # whether DEDUCTIBLE_RULE is consulted at all on this route
    notes: tuple[str, ...] = ()
    self_arranged: str = NOT_COVERED
    """The outcome when every rule holds but the referral (a self-arranged opinion): not covered
    (000 makes the referral a condition), or partly (001: "niet ... vergoed, of slechts gedeeltelijk")."""


@dataclass(frozen=True)
class Policy:
    id: str
    insurer: str
    description: str
    seed: str
    routes: Mapping[str, RouteCover]


_BASIC_DOMESTIC = RouteCover(
    ("basic_package", "same_specialty", "referred_by_doctor", "returns_to_first_provider"),
    deductible=True,
)

POLICIES = (
    Policy("pno-basic", "PNO Zorg", "Basic insurance: the five conditions of seed 000.", "000",
           {"domestic": _BASIC_DOMESTIC}),
    Policy("interpolis-basic", "Interpolis", "Basic insurance: a second opinion in the Netherlands.", "004",
           {"domestic": _BASIC_DOMESTIC,
            "royal-doctors": RouteCover(("zorgactief_for_royal_doctors",), deductible=False),
            "online": RouteCover(("insurer_online_service",), deductible=False)}),
    Policy("interpolis-zorgactief", "Interpolis", "Basic insurance plus the supplementary ZorgActief.", "004",
           {"domestic": _BASIC_DOMESTIC,
            "royal-doctors": RouteCover(("zorgactief_covers_royal_doctors",), deductible=False,
                                        notes=(ADVICE_MAY_EXCEED_COVER,)),
            "online": RouteCover(("insurer_online_service",), deductible=False)}),
    Policy("generic-basic", "(any)", "Basic insurance as seed 001 describes it in general, for an insurer "
           "without a row: covered after a referral, in part when self-arranged.", "001",
           {"domestic": RouteCover(_BASIC_DOMESTIC.rules, deductible=True, self_arranged=PARTLY)}),
)  # fmt: skip
_POLICIES = {p.id: p for p in POLICIES}

# --- the decision -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleCheck:
    rule: str
    passed: bool
    seed: str
    description: str


@dataclass(frozen=True)
class CoverageDecision:
    policy: str
    route: str
    covered: bool
    checks: tuple[RuleCheck, ...]
    deductible_applies: bool
    never_covered: tuple[str, ...]
    notes: tuple[str, ...]
    outcome: str = NOT_COVERED
    """covered (every rule holds), partly (only the referral fails, on a route whose policy pays a
    self-arranged opinion in part) or not_covered; ``covered`` is True only for the first."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "route": self.route,
            "outcome": self.outcome,
            "covered": self.covered,
            "checks": [c.__dict__ for c in self.checks],
            "deductible_applies": self.deductible_applies,
            "never_covered": list(self.never_covered),
            "notes": list(self.notes),
        }


def policy_ids() -> tuple[str, ...]:
    return tuple(_POLICIES)


def decide_coverage(facts: Mapping[str, Any], policy: str) -> CoverageDecision:
    """Decide for one policy; raises :class:`ValidationError` naming any missing or bad fact."""
    chosen = _POLICIES.get(policy)
    if chosen is None:
        raise ValidationError("policy", f"{policy!r} is not a policy; known: {', '.join(_POLICIES)}")
    _check_known(facts)
    _require(facts, ("route",))
    cover = chosen.routes.get(facts["route"])
    never = tuple(f"{text} ({seed})" for _, text, seed in NEVER_COVERED)
    always = [_RULES[r] for r in EVERY_ROUTE]
    if cover is None:
        _require(facts, _needed(always, facts))
        offered = RuleCheck("route_offered", False, chosen.seed,
                            f"{chosen.id} covers the routes: {', '.join(chosen.routes)}")  # fmt: skip
        checks = (offered, *_checked(always, facts))
        return CoverageDecision(chosen.id, facts["route"], False, checks, False, never, ())
    rules = [_RULES[r] for r in cover.rules] + [r for r in always if r.id not in cover.rules]
    _require(facts, _needed(rules + ([DEDUCTIBLE_RULE] if cover.deductible else []), facts))
    checks = _checked(rules, facts)
    covered = all(c.passed for c in checks)
    failed = {c.rule for c in checks if not c.passed}
    outcome = COVERED if covered else (cover.self_arranged if failed == {REFERRAL_RULE} else NOT_COVERED)
    deductible = outcome != NOT_COVERED and cover.deductible and DEDUCTIBLE_RULE.holds(facts)
    notes = (*cover.notes, *([SELF_ARRANGED_PARTLY] if outcome == PARTLY else []))
    return CoverageDecision(chosen.id, facts["route"], covered, checks, deductible, never, notes, outcome)


def decide_all(facts: Mapping[str, Any]) -> list[CoverageDecision]:
    return [decide_coverage(facts, p.id) for p in POLICIES]


def _check_known(facts: Mapping[str, Any]) -> None:
    unknown = sorted(set(facts) - set(_FACTS))
    if unknown:
        quoted = ", ".join(map(repr, unknown))  # typed names: a line break or an undecodable byte stays visible
        raise ValidationError("facts", f"unknown fact(s): {quoted}; known: {', '.join(_FACTS)}")
    for name, value in facts.items():
        allowed = _FACTS[name].values
        if not any(value is v or (type(value) is type(v) and value == v) for v in allowed):
            shown = ", ".join("true/false" if v is True else str(v) for v in allowed if v is not False)
            raise ValidationError(f"facts.{name}", f"{value!r} is not one of: {shown}")


def _needed(rules: list[Rule], facts: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name for rule in rules for name in rule.required(facts)))


def _checked(rules: list[Rule], facts: Mapping[str, Any]) -> tuple[RuleCheck, ...]:
    return tuple(RuleCheck(r.id, r.holds(facts), r.seed, r.description) for r in rules)


def _require(facts: Mapping[str, Any], names: tuple[str, ...]) -> None:
    missing = [n for n in names if n not in facts]
    if missing:
        raise ValidationError("facts", f"missing fact(s) this decision needs: {', '.join(missing)}")
