"""The case life cycle and its rules, as tables.

This module is the single place where states, roles, who may fire what, routes, the dossier
checklist, events, their guards and their effects on a case's recorded facts are written down.
The engine (:mod:`workflow.cases.engine`), the CLI help, ``docs/states.md``, ``docs/domain.md`` and the
Mermaid diagram are derived from :data:`DEFINITION`; changing a rule is an edit to a row here.

Every row cites the page of ``../shared/seeds/`` it comes from: 000 (PNO Zorg, conditions of the
basic insurance), 001 (MIND Korrelatie, asking and refusal), 002 (Jeroen Bosch Ziekenhuis, how to
ask, consent), 003 (UMC Utrecht, the data needed, seeing the patient, transfer of care), 004
(Interpolis: domestic, Royal Doctors, online).

Facts are what a case has had recorded about it (consent, checklist items, circumstances...):
a JSON object that only effects change, and that replaying the audit trail rebuilds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from workflow.cases import insurer, providers, rules
from workflow.cases.providers import LEGACY_CHECKLIST, PROVIDERS, WAIVERS, ChecklistItem, ProviderVersion, Waiver
from workflow.cases.rules import Effect, Guard

# --- the shapes of a row ----------------------------------------------------------------------


@dataclass(frozen=True)
class State:
    name: str
    description: str
    terminal: bool = False
    source: str = ""


@dataclass(frozen=True)
class Role:
    name: str
    description: str
    source: str = ""
    sees: str | None = None
    """Which cases a token of this role sees, always within the token's own organisation:
    ``organisation`` (all of them) or ``own-case`` (the case under the token's actor id, a patient's);
    None: no token may see anything (the access rules fail closed)."""
    reads: tuple[str, ...] = ()
    """Reads beyond a single case this role may make (see :data:`READS`)."""


@dataclass(frozen=True)
class RouteVersion:
    """One version of a route's rules; a case keeps the version it was opened under."""

    name: str
    version: int
    description: str
    referral_roles: tuple[str, ...]
    consultation_required: bool = False
    report_due_working_days: int | None = None
    source: str = ""
    screened_by: tuple[str, ...] = ()
    """Roles that, on this route, judge whether a request suits it before registering it, and so
    may decline it then (004: the ZorgConsulent "bekijkt of uw vraag geschikt is")."""
    uses_providers: bool = False
    """The checklist, consultation and costs-team rules come from the case's chosen provider
    (:mod:`workflow.cases.providers`); False: the version-1 rules (one checklist for all)."""
    self_paying: bool = False
    """A patient may go ahead without a referral once the insurer's decision says it does not pay
    in full (001, 002)."""


@dataclass(frozen=True)
class Event:
    name: str
    sources: tuple[str, ...]
    dest: str
    description: str
    reason_required: bool = False
    required_data: tuple[str, ...] = ()
    guards: tuple[Guard, ...] = ()
    effect: Effect | None = None
    source: str = ""
    decide: Callable[[Mapping[str, Any], str, tuple[ProviderVersion, ...]], dict[str, Any]] | None = None
    """Computes, when the event is fired, the payload recorded for it from the command's data, the
    case's route and the definition's providers (raising what is wrong with the data); replay
    reads that payload and never calls this again, so what was decided then stays decided
    (:mod:`workflow.cases.insurer`)."""


SAME = "*"
"""``dest`` of an event that records a fact and leaves the case in the state it was in."""


@dataclass(frozen=True)
class Definition:
    """A complete, self-consistent rule set; :meth:`__post_init__` refuses a broken table."""

    states: tuple[State, ...]
    roles: tuple[Role, ...]
    events: tuple[Event, ...]
    permissions: Mapping[str, tuple[str, ...]]
    routes: tuple[RouteVersion, ...]
    checklist: tuple[ChecklistItem, ...]
    initial: str
    providers: tuple[ProviderVersion, ...] = ()
    waivers: tuple[Waiver, ...] = ()
    _events_by_state: dict[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)
    _events_by_name: dict[str, Event] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [s.name for s in self.states]
        problems = []
        if len(set(names)) != len(names):
            problems.append("duplicate state names")
        if self.initial not in names:
            problems.append(f"initial state {self.initial!r} is not a state")
        roles = {r.name for r in self.roles}
        event_names = {OPEN_EVENT}
        for ev in self.events:
            if ev.name in event_names:
                problems.append(f"event {ev.name!r} defined twice")
            event_names.add(ev.name)
            for st in (*ev.sources, *([] if ev.dest == SAME else [ev.dest])):
                if st not in names:
                    problems.append(f"event {ev.name!r} names unknown state {st!r}")
            for st in ev.sources:  # a fact may be recorded on a closed case; nothing may reopen it
                if st in names and self.state(st).terminal and ev.dest != SAME:
                    problems.append(f"event {ev.name!r} leaves terminal state {st!r}")
        for role, allowed in self.permissions.items():
            if role not in roles:
                problems.append(f"permissions name unknown role {role!r}")
            problems += [f"permissions of {role!r} name unknown event {e!r}" for e in allowed if e not in event_names]
        seen_routes = set()
        for route in self.routes:
            if (route.name, route.version) in seen_routes:
                problems.append(f"route {route.name} version {route.version} defined twice")
            seen_routes.add((route.name, route.version))
            problems += [
                f"route {route.name} names unknown role {r!r}"
                for r in (*route.referral_roles, *route.screened_by)
                if r not in roles
            ]
        if not self.routes:
            problems.append("no routes")
        problems += providers.provider_problems(self.providers, self.waivers, tuple(r.name for r in self.routes),
                                                tuple(roles), rules.CIRCUMSTANCES)  # fmt: skip
        problems += [f"route {r.name} version {r.version} uses providers, but none serves it"
                     for r in self.routes if r.uses_providers and not self.serving(r.name)]  # fmt: skip
        if problems:
            raise ValueError("invalid definition: " + "; ".join(problems))
        by_state = {s.name: tuple(ev.name for ev in self.events if s.name in ev.sources) for s in self.states}
        object.__setattr__(self, "_events_by_state", by_state)
        object.__setattr__(self, "_events_by_name", {ev.name: ev for ev in self.events})

    def state(self, name: str) -> State:
        for s in self.states:
            if s.name == name:
                return s
        raise KeyError(name)

    def event(self, name: str) -> Event | None:
        return self._events_by_name.get(name)

    def events_from(self, state: str) -> tuple[str, ...]:
        """Events the table allows in ``state`` (before permissions and guards)."""
        return self._events_by_state.get(state, ())

    def destination(self, event: Event, state: str) -> str:
        return state if event.dest == SAME else event.dest

    def roles_for(self, event: str) -> tuple[str, ...]:
        """Roles the permission table lets fire ``event`` (deny by default)."""
        return tuple(role for role, allowed in self.permissions.items() if event in allowed)

    def may(self, role: str, event: str) -> bool:
        return event in self.permissions.get(role, ())

    def route(self, name: str, version: int | None = None) -> RouteVersion | None:
        """A route's rules at ``version`` (the newest when None)."""
        versions = [r for r in self.routes if r.name == name and (version is None or r.version == version)]
        return max(versions, key=lambda r: r.version) if versions else None

    def serving(self, route: str) -> dict[str, ProviderVersion]:
        """The newest version of each provider serving ``route``, by id."""
        return providers.serving_route(self.providers, route)

    def provider(self, id_: str, version: int) -> ProviderVersion | None:
        return next((p for p in self.providers if p.id == id_ and p.version == version), None)

    def provider_of(self, route: RouteVersion, facts: Mapping[str, Any]) -> ProviderVersion | None:
        """The case's chosen provider (None on a route version without providers, or none chosen)."""
        chosen = facts.get("provider")
        if not route.uses_providers or not isinstance(chosen, Mapping):
            return None
        return self.provider(chosen.get("id", ""), chosen.get("version", 0))

    def checklist_for(self, route: RouteVersion, facts: Mapping[str, Any]) -> tuple[ChecklistItem, ...]:
        """The chosen provider's list; version 1 of a route: the one list it had; none chosen: ()."""
        if not route.uses_providers:
            return self.checklist
        chosen = self.provider_of(route, facts)
        return chosen.checklist if chosen else ()

    def required_items(
        self, facts: Mapping[str, Any], checklist: tuple[ChecklistItem, ...] | None = None
    ) -> tuple[str, ...]:
        circumstances = facts.get("circumstances", {})
        return tuple(
            item.name
            for item in (self.checklist if checklist is None else checklist)
            if item.required_when is None or circumstances.get(item.required_when) is True
        )

    def waived_by(self, route: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r for w in self.waivers if w.route == route for r in w.roles))

    @cached_property  # the tables never change after construction; read on every command
    def event_names(self) -> tuple[str, ...]:
        return tuple(ev.name for ev in self.events)

    @cached_property  # the tables never change after construction; read on every command
    def route_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.name for r in self.routes))

    @cached_property  # the tables never change after construction; read on every command
    def role_names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.roles)

    @property
    def open_states(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.states if not s.terminal)


OPEN_EVENT = "open"
"""The audit trail's name for the command that creates a case (it is not a transition)."""

# --- the tables -------------------------------------------------------------------------------

STATES = (
    State("requested", "The patient's wish for a second opinion is registered.", source="000, 002"),
    State("referred", "Referred by the first provider or the GP (or registered by the care consultant, or going "
          "ahead without a referral, self-paying).", source="000, 001, 002, 004"),
    State("dossier_received", "The second-opinion doctor has the complete medical dossier.", source="002, 003, 004"),
    State("reviewed", "The second-opinion doctor has assessed the dossier (and, if needed, the patient).",
          source="002, 003"),
    State("advice_returned", "The advice has been given to the patient.", source="002, 004"),
    State("back_to_first_provider", "The patient is back with the first provider, who stays responsible.",
          terminal=True, source="000, 003"),
    State("care_transferred", "By exception, care moved to the second-opinion provider.", terminal=True,
          source="003"),
    State("withdrawn", "The patient or the desk stopped the case; a reason is recorded.", terminal=True),
    State("declined", "The request was declined before review; a reason is recorded.", terminal=True),
)  # fmt: skip

ORGANISATION, OWN_CASE = "organisation", "own-case"

READS = {
    "audit": "verify and export the audit trail of the organisation's cases",
    "access-log": "read the access log (a patient gets only the records about their own case)",
    "reports": "read reports: figures aggregated over the organisation's cases, naming no case or patient",
    "changes": "pull the change feed of the organisation's cases (GET /events)",
    "webhooks": "manage the organisation's webhook subscriptions (their URLs and secrets)",
}
"""Reads beyond a single case; a role lists those it may make in its ``reads``."""

ROLES = (
    Role("patient", "The patient; may ask, consent, escalate and stop at any time.", "001, 002", sees=OWN_CASE,
         reads=("access-log",)),
    Role("gp", "The patient's GP; may refer, also after the first provider refused.", "000, 001",
         sees=ORGANISATION),
    Role("first_provider", "The treating doctor; refers, or refuses only for serious reasons.", "000, 001",
         sees=ORGANISATION),
    Role("second_opinion_doctor", "The doctor who gives the second opinion.", "002, 003", sees=ORGANISATION),
    Role("care_consultant", "The insurer's ZorgConsulent; registers Royal Doctors requests.", "001, 004",
         sees=ORGANISATION, reads=("reports",)),
    Role("coordinator", "A care-coordination desk (an insurer's team, a hospital's second-opinion desk).",
         sees=ORGANISATION, reads=("reports", "changes", "webhooks")),
    Role("auditor", "Reads the audit trail; fires nothing.", sees=ORGANISATION,
         reads=("audit", "access-log", "reports", "changes")),
    Role("system", "Scheduled jobs of this library (deadlines)."),
)  # fmt: skip

_OPEN = tuple(s.name for s in STATES if not s.terminal)
_BEFORE_REVIEW = ("requested", "referred", "dossier_received")

_DOMESTIC = "Second opinion from a provider in the Netherlands, basic insurance."
_ROYAL = ("The insurer's international second opinion through Royal Doctors: no referral, the care consultant "
          "registers the request; report within 18 working days of the complete dossier.")
_ONLINE = "The insurer's online second-opinion service (2e arts online)."
# Version 1: one checklist (UMC Utrecht's) for every case; kept for the cases opened under it.
# Version 2: the case's provider decides its checklist, consultation and costs-team rule.
ROUTES = (
    RouteVersion("domestic", 1, _DOMESTIC, referral_roles=("first_provider", "gp"), source="000, 001, 002"),
    RouteVersion("royal-doctors", 1, _ROYAL, referral_roles=("care_consultant",), report_due_working_days=18,
                 source="004", screened_by=("care_consultant",)),
    RouteVersion("online", 1, _ONLINE, referral_roles=("care_consultant", "patient"), source="004"),
    RouteVersion("domestic", 2, _DOMESTIC, referral_roles=("first_provider", "gp"), source="000, 001, 002",
                 uses_providers=True, self_paying=True),
    RouteVersion("royal-doctors", 2, _ROYAL, referral_roles=("care_consultant",), report_due_working_days=18,
                 source="004", screened_by=("care_consultant",), uses_providers=True),
    RouteVersion("online", 2, _ONLINE, referral_roles=("care_consultant", "patient"), source="004",
                 uses_providers=True),
)  # fmt: skip

CHECKLIST = LEGACY_CHECKLIST

EVENTS = (
    # recording facts: the case stays where it is
    Event("record_circumstances", _BEFORE_REVIEW, SAME,
          "Record circumstances that decide what is required: treated_abroad, insured_abroad, has_pathology, "
          "has_imaging (true/false).", guards=(rules.CIRCUMSTANCES_VALID,), effect=rules.record_circumstances,
          source="003"),
    Event("choose_provider", ("requested", "referred"), SAME,
          "Record the provider the patient chose: data provider (one serving the route); a change needs a reason "
          "and restarts the dossier's checklist.", required_data=("provider",), guards=(rules.PROVIDER_CHANGE,),
          effect=rules.record_provider, decide=providers.choose,
          source="002"),
    Event("contact_costs_team", _BEFORE_REVIEW, SAME,
          "Record that the provider's costs team was contacted (patients insured abroad), before the "
          "appointment.",
          effect=rules.record_costs_team_contact, source="003"),
    Event("refuse_referral", ("requested",), SAME,
          "The first provider refuses to refer, for a serious reason; the GP may then refer.",
          reason_required=True, guards=(rules.NOT_REFUSED_BEFORE,), effect=rules.record_referral_refusal,
          source="001"),
    # 001: also after the return to the own doctor, when patient and doctor disagree on the advice;
    # recorded on the closed case, which stays closed
    Event("escalate", (*_OPEN, "back_to_first_provider"), SAME, "The patient turns to the insurer's care "
          "consultant.", reason_required=True, effect=rules.record_escalation, source="001"),
    Event("give_consent", _OPEN, SAME,
          "Record consent to send the dossier: data basis (own_request | written) and scope.",
          required_data=("basis", "scope"), guards=(rules.CONSENT_VALID,), effect=rules.record_consent,
          source="002"),
    Event("withdraw_consent", _OPEN, SAME, "The patient withdraws consent; the dossier may no longer be used.",
          guards=(rules.CONSENT_ACTIVE,), effect=rules.record_consent_withdrawal, source="002"),
    Event("receive_item", ("referred",), SAME, "Record a dossier item as received: data item.",
          required_data=("item",), guards=(rules.PROVIDER_CHOSEN, rules.CONSENT_ACTIVE, rules.KNOWN_ITEM),
          effect=rules.record_item_received, source="003"),
    Event("waive_item", ("referred",), SAME, "Waive a dossier item, with the reason: data item.",
          reason_required=True, required_data=("item",),
          guards=(rules.PROVIDER_CHOSEN, rules.KNOWN_ITEM, rules.WAIVER_ALLOWED), effect=rules.record_item_waived,
          source="003"),
    Event("require_consultation", ("dossier_received",), SAME,
          "The second-opinion doctor wants to see the patient before giving an opinion.",
          guards=(rules.CONSULTATION_POSSIBLE,), effect=rules.record_consultation_required, source="002, 003"),
    Event("record_consultation", ("dossier_received",), SAME, "Record that the patient was seen.",
          guards=(rules.CONSULTATION_POSSIBLE, rules.CONSENT_ACTIVE, rules.COSTS_TEAM_IF_INSURED_ABROAD),
          effect=rules.record_consultation, source="002, 003"),
    Event("request_information", ("dossier_received",), SAME,
          "The second-opinion doctor waits for missing information from the patient (pauses the report "
          "deadline where its policy says so).", reason_required=True, guards=(rules.NOT_AWAITING,),
          effect=rules.record_information_requested),
    Event("receive_information", ("dossier_received",), SAME, "The awaited information has arrived.",
          guards=(rules.AWAITING,), effect=rules.record_information_received),
    Event(insurer.EVENT, ("requested", "referred"), SAME,
          "Record the insurer's coverage decision: data policy and facts (as for `second-opinion coverage`); "
          "decided by the coverage rules when fired, kept as decided. New facts: fire it again.",
          required_data=insurer.DATA_KEYS, effect=insurer.record_decision, decide=insurer.decide,
          source="000, 001, 002, 004"),
    Event("upgrade_route", _OPEN, SAME, "Move the case to a newer version of its route's rules: data to_version.",
          required_data=("to_version",), guards=(rules.NEWER_ROUTE_VERSION,), effect=rules.record_route_version),
    # 001: "Je huidige behandelaar neemt het advies over of niet" -- after the return, by that doctor;
    # not on hand_back, which the desk fires before the doctor has weighed the advice
    Event("record_adoption", ("back_to_first_provider",), SAME,
          "Whether the first provider adopts the advice: data adopted (true/false), once.",
          required_data=("adopted",), guards=(rules.ADOPTION_VALID,), effect=rules.record_adoption, source="001"),
    # who works on the case (issue 16): the desk distributes the work (not the doctor: permissions are per role,
    # and "only themselves" would need the actor id in the guards); the work lists read facts.assignee.id
    Event("assign", _OPEN, SAME, "Assign the case to a person: data assignee (their actor id).",
          required_data=("assignee",), guards=(rules.ASSIGNEE_VALID,), effect=rules.record_assignee),
    Event("unassign", _OPEN, SAME, "Leave the case unassigned.", guards=(rules.ASSIGNED,),
          effect=rules.record_unassigned),
    # the main path
    Event("refer", ("requested",), "referred", "Record the referral (or, on Royal Doctors, the registration).",
          guards=(rules.ROUTE_REFERRER, rules.GP_AFTER_REFUSAL), source="000, 001, 004"),
    Event("proceed_self_paying", ("requested",), "referred", "Go ahead without a referral, the patient paying "
          "what the insurer's recorded decision does not (not covered, or partly).",
          guards=(rules.SELF_PAYING_DECIDED,), effect=rules.record_self_paying, source="001, 002"),
    Event("receive_dossier", ("referred",), "dossier_received", "The complete dossier has arrived.",
          guards=(rules.PROVIDER_CHOSEN, rules.CONSENT_ACTIVE, rules.CIRCUMSTANCES_RECORDED, rules.CHECKLIST_COMPLETE,
                  rules.COSTS_TEAM_IF_INSURED_ABROAD), effect=rules.record_dossier_complete, source="002, 003, 004"),
    Event("review", ("dossier_received",), "reviewed", "The review is done.",
          guards=(rules.CONSENT_ACTIVE, rules.CONSULTATION_IF_REQUIRED, rules.NOT_AWAITING), source="002, 003"),
    Event("return_advice", ("reviewed",), "advice_returned", "The advice was given to the patient: data "
          "outcome (agrees | differs | inconclusive, against the first provider's diagnosis or treatment).",
          required_data=("outcome",), guards=(rules.ADVICE_OUTCOME_VALID,), effect=rules.record_advice_outcome,
          source="002, 004"),
    Event("hand_back", ("advice_returned",), "back_to_first_provider",
          "The patient returns to the first provider with the advice.", source="000, 003"),
    Event("transfer_care", ("advice_returned",), "care_transferred",
          "By exception, and with the first provider, care moves to the second-opinion provider.",
          reason_required=True, source="003"),
    Event("withdraw", _OPEN, "withdrawn", "Stop the case; a reason is required.", reason_required=True),
    Event("decline", ("requested", "referred"), "declined", "Decline the request; a reason is required. The "
          "care consultant declines only as the route's screener, before registering (004).",
          reason_required=True, guards=(rules.SCREENER_BEFORE_REGISTRATION,), source="004"),
)  # fmt: skip

# One permission table, role by role; anything not listed is denied.
PERMISSIONS: dict[str, tuple[str, ...]] = {
    "patient": ("open", "record_circumstances", "contact_costs_team", "escalate", "give_consent", "withdraw_consent",
                "refer", "withdraw", "choose_provider", "proceed_self_paying"),
    "gp": ("open", "record_circumstances", "refer", "give_consent", "choose_provider"),
    "first_provider": ("open", "record_circumstances", "refer", "refuse_referral", "contact_costs_team",
                       "transfer_care", "record_adoption", "choose_provider"),
    "second_opinion_doctor": ("receive_item", "waive_item", "receive_dossier", "require_consultation",
                              "record_consultation", "request_information", "receive_information", "review",
                              "return_advice", "transfer_care", "decline"),
    "care_consultant": ("open", "record_circumstances", "contact_costs_team", "escalate", "give_consent", "refer",
                        "receive_item", "receive_dossier", "request_information", "receive_information",
                        "return_advice", "hand_back", "withdraw", "decline", "decide_coverage", "choose_provider",
                        "waive_item", "assign", "unassign"),
    "coordinator": ("open", "record_circumstances", "contact_costs_team", "give_consent", "withdraw_consent",
                    "receive_item", "waive_item", "receive_dossier", "record_consultation", "request_information",
                    "receive_information", "hand_back",
                    "transfer_care", "withdraw", "decline", "upgrade_route", "record_adoption", "decide_coverage",
                    "choose_provider", "proceed_self_paying", "assign", "unassign"),
    "auditor": (),
    "system": (),
}  # fmt: skip

DEFINITION = Definition(
    states=STATES,
    roles=ROLES,
    events=EVENTS,
    permissions=PERMISSIONS,
    routes=ROUTES,
    checklist=CHECKLIST,
    initial="requested",
    providers=PROVIDERS,
    waivers=WAIVERS,
)


def initial_facts(route_version: int, provider: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The facts of a newly opened case: its route version, and the provider chosen at opening
    (id, version, at, by), which the opening record's payload holds for replay."""
    return {"route_version": route_version, **({"provider": dict(provider)} if provider else {})}
