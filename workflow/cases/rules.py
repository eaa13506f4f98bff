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

from workflow.privacy import PATIENT_REF_PATTERN

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
    consultation: str  # always | doctor_decides | never: the provider's, or the route's (version 1)
    required_items: tuple[str, ...]
    known_items: tuple[str, ...]
    route_versions: tuple[int, ...]
    screened_by: tuple[str, ...] = ()  # the route's screeners (RouteVersion.screened_by)
    needed_circumstances: tuple[str, ...] = ()
    """The circumstances the case's checklist and costs-team rule read (all of them on version 1)."""
    costs_team_first: bool = True
    providers: tuple[str, ...] = ()
    """The providers serving the case's route, when the route version uses providers; else empty."""
    waived_by: tuple[str, ...] = ()  # roles that may waive an item on this route (providers.WAIVERS)
    waivable: tuple[str, ...] = ()  # the items of the case's checklist that may be waived
    self_paying: bool = False  # the route lets a patient go ahead without a referral, paying (001, 002)


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
ALWAYS, DOCTOR_DECIDES, NEVER = "always", "doctor_decides", "never"  # as providers.CONSULTATION_POLICIES
NOT_COVERED_OUTCOMES = ("not_covered", "partly")
"""Decisions after which a patient may go ahead paying (all or part) themselves (001, 002)."""
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
    missing = [c for c in g.needed_circumstances if c not in g.facts.get("circumstances", {})]
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
    """003: "Valt de tweede mening niet onder uw zorgverzekering, of bent u verzekerd in een ander
    land dan Nederland? Neem dan eerst contact op met Team Zorgkosten voordat u een afspraak maakt".
    A rule of UMC Utrecht's (``costs_team_first``; every case on a route's version 1, which keeps
    the half it had then: insured abroad; a decision that does not cover the opinion counts only
    on a version with providers). It guards the dossier's completion (the data that must be there
    "alvorens u een afspraak kunt krijgen") and the consultation (the appointment itself), not the
    referral, which the seed does not tie to it. It reads the facts as they stand when those steps
    are taken, so it holds whichever was recorded first: the circumstance, the decision or the contact."""
    if not g.costs_team_first or g.facts.get("costs_team_contacted_at"):
        return None
    if g.facts.get("circumstances", {}).get("insured_abroad"):
        return "insured abroad: contact the provider's costs team first (contact_costs_team, seed 003)"
    if not g.providers:  # version 1
        return None
    if g.facts.get("coverage", {}).get("outcome") == "not_covered" or g.facts.get("self_paying"):
        return "not covered by the insurance: contact the provider's costs team first (contact_costs_team, seed 003)"
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
    needed = g.consultation == ALWAYS or g.facts.get("consultation_required") is True
    if needed and not g.facts.get("consultation_at"):
        return "the patient must be seen first (record_consultation, seeds 002 and 003)"
    return None


def _newer_route_version(g: GuardInput) -> str | None:
    target = g.data.get("to_version")
    current = g.facts.get("route_version", 1)
    if not isinstance(target, int) or isinstance(target, bool) or target not in g.route_versions:
        return f"to_version must be one of this route's versions: {', '.join(map(str, g.route_versions))}"
    return None if target > current else f"the case is already at version {current}"


def _provider_chosen(g: GuardInput) -> str | None:
    """002, step 3: "Kies een ziekenhuis en arts": what the dossier must hold, and whether the
    patient is seen, are the chosen provider's (on a route version that uses providers)."""
    if not g.providers or g.facts.get("provider"):
        return None
    return f"choose the provider first (choose_provider, seed 002 step 3): one of {', '.join(g.providers)}"


def _provider_change(g: GuardInput) -> str | None:
    """A first choice needs no reason; a change does, as it restarts the dossier (the new provider's
    checklist). The payload's provider was checked against the route when the event was decided."""
    if not g.providers:
        return "this case's route version has no providers (upgrade_route to the newest version first)"
    current = g.facts.get("provider")
    if not current:
        return None
    if current.get("id") == g.data.get("provider"):
        return f"{current.get('id')} is already the case's provider"
    return None if g.reason and g.reason.strip() else "changing provider needs a reason (--reason)"


def _consultation_possible(g: GuardInput) -> str | None:
    if g.consultation != NEVER:
        return None
    return "this provider gives its opinion without seeing the patient (seed 004: 'niet persoonlijk langs')"


def _waiver_allowed(g: GuardInput) -> str | None:
    if g.role not in g.waived_by:
        return f"on this route a dossier item is waived by: {', '.join(g.waived_by) or 'no one'}"
    item = g.data.get("item")
    if item in g.waivable:
        return None
    return f"{item!r} cannot be waived: without it there is nothing to give an opinion on"


def _self_paying_decided(g: GuardInput) -> str | None:
    """001 ("Regel je zelf een second opinion, dan kan het zijn dat deze niet wordt vergoed, of slechts
    gedeeltelijk") and 002 ("Als de zorgverzekeraar de kosten niet accepteert, moet u deze namelijk
    zelf betalen"): without a referral the patient may go ahead, once the insurer's decision is
    recorded and says it does not pay in full."""
    if not g.self_paying:
        return "on this route the case goes ahead only through its referral or registration"
    outcome = g.facts.get("coverage", {}).get("outcome")
    if outcome is None:
        return "record the insurer's decision first (decide_coverage, seeds 001 and 002)"
    if outcome not in NOT_COVERED_OUTCOMES:
        return "the insurer's decision covers the opinion: refer instead (refer)"
    return None


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


PROVIDER_CHOSEN = Guard("provider_chosen", "The case's provider is chosen, where the route uses providers (002).",
                        _provider_chosen)  # fmt: skip
PROVIDER_CHANGE = Guard("provider_change", "A change of provider names a new one and gives a reason (002).",
                        _provider_change)  # fmt: skip
CONSULTATION_POSSIBLE = Guard("consultation_possible", "The provider sees patients (not Royal Doctors or online, 004).",
                              _consultation_possible)  # fmt: skip
WAIVER_ALLOWED = Guard("waiver_allowed", "The route lets this role waive, and the item may be waived (WAIVERS).",
                       _waiver_allowed)  # fmt: skip
SELF_PAYING_DECIDED = Guard("self_paying_decided", "The insurer's decision says it does not pay in full (001, 002).",
                            _self_paying_decided)  # fmt: skip
ADVICE_OUTCOME_VALID = Guard("advice_outcome_valid", "The advice's outcome is agrees, differs or inconclusive.",
                             _advice_outcome_valid)  # fmt: skip
ADOPTION_VALID = Guard("adoption_valid", "Adopted or not (true/false), recorded once (001).", _adoption_valid)
NOT_AWAITING = Guard("not_awaiting", "No information is awaited (one request at a time; review after it came).",
                     _not_awaiting)  # fmt: skip
AWAITING = Guard("awaiting", "Information can only arrive after it was requested.", _awaiting)
def _assignee_valid(g: GuardInput) -> str | None:
    """A person's actor id, under the one identifier rule (BSNs and the patient's name are screened
    from every data value before the engine sees them); a repeat would record nothing new."""
    who = g.data.get("assignee")
    if not isinstance(who, str) or not PATIENT_REF_PATTERN.fullmatch(who):
        return "assignee must be a person's actor id: 3-64 characters of letters, digits and . _ : -"
    current = g.facts.get("assignee")
    if isinstance(current, Mapping) and current.get("id") == who:
        return f"the case is already assigned to {who}"
    return None


def _assigned(g: GuardInput) -> str | None:
    return None if g.facts.get("assignee") else "the case is not assigned to anyone"


ASSIGNEE_VALID = Guard("assignee_valid", "The assignee is a person's actor id, not the one already assigned.",
                       _assignee_valid)  # fmt: skip
ASSIGNED = Guard("assigned", "Someone is assigned to the case.", _assigned)
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


def record_provider(e: EffectInput) -> dict[str, Any]:
    """The chosen provider and the version of its rules, as decided when fired. A change restarts
    the dossier: items received for one provider's list are not the next one's."""
    chosen = {"id": e.data["provider"], "version": e.data["version"], "at": e.at, "by": e.role}
    facts = {**e.facts, "provider": chosen}
    if e.facts.get("provider"):
        facts.pop("checklist", None)
        facts["provider_changes"] = int(e.facts.get("provider_changes", 0)) + 1
    return facts


def record_self_paying(e: EffectInput) -> dict[str, Any]:
    decision = e.facts.get("coverage", {})
    return {**e.facts, "self_paying": {"at": e.at, "by": e.role, "decision": decision.get("number"),
                                       "outcome": decision.get("outcome")}}  # fmt: skip


def record_advice_outcome(e: EffectInput) -> dict[str, Any]:
    """Records written before the outcome was asked for (issue 15) carry none: their facts stay as
    they were, so they replay and verify unchanged."""
    if "outcome" not in e.data:
        return dict(e.facts)
    return {**e.facts, "advice": {"outcome": e.data["outcome"], "at": e.at}}


def record_adoption(e: EffectInput) -> dict[str, Any]:
    return {**e.facts, "advice_adopted": {"adopted": e.data["adopted"], "at": e.at, "by": e.role}}


def record_assignee(e: EffectInput) -> dict[str, Any]:
    """Who works on the case now (``facts.assignee``: id, at, by the role that assigned); the work
    lists filter on its id. A new assignment replaces the last; the trail keeps them all."""
    return {**e.facts, "assignee": {"id": e.data["assignee"], "at": e.at, "by": e.role}}


def record_unassigned(e: EffectInput) -> dict[str, Any]:
    facts = dict(e.facts)
    facts.pop("assignee", None)
    return facts
