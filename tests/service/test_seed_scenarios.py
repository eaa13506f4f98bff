"""One end-to-end scenario per seed page in ../shared/seeds/, each told the way the page tells it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import CONSENT, CONSULTANT, DESK, DOCTOR, FIRST, GP, NO_CIRCUMSTANCES, PATIENT, walk
from workflow import DEFINITION, GuardRefused, InvalidTransition, PermissionDenied, ValidationError, decide_coverage

pytestmark = pytest.mark.parametrize("db_url", ["memory", "sqlite"], indirect=True)


def events_of(service, case_id):
    return [(r.event, r.outcome) for r in service.history(case_id)]


def back_to_first_provider(service, case_id):
    """The domestic path, referred by the first provider, to the patient's return with the advice;
    at a hospital without a row of its own (the general rules of 001 and 002: the medical records,
    and the doctor decides whether to see the patient)."""
    service.fire(case_id, "record_circumstances", actor=FIRST, data=NO_CIRCUMSTANCES)
    service.fire(case_id, "give_consent", actor=PATIENT, data=CONSENT)
    service.fire(case_id, "choose_provider", actor=PATIENT, data={"provider": "generic-hospital"})
    service.fire(case_id, "refer", actor=FIRST)
    service.fire(case_id, "receive_item", actor=DOCTOR, data={"item": "medical_records"})
    for event in ("receive_dossier", "review"):
        service.fire(case_id, event, actor=DOCTOR)
    service.fire(case_id, "return_advice", actor=DOCTOR, data={"outcome": "agrees"})
    service.fire(case_id, "hand_back", actor=DESK)


def test_000_pno_basic_insurance_referral_and_return(service):
    """A referral by the first provider, the opinion, and back to the first provider; the basic
    insurance covers it when the five conditions hold, with the deductible."""
    case_id = service.open_case("PX-000", actor=PATIENT).case_id
    back_to_first_provider(service, case_id)
    assert service.case(case_id).state == "back_to_first_provider"
    facts = {
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
    decision = decide_coverage(facts, "pno-basic")
    assert decision.covered and decision.deductible_applies
    # 000: the first provider's referral counts only from a doctor; a minor pays no eigen risico (Zvw art. 19)
    assert not decide_coverage({**facts, "first_provider_is_doctor": False}, "pno-basic").covered
    assert not decide_coverage({**facts, "age_band": "minor"}, "pno-basic").deductible_applies
    assert service.verify().ok


def test_001_refusal_escalation_and_gp_referral(service):
    """The treating doctor refuses for a serious reason; the patient turns to the care consultant;
    the GP refers instead. The refusal does not end the case."""
    case_id = service.open_case("PX-001", actor=PATIENT).case_id
    service.fire(case_id, "refuse_referral", actor=FIRST, reason="fourth request without new arguments")
    with pytest.raises(GuardRefused) as refused:
        service.fire(case_id, "refer", actor=FIRST)
    assert refused.value.guard == "gp_after_refusal"
    service.fire(case_id, "escalate", actor=PATIENT, reason="disagrees with the treating doctor")
    service.fire(case_id, "refer", actor=GP)
    case = service.case(case_id)
    assert case.state == "referred"
    assert case.facts["referral_refused"]["reason"] == "fourth request without new arguments"
    assert case.facts["escalations"][0]["by"] == "patient"
    assert events_of(service, case_id) == [
        ("open", "accepted"), ("refuse_referral", "accepted"), ("refer", "rejected"), ("escalate", "accepted"),
        ("refer", "accepted")]  # fmt: skip
    assert service.verify().ok


def test_002_consent_and_the_doctor_decides_on_an_appointment(service):
    """The dossier moves only with the patient's own request or written consent; the other doctor
    decides whether to see the patient before advising."""
    case_id = service.open_case("PX-002", actor=PATIENT).case_id
    service.fire(case_id, "record_circumstances", actor=PATIENT, data=NO_CIRCUMSTANCES)
    service.fire(case_id, "choose_provider", actor=PATIENT, data={"provider": "jeroen-bosch"})  # step 3
    service.fire(case_id, "refer", actor=GP)
    with pytest.raises(GuardRefused, match="no consent recorded"):
        service.fire(case_id, "receive_item", actor=DOCTOR, data={"item": "medical_records"})
    service.fire(case_id, "give_consent", actor=PATIENT, data={"basis": "own_request", "scope": "dossier"})
    service.fire(case_id, "receive_item", actor=DOCTOR, data={"item": "medical_records"})
    service.fire(case_id, "receive_dossier", actor=DOCTOR)
    service.fire(case_id, "require_consultation", actor=DOCTOR)
    with pytest.raises(GuardRefused, match="must be seen first"):
        service.fire(case_id, "review", actor=DOCTOR)
    service.fire(case_id, "record_consultation", actor=DOCTOR)
    service.fire(case_id, "review", actor=DOCTOR)
    service.fire(case_id, "return_advice", actor=DOCTOR, data={"outcome": "differs"})
    assert service.case(case_id).state == "advice_returned"
    assert service.verify().ok


def test_003_required_data_insured_abroad_and_transfer_of_care(service):
    """Treated abroad: an MRSA check; imaging: results and the scans; insured abroad: the costs
    team first. Missing items block the dossier; a waiver is recorded with its reason. By
    exception, care moves to the second-opinion provider."""
    case_id = service.open_case("PX-003", actor=PATIENT, provider="umc-utrecht").case_id
    service.fire(case_id, "record_circumstances", actor=PATIENT, data={
        "treated_abroad": True, "insured_abroad": True, "has_pathology": True, "has_imaging": True})  # fmt: skip
    service.fire(case_id, "give_consent", actor=PATIENT, data=CONSENT)
    service.fire(case_id, "refer", actor=GP)  # insured abroad does not block the referral (see below)
    service.fire(case_id, "contact_costs_team", actor=PATIENT)
    service.fire(case_id, "receive_item", actor=DOCTOR, data={"item": "letter"})
    with pytest.raises(GuardRefused, match="still missing: pathology, imaging_results, imaging, mrsa"):
        service.fire(case_id, "receive_dossier", actor=DOCTOR)
    service.fire(case_id, "waive_item", actor=DOCTOR, reason="report requested, arrives after review", data={
        "item": "pathology"})  # fmt: skip
    for item in ("imaging_results", "imaging", "mrsa"):
        service.fire(case_id, "receive_item", actor=DESK, data={"item": item})
    service.fire(case_id, "receive_dossier", actor=DOCTOR)
    with pytest.raises(GuardRefused, match="must be seen first"):  # "alleen ... als zij de patiënt zelf gezien hebben"
        service.fire(case_id, "review", actor=DOCTOR)
    service.fire(case_id, "record_consultation", actor=DOCTOR)
    service.fire(case_id, "review", actor=DOCTOR)
    service.fire(case_id, "return_advice", actor=DOCTOR, data={"outcome": "differs"})
    service.fire(case_id, "transfer_care", actor=FIRST, reason="advised treatment only offered here")
    case = service.case(case_id)
    assert case.state == "care_transferred" and DEFINITION.state("care_transferred").terminal
    assert case.facts["checklist"]["pathology"] == {
        "status": "waived", "at": case.facts["checklist"]["pathology"]["at"],
        "reason": "report requested, arrives after review"}  # fmt: skip
    assert service.verify().ok


def test_004_royal_doctors_registered_by_the_care_consultant(service, clock):
    """No referral: the care consultant registers the request; the report is due 18 working days
    after the complete dossier, whose moment is recorded; ZorgActief covers it, basic does not."""
    case_id = service.open_case("PX-004", actor=CONSULTANT, route="royal-doctors").case_id
    service.fire(case_id, "record_circumstances", actor=CONSULTANT, data=NO_CIRCUMSTANCES)
    service.fire(case_id, "give_consent", actor=PATIENT, data=CONSENT)
    with pytest.raises(GuardRefused, match="made by: care_consultant"):
        service.fire(case_id, "refer", actor=GP)
    service.fire(case_id, "refer", actor=CONSULTANT)
    assert service.case(case_id).facts["provider"]["id"] == "royal-doctors"  # the route's only provider
    for item in ("medical_history", "examinations", "lab_reports"):
        service.fire(case_id, "receive_item", actor=CONSULTANT, data={"item": item})
    clock.advance(timedelta(days=2))
    receipt = service.fire(case_id, "receive_dossier", actor=CONSULTANT)
    case = service.case(case_id)
    assert case.facts["dossier_complete_at"] == receipt.occurred_at
    assert DEFINITION.route("royal-doctors", case.facts["route_version"]).report_due_working_days == 18
    facts = {"route": "royal-doctors", "purpose": "diagnosis"}
    assert decide_coverage(facts, "interpolis-zorgactief").covered
    assert not decide_coverage(facts, "interpolis-basic").covered
    # 000: an opinion on work disability is not paid, whatever the route (the online one of 004 too)
    for route in ("royal-doctors", "online"):
        assert not decide_coverage({"route": route, "purpose": "work_disability"}, "interpolis-zorgactief").covered
    assert service.verify().ok


def test_001_escalation_to_the_insurer_after_the_return_to_the_own_doctor(service):
    """001, "Vervolg second opinion": with the advice the patient goes back to their own doctor, who
    adopts it or not; "Komen jullie er samen niet uit, dan kun je de ondersteuning inroepen van je
    zorgverzekeraar". The patient (or the insurer's care consultant, for them) records it on the
    closed case, which stays closed; no one else may."""
    case_id = service.open_case("PX-001b", actor=PATIENT).case_id
    back_to_first_provider(service, case_id)
    service.fire(case_id, "record_adoption", actor=FIRST, data={"adopted": False})
    receipt = service.fire(case_id, "escalate", actor=PATIENT, reason="my doctor does not adopt the advice")
    service.fire(case_id, "escalate", actor=CONSULTANT, reason="mediating for the patient")
    case = service.case(case_id)
    assert receipt.to_state == case.state == "back_to_first_provider"
    assert [e["by"] for e in case.facts["escalations"]] == ["patient", "care_consultant"]
    assert case.facts["advice_adopted"]["adopted"] is False and case.facts["advice"]["outcome"] == "agrees"
    with pytest.raises(PermissionDenied):
        service.fire(case_id, "escalate", actor=FIRST, reason="not the doctor's step")
    with pytest.raises(InvalidTransition):  # a recorded fact, not a way back into the case
        service.fire(case_id, "review", actor=DOCTOR)
    assert service.verify().ok


def test_004_the_care_consultant_declines_a_request_unsuitable_for_royal_doctors(service):
    """004, step 3: "De ZorgConsulent bekijkt of uw vraag geschikt is voor Royal Doctors. Zo ja, dan
    melden we u aan." If not, the consultant declines it, with the reason, before registering; on
    another route, or once registered, the consultant has no such check to make."""
    case_id = service.open_case("PX-004b", actor=CONSULTANT, route="royal-doctors").case_id
    with pytest.raises(ValidationError, match="requires a reason"):
        service.fire(case_id, "decline", actor=CONSULTANT)
    service.fire(case_id, "decline", actor=CONSULTANT, reason="question needs a physical examination")
    assert service.case(case_id).state == "declined"
    assert service.history(case_id)[-1].reason == "question needs a physical examination"

    registered = service.open_case("PX-004c", actor=CONSULTANT, route="royal-doctors").case_id
    service.fire(registered, "refer", actor=CONSULTANT)
    with pytest.raises(GuardRefused, match="before registering") as refused:
        service.fire(registered, "decline", actor=CONSULTANT, reason="too late")
    assert refused.value.guard == "screener_before_registration"
    domestic = service.open_case("PX-004d", actor=PATIENT).case_id
    with pytest.raises(GuardRefused, match="only on a route they screen"):
        service.fire(domestic, "decline", actor=CONSULTANT, reason="not theirs to judge")
    service.fire(domestic, "decline", actor=DESK, reason="outside our specialism")  # the desk still may
    assert service.verify().ok


@pytest.mark.parametrize("circumstance_first", [True, False], ids=["circumstance-first", "referral-first"])
def test_003_insured_abroad_gates_the_dossier_and_appointment_not_the_referral(service, circumstance_first):
    """003: "bent u verzekerd in een ander land dan Nederland? Neem dan eerst contact op met Team
    Zorgkosten voordat u een afspraak maakt" -- addressed to the patient, and tied to the appointment,
    not to the referral. We gate the complete dossier (the data needed "alvorens u een afspraak kunt
    krijgen") and the consultation (the appointment), whichever order the facts came in; the patient
    records the contact themselves."""
    case_id = service.open_case("PX-003b", actor=PATIENT, provider="umc-utrecht").case_id
    service.fire(case_id, "give_consent", actor=PATIENT, data=CONSENT)
    abroad = {**NO_CIRCUMSTANCES, "insured_abroad": True}
    if circumstance_first:
        service.fire(case_id, "record_circumstances", actor=PATIENT, data=abroad)
    service.fire(case_id, "refer", actor=GP)  # never blocked by insured_abroad
    if not circumstance_first:
        service.fire(case_id, "record_circumstances", actor=PATIENT, data=abroad)
    service.fire(case_id, "receive_item", actor=DOCTOR, data={"item": "letter"})
    with pytest.raises(GuardRefused, match="contact the provider's costs team first") as refused:
        service.fire(case_id, "receive_dossier", actor=DOCTOR)
    assert refused.value.guard == "costs_team_if_insured_abroad"
    service.fire(case_id, "contact_costs_team", actor=PATIENT)
    service.fire(case_id, "receive_dossier", actor=DOCTOR)
    service.fire(case_id, "record_consultation", actor=DOCTOR)
    assert service.case(case_id).facts["costs_team_contacted_at"]
    assert service.verify().ok


def test_003_insured_abroad_recorded_after_the_dossier_still_gates_the_appointment(service):
    """003: the costs team comes before the appointment, even when the circumstance is learnt late."""
    case_id = service.open_case("PX-003c", actor=PATIENT, provider="umc-utrecht").case_id
    service.fire(case_id, "record_circumstances", actor=PATIENT, data=NO_CIRCUMSTANCES)
    service.fire(case_id, "give_consent", actor=PATIENT, data=CONSENT)
    service.fire(case_id, "refer", actor=GP)
    service.fire(case_id, "receive_item", actor=DOCTOR, data={"item": "letter"})
    service.fire(case_id, "receive_dossier", actor=DOCTOR)
    service.fire(case_id, "record_circumstances", actor=PATIENT, data={"insured_abroad": True})
    with pytest.raises(GuardRefused, match="costs team first"):
        service.fire(case_id, "record_consultation", actor=DOCTOR)
    service.fire(case_id, "contact_costs_team", actor=PATIENT)
    service.fire(case_id, "record_consultation", actor=DOCTOR)
    assert service.verify().ok


def test_004_the_advice_says_whether_the_first_doctor_was_right_and_001_whether_it_is_adopted(service):
    """004: the other doctor judges "of de eerdere arts gelijk had of dat er alternatieve
    (behandel)mogelijkheden zijn": the advice's outcome (agrees / differs / inconclusive) is required
    and checked. 001: "Je huidige behandelaar neemt het advies over of niet": the first provider
    records that once, after the return (hand_back is the desk's, before the doctor has weighed it)."""
    case_id = service.open_case("PX-004e", actor=PATIENT).case_id
    walk(service, case_id, "reviewed")
    with pytest.raises(ValidationError, match="outcome"):
        service.fire(case_id, "return_advice", actor=DOCTOR)
    with pytest.raises(GuardRefused, match="agrees, differs, inconclusive") as refused:
        service.fire(case_id, "return_advice", actor=DOCTOR, data={"outcome": "maybe"})
    assert refused.value.guard == "advice_outcome_valid"
    service.fire(case_id, "return_advice", actor=DOCTOR, data={"outcome": "differs"})
    service.fire(case_id, "hand_back", actor=DESK)
    with pytest.raises(GuardRefused, match="true or false"):
        service.fire(case_id, "record_adoption", actor=FIRST, data={"adopted": "yes"})
    with pytest.raises(PermissionDenied):
        service.fire(case_id, "record_adoption", actor=PATIENT, data={"adopted": True})
    service.fire(case_id, "record_adoption", actor=FIRST, data={"adopted": True})
    with pytest.raises(GuardRefused, match="already recorded"):
        service.fire(case_id, "record_adoption", actor=FIRST, data={"adopted": False})
    case = service.case(case_id)
    assert case.state == "back_to_first_provider"
    assert case.facts["advice"]["outcome"] == "differs"
    assert (case.facts["advice_adopted"]["adopted"], case.facts["advice_adopted"]["by"]) == (True, "first_provider")
    assert service.verify().ok
