"""The insurer's decision on a case: decided once, when recorded, and then only read.

The coverage rules (:mod:`workflow.coverage.rules`) change as policies change; a decision an
insurer's care consultant gave a patient does not. So the decision is computed when the
``decide_coverage`` event is fired (:func:`decide`, called by the engine before the guards) and
the whole of it goes into the event's recorded payload; the effect (:func:`record_decision`)
only copies that payload into the case's facts. Replaying the audit trail runs the effect again
and so reads the recorded decision: it never asks today's rules.

Seeds 002 ("Neem contact op met uw zorgverzekeraar om te controleren of een second opinion
vergoed wordt", before asking) and 001 ("Overleg inwinnen bij je zorgverzekeraar", before a
self-arranged opinion) place the check before the second opinion is under way; 000's
conditions (a referral among them) are what it reads. New facts make a new decision, a new
event: the earlier one stays in the trail, and the case shows the latest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workflow.cases.rules import EffectInput
from workflow.coverage.rules import COVERED, DEDUCTIBLE_RULE, PARTLY, decide_coverage
from workflow.errors import ValidationError

EVENT = "decide_coverage"
DATA_KEYS = ("policy", "facts")


def decide(data: Mapping[str, Any], route: str, providers: tuple[object, ...] = ()) -> dict[str, Any]:
    """The payload to record for ``decide_coverage``: the command's policy and facts, and the
    decision the coverage rules give today. Raises the rules' own :class:`ValidationError` for a
    bad policy or fact; the facts' ``route`` is the case's (filled in when not stated). The
    providers are not read: the insurer decides whatever hospital the patient chose."""
    extra = sorted(set(data) - set(DATA_KEYS))
    if extra:
        raise ValidationError("data", f"{EVENT} takes only {', '.join(DATA_KEYS)}; unknown: {', '.join(extra)}")
    policy, facts = data.get("policy"), data.get("facts")
    if not isinstance(policy, str):
        raise ValidationError("data.policy", "must be a policy id (see `second-opinion coverage --help`)")
    if not isinstance(facts, Mapping):
        raise ValidationError("data.facts", "must be an object of coverage facts (see docs/domain.md)")
    stated = dict(facts)
    if stated.setdefault("route", route) != route:
        raise ValidationError("facts.route", f"{stated['route']!r} is not this case's route ({route})")
    decision = decide_coverage(stated, policy)
    return {
        "policy": decision.policy,
        "facts": stated,
        "decision": {
            "outcome": decision.outcome,
            "route": decision.route,
            "reasons": [
                {"rule": c.rule, "passed": c.passed, "seed": c.seed, "description": c.description}
                for c in decision.checks
            ],
            "eigen_risico": {
                "applies": decision.deductible_applies,
                "rule": DEDUCTIBLE_RULE.id,
                "seed": DEDUCTIBLE_RULE.seed,
            },
            "never_covered": list(decision.never_covered),
            "notes": list(decision.notes),
        },
    }


def record_decision(e: EffectInput) -> dict[str, Any]:
    """The case's facts with the recorded decision as its latest one (``coverage``): read from
    the payload, never recomputed, so a replay years later shows what was decided then."""
    number = int(e.facts.get("coverage", {}).get("number", 0)) + 1
    latest = {
        "number": number,
        "decided_at": e.at,
        "decided_by": e.role,
        "policy": e.data["policy"],
        "facts": e.data["facts"],
        **e.data["decision"],
    }
    return {**e.facts, "coverage": latest}


def summary(decision: Mapping[str, Any]) -> str:
    """One line for a text view: outcome, policy and whether eigen risico applies."""
    outcome = {COVERED: "covered", PARTLY: "partly covered"}.get(decision.get("outcome", ""), "not covered")
    line = f"{outcome} under {decision.get('policy')} ({decision.get('route')})"
    if decision.get("eigen_risico", {}).get("applies"):
        line += "; eigen risico applies"
    return line
