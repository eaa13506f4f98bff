"""The dossier checklist (seed 003) and consent (seed 002): each missing required item blocks the
dossier by name, waivers keep their reason, and withdrawn consent stops every use of the dossier."""

from __future__ import annotations

import pytest

from tests.conftest import CONSENT, DESK, DOCTOR, GP, PATIENT
from workflow import DEFINITION, GuardRefused, ValidationError

ALL_REQUIRED = {"treated_abroad": True, "insured_abroad": False, "has_pathology": True, "has_imaging": True}
UMC = DEFINITION.serving("domestic")["umc-utrecht"]  # seed 003's list is UMC Utrecht's
ITEMS = [item.name for item in UMC.checklist]


def referred(service, circumstances=ALL_REQUIRED) -> str:
    case_id = service.open_case("PX-1", actor=DESK, provider="umc-utrecht").case_id
    service.fire(case_id, "record_circumstances", actor=DESK, data=circumstances)
    service.fire(case_id, "give_consent", actor=PATIENT, data=CONSENT)
    service.fire(case_id, "refer", actor=GP)
    return case_id


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
@pytest.mark.parametrize("missing", ITEMS)
def test_each_missing_item_blocks_the_dossier_by_name(service, missing):
    case_id = referred(service)
    for item in ITEMS:
        if item != missing:
            service.fire(case_id, "receive_item", actor=DOCTOR, data={"item": item})
    with pytest.raises(GuardRefused, match=f"still missing: {missing} "):
        service.fire(case_id, "receive_dossier", actor=DOCTOR)
    service.fire(case_id, "waive_item", actor=DOCTOR, reason="not obtainable", data={"item": missing})
    service.fire(case_id, "receive_dossier", actor=DOCTOR)
    case = service.case(case_id)
    assert case.state == "dossier_received"
    assert case.facts["checklist"][missing]["status"] == "waived"
    assert case.facts["checklist"][missing]["reason"] == "not obtainable"


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_circumstances_decide_what_is_required(service):
    none_apply = {"treated_abroad": False, "insured_abroad": False, "has_pathology": False, "has_imaging": False}
    assert DEFINITION.required_items({"circumstances": none_apply}, UMC.checklist) == ("letter",)
    assert DEFINITION.required_items({"circumstances": ALL_REQUIRED}, UMC.checklist) == tuple(ITEMS)
    case_id = referred(service, none_apply)
    service.fire(case_id, "receive_item", actor=DOCTOR, data={"item": "letter"})
    service.fire(case_id, "receive_dossier", actor=DOCTOR)


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_unrecorded_circumstances_block_rather_than_guess(service):
    case_id = service.open_case("PX-1", actor=DESK, provider="umc-utrecht").case_id
    service.fire(case_id, "give_consent", actor=PATIENT, data=CONSENT)
    service.fire(case_id, "refer", actor=GP)
    service.fire(case_id, "receive_item", actor=DOCTOR, data={"item": "letter"})
    with pytest.raises(GuardRefused, match="record the circumstances first"):
        service.fire(case_id, "receive_dossier", actor=DOCTOR)


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
@pytest.mark.parametrize(
    ("event", "data", "message"),
    [
        ("receive_item", {"item": "photos"}, "'photos' is not a checklist item"),
        ("waive_item", {"item": "letter"}, "requires a reason"),
        ("record_circumstances", {"abroad": True}, "unknown: abroad"),
        ("record_circumstances", {"treated_abroad": "yes"}, "must be true or false"),
        ("give_consent", {"basis": "verbal", "scope": "x"}, "basis must be one of own_request, written"),
        ("give_consent", {"basis": "written"}, r"requires data field\(s\): scope"),
    ],
)
def test_bad_fact_data_is_refused_clearly(service, event, data, message):
    case_id = referred(service)
    actor = PATIENT if event == "give_consent" else DOCTOR if "item" in event else DESK
    with pytest.raises((GuardRefused, ValidationError), match=message):
        service.fire(case_id, event, actor=actor, data=data)


@pytest.mark.parametrize("db_url", ["memory", "sqlite"], indirect=True)
def test_withdrawn_consent_stops_every_use_of_the_dossier(service):
    case_id = referred(service)
    service.fire(case_id, "receive_item", actor=DOCTOR, data={"item": "letter"})
    service.fire(case_id, "withdraw_consent", actor=PATIENT)
    for event, data in (("receive_item", {"item": "mrsa"}), ("receive_dossier", {})):
        with pytest.raises(GuardRefused, match="the patient withdrew consent"):
            service.fire(case_id, event, actor=DOCTOR, data=data)
    with pytest.raises(GuardRefused, match="withdrew consent"):
        service.fire(case_id, "withdraw_consent", actor=PATIENT)
    history = service.history(case_id)
    withdrawal = next(r for r in history if r.event == "withdraw_consent" and r.outcome == "accepted")
    assert withdrawal.actor_role == "patient"
    assert service.case(case_id).facts["consent"]["withdrawn_at"] is not None
    service.fire(case_id, "give_consent", actor=PATIENT, data=CONSENT)  # consent can be given anew
    service.fire(case_id, "receive_item", actor=DOCTOR, data={"item": "mrsa"})
    assert service.verify().ok
