"""Providers as versioned data, waivers per route and self-paying patients: one scenario per rule,
each citing the seed page it comes from (../shared/seeds/)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.conftest import CONSENT, CONSULTANT, COVERAGE_FACTS, DESK, DOCTOR, GP, NO_CIRCUMSTANCES, PATIENT
from workflow import DEFINITION, CaseService, Engine, GuardRefused, ValidationError
from workflow.cases.providers import PROVIDERS, ChecklistItem

pytestmark = pytest.mark.parametrize("db_url", ["memory", "sqlite"], indirect=True)

ROYAL_ITEMS = ("medical_history", "examinations", "lab_reports")
ABROAD = {**NO_CIRCUMSTANCES, "treated_abroad": True, "insured_abroad": True}


def outcomes(service, case_id):
    return [(r.event, r.outcome) for r in service.history(case_id)]


def refused(service, case_id, event, actor, match, **kwargs):
    """Fire and expect the refusal ``match``; the case is unchanged (only a refusal record is added)."""
    before = service.case(case_id)
    with pytest.raises((GuardRefused, ValidationError), match=match):
        service.fire(case_id, event, actor=actor, **kwargs)
    after = service.case(case_id)
    assert (after.state, after.version, dict(after.facts)) == (before.state, before.version, dict(before.facts))


def test_004_royal_doctors_asks_its_own_records_not_mrsa_and_never_sees_the_patient(service):
    """004: "U hoeft daarvoor niet persoonlijk langs"; "Met uw gegevens, medische voorgeschiedenis,
    onderzoeken en laboverslagen". A patient treated abroad is not asked for an MRSA check (003 is
    UMC Utrecht's rule), and the care consultant may waive an item on this route."""
    case_id = service.open_case("PX-R1", actor=CONSULTANT, route="royal-doctors").case_id
    assert service.case(case_id).facts["provider"]["id"] == "royal-doctors"  # the only one serving the route
    service.fire(case_id, "record_circumstances", actor=CONSULTANT, data={"treated_abroad": True})
    service.fire(case_id, "give_consent", actor=PATIENT, data=CONSENT)
    service.fire(case_id, "refer", actor=CONSULTANT)
    refused(service, case_id, "receive_item", DOCTOR, "'mrsa' is not a checklist item", data={"item": "mrsa"})
    refused(service, case_id, "receive_dossier", DOCTOR, "still missing: medical_history, examinations, lab_reports")
    service.fire(case_id, "receive_item", actor=DOCTOR, data={"item": "medical_history"})
    service.fire(case_id, "receive_item", actor=DOCTOR, data={"item": "examinations"})
    service.fire(case_id, "waive_item", actor=CONSULTANT, reason="no laboratory tests", data={"item": "lab_reports"})
    service.fire(case_id, "receive_dossier", actor=DOCTOR)  # no other circumstance is asked for
    refused(service, case_id, "require_consultation", DOCTOR, "without seeing the patient")
    refused(service, case_id, "record_consultation", DOCTOR, "without seeing the patient")
    service.fire(case_id, "review", actor=DOCTOR)
    assert service.case(case_id).state == "reviewed"
    assert service.verify().ok


def test_004_online_needs_the_question_which_no_one_may_waive(service):
    """004: 2e arts online, "vragen en twijfels ... digitaal kunt voorleggen aan een specialist"."""
    case_id = service.open_case("PX-O1", actor=PATIENT, route="online").case_id
    service.fire(case_id, "give_consent", actor=PATIENT, data=CONSENT)
    service.fire(case_id, "refer", actor=PATIENT)
    refused(service, case_id, "waive_item", CONSULTANT, "cannot be waived", reason="none", data={"item": "question"})
    refused(service, case_id, "receive_dossier", DOCTOR, "still missing: question")
    service.fire(case_id, "receive_item", actor=DOCTOR, data={"item": "question"})
    service.fire(case_id, "receive_dossier", actor=DOCTOR)
    service.fire(case_id, "review", actor=DOCTOR)
    assert service.verify().ok


def test_002_the_patient_chooses_a_hospital_whose_doctor_decides_on_an_appointment(service):
    """002, step 3 "Kies een ziekenhuis en arts"; step 5 "De andere arts ... beoordeelt of het nodig is
    om een afspraak met u te maken". Until the choice, no dossier item can be recorded."""
    case_id = service.open_case("PX-J1", actor=PATIENT).case_id
    service.fire(case_id, "record_circumstances", actor=GP, data=NO_CIRCUMSTANCES)
    service.fire(case_id, "give_consent", actor=PATIENT, data=CONSENT)
    service.fire(case_id, "refer", actor=GP)
    refused(service, case_id, "receive_item", DOCTOR, "choose the provider first", data={"item": "medical_records"})
    service.fire(case_id, "choose_provider", actor=PATIENT, data={"provider": "jeroen-bosch"})
    assert service.history(case_id)[-1].payload == {"provider": "jeroen-bosch", "version": 1}
    refused(service, case_id, "receive_item", DOCTOR, "'letter' is not a checklist item", data={"item": "letter"})
    service.fire(case_id, "receive_item", actor=DOCTOR, data={"item": "medical_records"})
    service.fire(case_id, "receive_dossier", actor=DOCTOR)
    service.fire(case_id, "review", actor=DOCTOR)  # the doctor did not ask to see the patient
    assert service.case(case_id).state == "reviewed"

    other = service.open_case("PX-J2", actor=PATIENT, provider="jeroen-bosch").case_id
    for event, actor, data in (("give_consent", PATIENT, CONSENT), ("refer", GP, {}),
                               ("receive_item", DOCTOR, {"item": "medical_records"}), ("receive_dossier", DOCTOR, {}),
                               ("require_consultation", DOCTOR, {})):  # fmt: skip
        service.fire(other, event, actor=actor, data=data)
    refused(service, other, "review", DOCTOR, "must be seen first")
    service.fire(other, "record_consultation", actor=DOCTOR)
    service.fire(other, "review", actor=DOCTOR)
    assert service.verify().ok


def test_003_umc_utrecht_sees_every_patient_and_sends_the_insured_abroad_to_its_costs_team(service):
    """003: "Artsen geven alleen een second opinion als zij de patiënt zelf gezien hebben"; "bent u
    verzekerd in een ander land ... Neem dan eerst contact op met Team Zorgkosten"."""
    case_id = service.open_case("PX-U1", actor=PATIENT, provider="umc-utrecht").case_id
    service.fire(case_id, "record_circumstances", actor=GP, data=ABROAD)
    service.fire(case_id, "give_consent", actor=PATIENT, data=CONSENT)
    service.fire(case_id, "refer", actor=GP)
    for item in ("letter", "mrsa"):
        service.fire(case_id, "receive_item", actor=DOCTOR, data={"item": item})
    refused(service, case_id, "receive_dossier", DOCTOR, "contact the provider's costs team first")
    service.fire(case_id, "contact_costs_team", actor=PATIENT)
    service.fire(case_id, "receive_dossier", actor=DOCTOR)
    refused(service, case_id, "review", DOCTOR, "must be seen first")
    service.fire(case_id, "record_consultation", actor=DOCTOR)
    service.fire(case_id, "review", actor=DOCTOR)
    assert service.verify().ok


def test_003_insured_abroad_is_umc_utrechts_rule_not_every_hospitals(service):
    """The costs-team step is on UMC Utrecht's page (003) only: at Jeroen Bosch it does not gate."""
    case_id = service.open_case("PX-J3", actor=PATIENT, provider="jeroen-bosch").case_id
    service.fire(case_id, "record_circumstances", actor=GP, data=ABROAD)
    for event, actor, data in (("give_consent", PATIENT, CONSENT), ("refer", GP, {}),
                               ("receive_item", DOCTOR, {"item": "medical_records"})):  # fmt: skip
        service.fire(case_id, event, actor=actor, data=data)
    service.fire(case_id, "receive_dossier", actor=DOCTOR)
    assert service.case(case_id).state == "dossier_received"


def test_002_a_change_of_provider_is_audited_needs_a_reason_and_restarts_the_checklist(service):
    case_id = service.open_case("PX-C1", actor=PATIENT, provider="umc-utrecht").case_id
    service.fire(case_id, "record_circumstances", actor=GP, data=NO_CIRCUMSTANCES)
    service.fire(case_id, "give_consent", actor=PATIENT, data=CONSENT)
    service.fire(case_id, "refer", actor=GP)
    service.fire(case_id, "receive_item", actor=DOCTOR, data={"item": "letter"})
    refused(service, case_id, "choose_provider", PATIENT, "already the case's provider",
            data={"provider": "umc-utrecht"})  # fmt: skip
    refused(service, case_id, "choose_provider", PATIENT, "needs a reason", data={"provider": "jeroen-bosch"})
    refused(service, case_id, "choose_provider", PATIENT, "serving the domestic route: umc-utrecht, jeroen-bosch",
            data={"provider": "royal-doctors"})  # fmt: skip
    service.fire(case_id, "choose_provider", actor=PATIENT, reason="closer to home", data={"provider": "jeroen-bosch"})
    facts = service.case(case_id).facts
    assert facts["provider"]["id"] == "jeroen-bosch" and "checklist" not in facts and facts["provider_changes"] == 1
    refused(service, case_id, "receive_dossier", DOCTOR, "still missing: medical_records")
    record = service.history(case_id)[-2]  # the accepted change, before the refused receive_dossier
    assert (record.event, record.outcome, record.reason) == ("choose_provider", "accepted", "closer to home")
    assert service.verify().ok


def test_a_case_keeps_the_provider_version_it_chose(service):
    """A new version of a provider's row (here: UMC Utrecht asks for a referral letter too) applies to
    cases that choose it afterwards, never to a case under way; replay follows each case's version."""
    umc = next(p for p in PROVIDERS if p.id == "umc-utrecht")
    umc2 = replace(umc, version=2, checklist=(*umc.checklist, ChecklistItem("referral_letter", "The referral.", None)))
    newer = CaseService.on(replace(service.runtime, engine=Engine(replace(DEFINITION, providers=(*PROVIDERS, umc2)))))
    old = service.open_case("PX-V1", actor=PATIENT, provider="umc-utrecht").case_id
    new = newer.open_case("PX-V2", actor=PATIENT, provider="umc-utrecht").case_id
    assert (newer.case(old).facts["provider"]["version"], newer.case(new).facts["provider"]["version"]) == (1, 2)
    for case_id in (old, new):
        for event, actor, data in (("record_circumstances", GP, NO_CIRCUMSTANCES), ("give_consent", PATIENT, CONSENT),
                                   ("refer", GP, {}), ("receive_item", DOCTOR, {"item": "letter"})):  # fmt: skip
            newer.fire(case_id, event, actor=actor, data=data)
    newer.fire(old, "receive_dossier", actor=DOCTOR)
    refused(newer, new, "receive_dossier", DOCTOR, "still missing: referral_letter")
    assert newer.verify().ok


def test_waivers_say_who_may_waive_on_which_route(service):
    """The care consultant waives on the insurer's routes (004), not at a hospital (002, 003)."""
    case_id = service.open_case("PX-W1", actor=PATIENT, provider="umc-utrecht").case_id
    for event, actor, data in (("record_circumstances", GP, NO_CIRCUMSTANCES), ("give_consent", PATIENT, CONSENT),
                               ("refer", GP, {})):  # fmt: skip
        service.fire(case_id, event, actor=actor, data=data)
    refused(service, case_id, "waive_item", CONSULTANT, "waived by: second_opinion_doctor, coordinator",
            reason="not needed", data={"item": "letter"})  # fmt: skip
    service.fire(case_id, "waive_item", actor=DOCTOR, reason="the history is in the referral", data={"item": "letter"})
    assert service.case(case_id).facts["checklist"]["letter"]["status"] == "waived"


def test_001_002_a_self_paying_patient_goes_ahead_without_a_referral_once_the_decision_says_so(service):
    """001: "Regel je zelf een second opinion, dan kan het zijn dat deze niet wordt vergoed, of slechts
    gedeeltelijk"; 002: "Als de zorgverzekeraar de kosten niet accepteert, moet u deze namelijk zelf
    betalen". UMC Utrecht then asks for its costs team first (003)."""
    case_id = service.open_case("PX-S1", actor=PATIENT, provider="umc-utrecht").case_id
    refused(service, case_id, "proceed_self_paying", PATIENT, "record the insurer's decision first")
    service.fire(case_id, "decide_coverage", actor=CONSULTANT, data={"policy": "pno-basic", "facts": COVERAGE_FACTS})
    refused(service, case_id, "proceed_self_paying", PATIENT, "covers the opinion: refer instead")
    unreferred = {**COVERAGE_FACTS, "referral_by": "none"}
    service.fire(case_id, "decide_coverage", actor=CONSULTANT, data={"policy": "pno-basic", "facts": unreferred})
    assert service.case(case_id).facts["coverage"]["outcome"] == "not_covered"
    service.fire(case_id, "proceed_self_paying", actor=PATIENT)
    case = service.case(case_id)
    assert case.state == "referred"
    assert {k: case.facts["self_paying"][k] for k in ("by", "decision", "outcome")} == {
        "by": "patient", "decision": 2, "outcome": "not_covered"}  # fmt: skip
    service.fire(case_id, "record_circumstances", actor=PATIENT, data=NO_CIRCUMSTANCES)
    service.fire(case_id, "give_consent", actor=PATIENT, data=CONSENT)
    service.fire(case_id, "receive_item", actor=DOCTOR, data={"item": "letter"})
    refused(service, case_id, "receive_dossier", DOCTOR, "not covered by the insurance: contact the provider's costs")
    service.fire(case_id, "contact_costs_team", actor=PATIENT)
    service.fire(case_id, "receive_dossier", actor=DOCTOR)
    assert ("refer", "accepted") not in outcomes(service, case_id)
    assert service.verify().ok


def test_001_partly_covered_when_self_arranged_under_the_general_policy(service):
    case_id = service.open_case("PX-S2", actor=PATIENT, provider="jeroen-bosch").case_id
    facts = {**COVERAGE_FACTS, "referral_by": "none"}
    service.fire(case_id, "decide_coverage", actor=DESK, data={"policy": "generic-basic", "facts": facts})
    decision = service.case(case_id).facts["coverage"]
    assert decision["outcome"] == "partly" and decision["eigen_risico"]["applies"] is True
    failed = [r["rule"] for r in decision["reasons"] if not r["passed"]]
    assert failed == ["referred_by_doctor"]
    service.fire(case_id, "proceed_self_paying", actor=DESK)
    assert service.case(case_id).facts["self_paying"]["outcome"] == "partly"


def test_self_paying_is_a_domestic_route_step_only(service):
    """Royal Doctors and 2e arts online are the insurer's own services (004): registered, not self-paid."""
    case_id = service.open_case("PX-S3", actor=CONSULTANT, route="royal-doctors").case_id
    facts = {**COVERAGE_FACTS, "route": "royal-doctors"}
    service.fire(case_id, "decide_coverage", actor=CONSULTANT, data={"policy": "interpolis-basic", "facts": facts})
    assert service.case(case_id).facts["coverage"]["outcome"] == "not_covered"
    refused(service, case_id, "proceed_self_paying", DESK, "only through its referral or registration")


def test_bad_provider_at_opening_is_refused_and_writes_nothing(service):
    with pytest.raises(ValidationError, match="must be a provider serving the domestic route"):
        service.open_case("PX-B1", actor=PATIENT, provider="royal-doctors")
    with pytest.raises(ValidationError, match="serving the online route: 2e-arts-online"):
        service.open_case("PX-B2", actor=PATIENT, route="online", provider="umc-utrecht")
    assert service.cases() == []
    assert service.export() == []


def test_cases_opened_under_version_1_keep_the_one_checklist_and_choose_no_provider(service):
    """Before providers, every route had UMC Utrecht's list: a case opened then keeps it (its route
    version), so its answers do not change under the new code; a provider is chosen only after
    ``upgrade_route``."""
    v1 = replace(DEFINITION, routes=tuple(r for r in DEFINITION.routes if r.version == 1))
    old = CaseService.on(replace(service.runtime, engine=Engine(v1)))
    case_id = old.open_case("PX-L1", actor=CONSULTANT, route="royal-doctors").case_id
    assert "provider" not in service.case(case_id).facts
    refused(service, case_id, "choose_provider", CONSULTANT, "has no providers", data={"provider": "royal-doctors"})
    service.fire(case_id, "record_circumstances", actor=CONSULTANT, data={**NO_CIRCUMSTANCES, "treated_abroad": True})
    service.fire(case_id, "give_consent", actor=PATIENT, data=CONSENT)
    service.fire(case_id, "refer", actor=CONSULTANT)
    service.fire(case_id, "receive_item", actor=DOCTOR, data={"item": "letter"})
    refused(service, case_id, "receive_dossier", DOCTOR, "still missing: mrsa")
    assert service.verify().ok
