"""The guards and effects that the definition table names.

A guard reads a case (state, recorded facts, route rules) and a command, and either lets the
event through or says why not, in words a coordinator can act on. An effect computes the case's
new facts from the old ones and the command; it is pure, and it is run again on replay, so the
facts of any case can be rebuilt from its audit trail. Each function cites its seed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Facts = Mapping[str, Any]


@dataclass(frozen=True)
class GuardInput:
    """What a guard may look at."""

    state: str
    event: str
    role: str
    reason: str | None
    data: Mapping[str, Any]
    facts: Facts
    referral_roles: tuple[str, ...]
    consultation_required: bool
    required_items: tuple[str, ...]
    known_items: tuple[str, ...]
    route_versions: tuple[int, ...]
    screened_by: tuple[str, ...] = ()  # the route's screeners (RouteVersion.screened_by)


@dataclass(frozen=True)
class Guard:
    """A named rule that can refuse an otherwise allowed event; ``check`` returns why, or None."""

    name: str
    description: str
    check: Callable[[GuardInput], str | None]


@dataclass(frozen=True)
class EffectInput:
    facts: Facts
    data: Mapping[str, Any]
    reason: str | None
    role: str
    at: str  # the command's occurred_at, UTC ISO text (what the audit record holds)


Effect = Callable[[EffectInput], dict[str, Any]]

CIRCUMSTANCES = ("treated_abroad", "insured_abroad", "has_pathology", "has_imaging")
CONSENT_BASES = ("own_request", "written")
ADVICE_OUTCOMES = ("agrees", "differs", "inconclusive")
"""The advice against the first provider's diagnosis or treatment (004: "of de eerdere arts gelijk
had of dat er alternatieve (behandel)mogelijkheden zijn"); inconclusive when it says neither."""


def _consent_active(facts: Facts) -> bool:
    consent = facts.get("consent")
    return isinstance(consent, Mapping) and consent.get("withdrawn_at") is None


# --- guards -----------------------------------------------------------------------------------


def _circumstances_valid(g: GuardInput) -> str | None:
    unknown = sorted(set(g.data) - set(CIRCUMSTANCES))
    if unknown or not g.data:
        return f"give one or more of {', '.join(CIRCUMSTANCES)} as true/false" + (
            f" (unknown: {', '.join(unknown)})" if unknown else ""
        )
    wrong = [k for k, v in g.data.items() if not isinstance(v, bool)]
    return f"{', '.join(wrong)} must be true or false" if wrong else None


def _circumstances_recorded(g: GuardInput) -> str | None:
    missing = [c for c in CIRCUMSTANCES if c not in g.facts.get("circumstances", {})]
    return f"record the circumstances first (record_circumstances): {', '.join(missing)}" if missing else None


def _consent_given_validly(g: GuardInput) -> str | None:
    if g.data.get("basis") not in CONSENT_BASES:
        return f"basis must be one of {', '.join(CONSENT_BASES)} (seed 002: own request or written consent)"
    if not isinstance(g.data.get("scope"), str) or not g.data["scope"].strip():
        return "scope must say what may be shared, e.g. 'full dossier to the second-opinion provider'"
    return None


def _consent_active_guard(g: GuardInput) -> str | None:
    if _consent_active(g.facts):
        return None
    if g.facts.get("consent"):
        return "the patient withdrew consent: the dossier may not be used (seed 002)"
    return "no consent recorded: the dossier may be sent only on the patient's request or written consent (002)"


def _known_item(g: GuardInput) -> str | None:
    item = g.data.get("item")
    return None if item in g.known_items else f"{item!r} is not a checklist item; known: {', '.join(g.known_items)}"


def _checklist_complete(g: GuardInput) -> str | None:
    done = g.facts.get("checklist", {})
    missing = [item for item in g.required_items if item not in done]
    return f"dossier incomplete, still missing: {', '.join(missing)} (seed 003)" if missing else None


def _route_referrer(g: GuardInput) -> str | None:
    if g.role in g.referral_roles:
        return None
    return f"on this route the referral is made by: {', '.join(g.referral_roles)}"


def _gp_after_refusal(g: GuardInput) -> str | None:
    if g.facts.get("referral_refused") and g.role == "first_provider":
        return "the first provider refused to refer; the GP may refer instead (seed 001)"
    return None


def _not_refused_before(g: GuardInput) -> str | None:
    return "the first provider already refused; the GP may refer" if g.facts.get("referral_refused") else None


def _costs_team_if_insured_abroad(g: GuardInput) -> str | None:
    """003: "bent u verzekerd in een ander land ... Neem dan eerst contact op met Team Zorgkosten
    voordat u een afspraak maakt". It guards the dossier's completion (the data that must be there
    "alvorens u een afspraak kunt krijgen") and the consultation (the appointment itself), not the
    referral, which the seed does not tie to it. It reads the facts as they stand when those steps
    are taken, so it holds whichever was recorded first: the circumstance or the contact."""
    insured_abroad = g.facts.get("circumstances", {}).get("insured_abroad")
    if insured_abroad and not g.facts.get("costs_team_contacted_at"):
        return "insured abroad: contact the provider's costs team first (contact_costs_team, seed 003)"
    return None


def _advice_outcome_valid(g: GuardInput) -> str | None:
    if g.data.get("outcome") in ADVICE_OUTCOMES:
        return None
    return f"outcome must be one of {', '.join(ADVICE_OUTCOMES)} (against the first provider's diagnosis or treatment)"


def _adoption_valid(g: GuardInput) -> str | None:
    if not isinstance(g.data.get("adopted"), bool):
        return "adopted must be true or false: does the first provider adopt the advice (seed 001)"
    return "the first provider's answer is already recorded" if "advice_adopted" in g.facts else None


SCREENER = "care_consultant"
"""The role that declines only as a route's screener (004), not as the desk or the doctor does."""


def _screener_before_registration(g: GuardInput) -> str | None:
    """004: the ZorgConsulent "bekijkt of uw vraag geschikt is voor Royal Doctors. Zo ja, dan melden
    we u aan": a decline by them is that check, so only on a route they screen and before the
    registration (``refer``). Other roles decline as before."""
    if g.role != SCREENER:
        return None
    if SCREENER not in g.screened_by:
        return "the care consultant judges suitability only on a route they screen (Royal Doctors, seed 004)"
    if g.state != "requested":
        return "the care consultant declines only before registering the request (seed 004)"
    return None


def _consultation_if_required(g: GuardInput) -> str | None:
    needed = g.consultation_required or g.facts.get("consultation_required") is True
    if needed and not g.facts.get("consultation_at"):
        return "the patient must be seen first (record_consultation, seeds 002 and 003)"
    return None


def _newer_route_version(g: GuardInput) -> str | None:
    target = g.data.get("to_version")
    current = g.facts.get("route_version", 1)
    if not isinstance(target, int) or isinstance(target, bool) or target not in g.route_versions:
        return f"to_version must be one of this route's versions: {', '.join(map(str, g.route_versions))}"
    return None if target > current else f"the case is already at version {current}"


CIRCUMSTANCES_VALID = Guard("circumstances_valid", "Only known circumstances, as true/false.", _circumstances_valid)
CIRCUMSTANCES_RECORDED = Guard(
    "circumstances_recorded", "What is required depends on the circumstances: they must be recorded.",
    _circumstances_recorded,
)  # fmt: skip
CONSENT_VALID = Guard("consent_valid", "Consent has a basis (own request or written) and a scope (002).",
                      _consent_given_validly)  # fmt: skip
CONSENT_ACTIVE = Guard("consent_active", "Consent recorded and not withdrawn (002).", _consent_active_guard)
KNOWN_ITEM = Guard("known_item", "The item is on the dossier checklist (003).", _known_item)
CHECKLIST_COMPLETE = Guard("checklist_complete", "Every required item received or waived (003).",
                           _checklist_complete)  # fmt: skip
ROUTE_REFERRER = Guard("route_referrer", "The route decides who refers or registers (000, 004).", _route_referrer)
GP_AFTER_REFUSAL = Guard("gp_after_refusal", "After the first provider refused, the GP refers (001).",
                         _gp_after_refusal)  # fmt: skip
NOT_REFUSED_BEFORE = Guard("not_refused_before", "A refusal is recorded once.", _not_refused_before)
COSTS_TEAM_IF_INSURED_ABROAD = Guard(
    "costs_team_if_insured_abroad",
    "Insured abroad: the costs team is contacted before the dossier is complete and the appointment (003).",
    _costs_team_if_insured_abroad,
)  # fmt: skip
SCREENER_BEFORE_REGISTRATION = Guard(
    "screener_before_registration",
    "The care consultant declines only as the route's screener, before registering (004).",
    _screener_before_registration,
)  # fmt: skip
CONSULTATION_IF_REQUIRED = Guard(
    "consultation_if_required", "If the route or the doctor requires it, the patient was seen (002, 003).",
    _consultation_if_required,
)  # fmt: skip
def _not_awaiting(g: GuardInput) -> str | None:
    """Also guards ``review``: a review done while information is awaited would leave a paused
    deadline that nothing can resume."""
    if not g.facts.get("awaiting_information"):
        return None
    return "information is awaited from the patient (receive_information first)"


def _awaiting(g: GuardInput) -> str | None:
    return None if g.facts.get("awaiting_information") else "no information is awaited (request_information first)"


ADVICE_OUTCOME_VALID = Guard("advice_outcome_valid", "The advice's outcome is agrees, differs or inconclusive.",
                             _advice_outcome_valid)  # fmt: skip
ADOPTION_VALID = Guard("adoption_valid", "Adopted or not (true/false), recorded once (001).", _adoption_valid)
NOT_AWAITING = Guard("not_awaiting", "No information is awaited (one request at a time; review after it came).",
                     _not_awaiting)  # fmt: skip
AWAITING = Guard("awaiting", "Information can only arrive after it was requested.", _awaiting)
NEWER_ROUTE_VERSION = Guard("newer_route_version", "Only to an existing, newer version.", _newer_route_version)

# --- effects ----------------------------------------------------------------------------------


def record_circumstances(e: EffectInput) -> dict[str, Any]:
    return {**e.facts, "circumstances": {**e.facts.get("circumstances", {}), **e.data}}


def record_costs_team_contact(e: EffectInput) -> dict[str, Any]:
    return {**e.facts, "costs_team_contacted_at": e.at}


def record_referral_refusal(e: EffectInput) -> dict[str, Any]:
    return {**e.facts, "referral_refused": {"at": e.at, "reason": e.reason}}


def record_escalation(e: EffectInput) -> dict[str, Any]:
    return {**e.facts, "escalations": [*e.facts.get("escalations", []), {"at": e.at, "by": e.role}]}


def record_consent(e: EffectInput) -> dict[str, Any]:
    consent = {"basis": e.data["basis"], "scope": e.data["scope"], "given_by": e.role, "at": e.at,
               "withdrawn_at": None}  # fmt: skip
    return {**e.facts, "consent": consent}


def record_consent_withdrawal(e: EffectInput) -> dict[str, Any]:
    return {**e.facts, "consent": {**e.facts["consent"], "withdrawn_at": e.at}}


def record_item_received(e: EffectInput) -> dict[str, Any]:
    entry = {"status": "received", "at": e.at}
    return {**e.facts, "checklist": {**e.facts.get("checklist", {}), e.data["item"]: entry}}


def record_item_waived(e: EffectInput) -> dict[str, Any]:
    entry = {"status": "waived", "at": e.at, "reason": e.reason}
    return {**e.facts, "checklist": {**e.facts.get("checklist", {}), e.data["item"]: entry}}


def record_dossier_complete(e: EffectInput) -> dict[str, Any]:
    """The moment the complete dossier is received starts the Royal Doctors clock (004)."""
    return {**e.facts, "dossier_complete_at": e.at}


def record_consultation_required(e: EffectInput) -> dict[str, Any]:
    return {**e.facts, "consultation_required": True}


def record_consultation(e: EffectInput) -> dict[str, Any]:
    return {**e.facts, "consultation_at": e.at}


def record_route_version(e: EffectInput) -> dict[str, Any]:
    return {**e.facts, "route_version": e.data["to_version"]}


def record_information_requested(e: EffectInput) -> dict[str, Any]:
    """Waiting for the patient pauses a deadline whose policy says so (workflow.deadlines.policies)."""
    return {**e.facts, "awaiting_information": True}


def record_information_received(e: EffectInput) -> dict[str, Any]:
    return {**e.facts, "awaiting_information": False}


def record_advice_outcome(e: EffectInput) -> dict[str, Any]:
    """Records written before the outcome was asked for (issue 15) carry none: their facts stay as
    they were, so they replay and verify unchanged."""
    if "outcome" not in e.data:
        return dict(e.facts)
    return {**e.facts, "advice": {"outcome": e.data["outcome"], "at": e.at}}


def record_adoption(e: EffectInput) -> dict[str, Any]:
    return {**e.facts, "advice_adopted": {"adopted": e.data["adopted"], "at": e.at, "by": e.role}}
