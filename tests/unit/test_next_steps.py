"""Next steps (workflow/cases/next_steps.py): for each state and role, every event is allowed,
blocked (by the guard named), not in this state or not permitted; and ``fire`` agrees with each
answer: an allowed event fired with one of its choices is accepted, a blocked one is refused by
the guard named, the rest with PermissionDenied or InvalidTransition. Also a Royal Doctors case
and a domestic case at UMC Utrecht with missing checklist items and a patient insured abroad."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import CONSENT, CONSULTANT, DESK, EXAMPLES, PATHS, walk
from workflow import DEFINITION, Actor, GuardRefused, InvalidTransition, PermissionDenied, ValidationError
from workflow.cases.next_steps import (
    ALLOWED,
    BLOCKED,
    FIELDS,
    FREE_KINDS,
    NOT_IN_THIS_STATE,
    NOT_PERMITTED,
    NextSteps,
    Step,
)

MEMORY = pytest.mark.parametrize("db_url", ["memory"], indirect=True)


def command(step: Step) -> tuple[str | None, dict[str, Any]]:
    """The reason and data a form built from ``step`` would send: the first value offered for a
    listed field, the suite's example for a free one (a scope, coverage facts, an assignee)."""
    reason = "a reason given in the form" if step.reason_required else None
    example = EXAMPLES[step.event][2]
    required = [f for f in step.data if f.required]
    if not required and step.data:
        first = step.data[0]
        return reason, {first.name: first.choices[0]}
    data = {f.name: example[f.name] if f.kind in FREE_KINDS else (f.choices[0] if f.choices else None)
            for f in required}  # fmt: skip
    return reason, data


def agrees(service, case_id: str, steps: NextSteps, role: str, state: str) -> None:  # type: ignore[no-untyped-def]
    """Fire every event as ``role`` and check it does what ``steps`` said; an accepted one on a copy
    of the case walked anew (it moves the case)."""
    who = Actor("who-1", role)
    for step in steps.steps:
        if step.status == ALLOWED:
            fresh = service.open_case("PX-2", actor=DESK).case_id
            walk(service, fresh, state)
            reason, data = command(step)
            receipt = service.fire(fresh, step.event, actor=who, reason=reason, data=data)
            assert receipt.to_state == step.to_state, step
            continue
        reason, data = command(step) if step.status == BLOCKED else (EXAMPLES[step.event][1], EXAMPLES[step.event][2])
        expected = {BLOCKED: (GuardRefused, ValidationError), NOT_PERMITTED: PermissionDenied,
                    NOT_IN_THIS_STATE: InvalidTransition}[step.status]  # fmt: skip
        with pytest.raises(expected) as refused:
            service.fire(case_id, step.event, actor=who, reason=reason, data=data)
        if step.status == BLOCKED and step.guard:
            assert isinstance(refused.value, GuardRefused) and refused.value.guard == step.guard, step
            assert refused.value.reason == step.message
        elif step.status == BLOCKED:
            assert isinstance(refused.value, ValidationError) and refused.value.field == step.field, step
        if step.status == NOT_IN_THIS_STATE:
            assert type(refused.value) is InvalidTransition


@MEMORY
@pytest.mark.parametrize("state", list(PATHS))
def test_next_steps_agree_with_fire_for_every_role_and_event(service, state):
    case_id = service.open_case("PX-1", actor=DESK).case_id
    walk(service, case_id, state)
    for role in DEFINITION.role_names:
        steps = service.next_steps(case_id, role)
        assert [s.event for s in steps.steps] == list(DEFINITION.event_names)
        for step in steps.steps:
            if not DEFINITION.may(role, step.event):
                assert step.status == NOT_PERMITTED
            elif step.event not in DEFINITION.events_from(state):
                assert step.status == NOT_IN_THIS_STATE
            else:
                assert step.status in (ALLOWED, BLOCKED)
        agrees(service, case_id, steps, role, state)
    assert service.verify().ok


@MEMORY
def test_next_steps_write_nothing(service):
    case_id = service.open_case("PX-1", actor=DESK).case_id
    walk(service, case_id, "referred")
    before = (service.case(case_id), service.history(case_id), service.deadlines_of(case_id))
    for role in DEFINITION.role_names:
        service.next_steps(case_id, role)
    assert (service.case(case_id), service.history(case_id), service.deadlines_of(case_id)) == before


def test_every_required_field_is_described():
    for ev in DEFINITION.events:
        described = {f.name for f in FIELDS[ev.name](_any_input())} if ev.name in FIELDS else set()
        assert set(ev.required_data) <= described, ev.name


def _any_input():  # type: ignore[no-untyped-def]
    from workflow.cases.engine import Engine

    route = DEFINITION.route("domestic")
    return Engine().guard_input("requested", "refer", "coordinator", None, {}, {"route_version": 2}, route)


@MEMORY
def test_domestic_case_at_umc_utrecht_insured_abroad_shows_what_is_missing(service):
    case_id = service.open_case("PX-0003", actor=DESK).case_id
    steps = service.next_steps(case_id, "coordinator")
    assert steps.checklist["provider"] is None and steps.checklist["provider_required"]
    choose = steps.step("choose_provider")
    assert choose.status == ALLOWED and choose.data[0].choices == ("umc-utrecht", "jeroen-bosch", "generic-hospital")
    service.fire(case_id, "choose_provider", actor=DESK, data={"provider": "umc-utrecht"})
    service.fire(case_id, "give_consent", actor=DESK, data=CONSENT)
    steps = service.next_steps(case_id, "coordinator")
    assert steps.checklist["circumstances_missing"] == ["has_pathology", "has_imaging", "treated_abroad",
                                                        "insured_abroad"]  # fmt: skip
    service.fire(case_id, "record_circumstances", actor=DESK, data={"treated_abroad": False, "insured_abroad": True,
                                                                    "has_pathology": True, "has_imaging": False})
    service.fire(case_id, "refer", actor=Actor("gp-1", "gp"))
    steps = service.next_steps(case_id, "second_opinion_doctor")
    assert steps.checklist["missing"] == ["letter", "pathology"]
    assert {i["item"]: (i["required"], i["status"]) for i in steps.checklist["items"]} == {
        "letter": (True, "missing"), "pathology": (True, "missing"), "imaging_results": (False, "missing"),
        "imaging": (False, "missing"), "mrsa": (False, "missing")}  # fmt: skip
    dossier = steps.step("receive_dossier")
    assert (dossier.status, dossier.guard) == (BLOCKED, "checklist_complete")
    assert "still missing: letter, pathology" in (dossier.message or "")
    assert [g for g, _ in dossier.also] == ["costs_team_if_insured_abroad"]  # what comes next is visible too
    receive = steps.step("receive_item")
    assert receive.status == ALLOWED and receive.data[0].choices[:2] == ("letter", "pathology")
    for item in ("letter", "pathology"):
        service.fire(case_id, "receive_item", actor=DESK, data={"item": item})
    steps = service.next_steps(case_id, "second_opinion_doctor")
    assert steps.checklist["missing"] == []
    dossier = steps.step("receive_dossier")
    assert (dossier.status, dossier.guard) == (BLOCKED, "costs_team_if_insured_abroad")
    assert steps.step("contact_costs_team").status == NOT_PERMITTED  # the doctor may not; the desk may
    assert service.next_steps(case_id, "coordinator").step("contact_costs_team").status == ALLOWED
    assert len(service.history(case_id)) == 7  # open and six commands: no refusal was recorded by asking


@MEMORY
def test_royal_doctors_case_for_the_care_consultant(service):
    case_id = service.open_case("PX-0004", actor=CONSULTANT, route="royal-doctors").case_id
    steps = service.next_steps(case_id, "care_consultant")
    assert steps.checklist["provider"] == "royal-doctors"
    assert steps.checklist["missing"] == ["medical_history", "examinations", "lab_reports"]
    assert steps.step("refer").status == ALLOWED and steps.step("refer").to_state == "referred"
    assert steps.step("decline").status == ALLOWED and steps.step("decline").reason_required
    assert steps.step("choose_provider").guard == "provider_change"  # one provider serves the route
    assert steps.step("assign").status == ALLOWED
    assert steps.step("unassign").guard == "assigned"
    coverage = steps.step("decide_coverage")
    assert coverage.status == ALLOWED and "pno-basic" in coverage.data[0].choices
    # the GP may not register a Royal Doctors request: the route decides
    assert service.next_steps(case_id, "gp").step("refer").guard == "route_referrer"
    service.fire(case_id, "refer", actor=CONSULTANT)
    doctor = service.next_steps(case_id, "second_opinion_doctor")
    assert doctor.step("receive_dossier").guard == "consent_active"
    assert doctor.step("waive_item").status == ALLOWED
    assert service.next_steps(case_id, "care_consultant").step("decline").guard == "screener_before_registration"


@MEMORY
def test_outcome_choices_and_closed_case(service):
    case_id = service.open_case("PX-1", actor=DESK).case_id
    walk(service, case_id, "reviewed")
    advice = service.next_steps(case_id, "second_opinion_doctor").step("return_advice")
    assert advice.status == ALLOWED and advice.data[0].choices == ("agrees", "differs", "inconclusive")
    walk_closed = service.open_case("PX-2", actor=DESK).case_id
    walk(service, walk_closed, "withdrawn")
    closed = service.next_steps(walk_closed, "coordinator")
    assert closed.of(ALLOWED) == () and closed.of(BLOCKED) == ()


@MEMORY
def test_unknown_role_and_case_are_refused(service):
    case_id = service.open_case("PX-1", actor=DESK).case_id
    with pytest.raises(ValidationError, match="role"):
        service.next_steps(case_id, "janitor")
    from workflow import UnknownCase

    with pytest.raises(UnknownCase):
        service.next_steps("so-aaaaaaaaaaaaaaaa", "coordinator")


def test_as_dict_lets_a_ui_show_what_to_do():
    from workflow.cases.next_steps import DataField

    step = Step("receive_item", ALLOWED, "d", "referred", False, (DataField("item", "choice", "x", True, ("a",)),))
    assert step.as_dict()["data"] == [{"name": "item", "kind": "choice", "description": "x", "required": True,
                                       "choices": ["a"]}]  # fmt: skip
    blocked = Step("review", BLOCKED, "d", "reviewed", guard="g", message="m", also=(("h", "n"),))
    assert blocked.as_dict()["also"] == [{"guard": "h", "message": "n"}] and blocked.as_dict()["guard"] == "g"
