"""Second-opinion providers and who may waive what, as tables.

A provider (a hospital, an insurer's service) decides what a case needs once the patient has
chosen it (002, step 3: "Kies een ziekenhuis en arts"): its dossier checklist, whether the
patient must be seen, whether patients insured abroad must first contact its costs team, and
the routes it serves. Each row is a version: a case records the version it chose and keeps it,
as it keeps its route version, so editing a provider's rules never changes a case under way.

Contact fields are declared here (name, meaning, and the seed's value where the seed prints
one); an operator fills in or overrides the values (``SECOND_OPINION_PROVIDER_CONTACTS``, see
``docs/domain.md``): they are the deployment's knowledge, not a rule.

:data:`WAIVERS` says who may waive a dossier item on which route: deny by default, like the
permission table it narrows (the role must be allowed ``waive_item`` there too).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from workflow.cases.rules import ALWAYS, DOCTOR_DECIDES, NEVER
from workflow.errors import ValidationError

CONSULTATION_POLICIES = (ALWAYS, DOCTOR_DECIDES, NEVER)
"""Whether the patient is seen: always (003: "Artsen geven alleen een second opinion als zij de
patiënt zelf gezien hebben"), when the doctor decides (002: "beoordeelt of het nodig is om een
afspraak met u te maken"), or never (004: "U hoeft daarvoor niet persoonlijk langs")."""


@dataclass(frozen=True)
class ChecklistItem:
    name: str
    description: str
    required_when: str | None  # a circumstance that makes it required; None: always required
    source: str = "003"
    waivable: bool = True
    """False for an item without which there is nothing to give an opinion on (the online question)."""


@dataclass(frozen=True)
class ContactField:
    name: str
    description: str
    seed_value: str | None = None  # what the seed prints, when it prints one
    source: str = ""


@dataclass(frozen=True)
class ProviderVersion:
    """One version of a provider's rules; a case keeps the version it chose."""

    id: str
    version: int
    name: str
    description: str
    routes: tuple[str, ...]
    checklist: tuple[ChecklistItem, ...]
    consultation: str
    source: str
    costs_team_first: bool = False
    """Patients insured abroad, or whose insurer does not cover the opinion, contact the
    provider's costs team before the dossier is complete and before the appointment (003)."""
    contact_fields: tuple[ContactField, ...] = ()

    def needs_circumstances(self) -> tuple[str, ...]:
        """The circumstances this provider's rules read: those its checklist depends on, and
        whether the patient is insured abroad where the costs team comes first."""
        named = [i.required_when for i in self.checklist if i.required_when is not None]
        return tuple(dict.fromkeys([*named, *(["insured_abroad"] if self.costs_team_first else [])]))


@dataclass(frozen=True)
class Waiver:
    """On ``route``, ``roles`` may waive any waivable item of the case's checklist."""

    route: str
    roles: tuple[str, ...]
    source: str
    why: str


# --- the tables -------------------------------------------------------------------------------

LETTER = ChecklistItem("letter", "A recent, legible letter in Dutch or English on the history and treatments.", None)

LEGACY_CHECKLIST = (
    LETTER,
    ChecklistItem("pathology", "The pathology report, legible, in Dutch or English.", "has_pathology"),
    ChecklistItem("imaging_results", "The latest imaging results (e.g. the CT/MRI report).", "has_imaging"),
    ChecklistItem("imaging", "The images themselves (scans, not loose photographs).", "has_imaging"),
    ChecklistItem("mrsa", "An MRSA check, when treated in a hospital abroad.", "treated_abroad"),
)
"""UMC Utrecht's list (003), which version 1 of every route applied to every case: cases opened
then keep it; cases on a route's version 2 take their provider's."""

_RECORDS = ChecklistItem(
    "medical_records", "The medical data (the dossier with the results of tests and examinations), sent with "
    "the patient's consent or requested by the patient.", None, source="001, 002",
)  # fmt: skip

PROVIDERS = (
    ProviderVersion(
        "umc-utrecht", 1, "UMC Utrecht", "University medical centre; sees every patient, lists the data it needs.",
        routes=("domestic",), checklist=LEGACY_CHECKLIST, consultation=ALWAYS, source="003",
        costs_team_first=True,
        contact_fields=(
            ContactField("costs_team_email", "Team Zorgkosten, e-mail", "TeamZK@umcutrecht.nl", "003"),
            ContactField("costs_team_phone", "Team Zorgkosten, telephone", "(+31) (0)88-75 692 29", "003"),
            ContactField("appointments_phone", "The outpatient clinic of the chosen specialty", None, "003"),
        ),
    ),
    ProviderVersion(
        "jeroen-bosch", 1, "Jeroen Bosch Ziekenhuis", "General hospital; every specialty; the doctor decides "
        "whether to see the patient.", routes=("domestic",), checklist=(_RECORDS,), consultation=DOCTOR_DECIDES,
        source="002",
        contact_fields=(
            ContactField("appointments_url", "Where to make the appointment, once referred",
                         "https://www.jeroenboschziekenhuis.nl/contact-afspraak-maken", "002"),
        ),
    ),
    ProviderVersion(
        "generic-hospital", 1, "A hospital in the Netherlands", "Any domestic provider without a row of its own: "
        "the general rules of 001 and 002.", routes=("domestic",), checklist=(_RECORDS,),
        consultation=DOCTOR_DECIDES, source="001, 002",
        contact_fields=(ContactField("name", "The hospital's name, as the desk records it"),
                        ContactField("appointments_phone", "Where to make the appointment")),
    ),
    ProviderVersion(
        "royal-doctors", 1, "Royal Doctors", "International specialists, through the insurer; the patient visits "
        "no one: an analysis and report from the records.", routes=("royal-doctors",),
        checklist=(
            ChecklistItem("medical_history", "The medical history, with the doctor's letters.", None, "004"),
            ChecklistItem("examinations", "The results of examinations done so far.", None, "004"),
            ChecklistItem("lab_reports", "The laboratory reports.", None, "004"),
        ),
        consultation=NEVER, source="004",
        contact_fields=(ContactField("zorglijn_phone", "The insurer's Zorglijn, for the ZorgConsulent", None, "004"),),
    ),
    ProviderVersion(
        "2e-arts-online", 1, "2e arts online", "The insurer's online service: a question put digitally to a "
        "specialist.", routes=("online",),
        checklist=(ChecklistItem("question", "The question or doubt about the complaint, diagnosis or treatment.",
                                 None, "004", waivable=False),),
        consultation=NEVER, source="004",
        contact_fields=(ContactField("url", "Where the insured put their question"),),
    ),
)  # fmt: skip

WAIVERS = (
    Waiver("domestic", ("second_opinion_doctor", "coordinator"), "002, 003",
           "the second-opinion doctor judges the dossier (002, step 5); the desk records it for them"),
    Waiver("royal-doctors", ("second_opinion_doctor", "care_consultant", "coordinator"), "004",
           "the ZorgConsulent registers the request and Royal Doctors gathers the dossier with the patient"),
    Waiver("online", ("second_opinion_doctor", "care_consultant", "coordinator"), "004",
           "the insurer's own service; the question itself can never be waived"),
)


def provider_problems(
    providers: tuple[ProviderVersion, ...], waivers: tuple[Waiver, ...], routes: tuple[str, ...],
    roles: tuple[str, ...], circumstances: tuple[str, ...],
) -> list[str]:  # fmt: skip
    """What is wrong with the provider and waiver tables against the rest of the definition."""
    problems: list[str] = []
    seen: set[tuple[str, int]] = set()
    for p in providers:
        if (p.id, p.version) in seen:
            problems.append(f"provider {p.id} version {p.version} defined twice")
        seen.add((p.id, p.version))
        if p.consultation not in CONSULTATION_POLICIES:
            problems.append(f"provider {p.id}: consultation {p.consultation!r} is not one of {CONSULTATION_POLICIES}")
        problems += [f"provider {p.id} serves unknown route {r!r}" for r in p.routes if r not in routes]
        names = [i.name for i in p.checklist]
        if len(set(names)) != len(names):
            problems.append(f"provider {p.id}: duplicate checklist items")
        problems += [
            f"provider {p.id}: item {i.name} depends on unknown circumstance {i.required_when!r}"
            for i in p.checklist if i.required_when is not None and i.required_when not in circumstances
        ]  # fmt: skip
    for w in waivers:
        if w.route not in routes:
            problems.append(f"waiver names unknown route {w.route!r}")
        problems += [f"waiver on {w.route} names unknown role {r!r}" for r in w.roles if r not in roles]
    return problems


def contact_problems(providers: tuple[ProviderVersion, ...], contacts: Mapping[str, object]) -> list[str]:
    """What is wrong with an operator's contact values: unknown providers or fields, non-text."""
    fields = {p.id: {f.name for f in p.contact_fields} for p in providers}
    problems: list[str] = []
    for provider, values in contacts.items():
        if provider not in fields:
            problems.append(f"{provider!r} is not a provider; known: {', '.join(fields)}")
        elif not isinstance(values, Mapping):
            problems.append(f"{provider}: give an object of contact fields")
        else:
            for name, value in values.items():
                if name not in fields[provider]:
                    known = ", ".join(sorted(fields[provider]))
                    problems.append(f"{provider}: {name!r} is not a contact field; known: {known}")
                elif not isinstance(value, str) or not 0 < len(value) <= 200 or not value.isprintable():
                    problems.append(f"{provider}.{name}: give printable text of 1 to 200 characters")
    return problems


def choose(data: Mapping[str, Any], route: str, providers: tuple[ProviderVersion, ...]) -> dict[str, Any]:
    """The payload recorded for ``choose_provider``: the provider and the newest version of its rules
    today, which the case then keeps. Raises naming the providers that serve ``route``."""
    extra = sorted(set(data) - {"provider"})
    if extra:
        raise ValidationError("data", f"choose_provider takes only provider; unknown: {', '.join(extra)}")
    serving = serving_route(providers, route)
    key = data.get("provider")
    chosen = serving.get(key) if isinstance(key, str) else None
    if chosen is None:  # what was typed is not repeated: it may be anything
        raise ValidationError("data.provider", f"must be a provider serving the {route} route: "
                              f"{', '.join(serving) or 'none'}")
    return {"provider": chosen.id, "version": chosen.version}


def serving_route(providers: tuple[ProviderVersion, ...], route: str) -> dict[str, ProviderVersion]:
    """The newest version of each provider serving ``route``, by id, in table order."""
    newest: dict[str, ProviderVersion] = {}
    for p in providers:
        if route in p.routes and (p.id not in newest or p.version > newest[p.id].version):
            newest[p.id] = p
    return newest
