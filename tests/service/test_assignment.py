"""Assignment (issue 16): ``assign`` records ``facts.assignee = {"id", "at", "by"}`` in every open
state and leaves the state as it was; ``unassign`` removes it; both are audited, replayed and
verified like every event. Bad assignees are refused naming the problem, and never kept."""

from __future__ import annotations

import pytest

from tests.conftest import BACKENDS, CONSULTANT, DESK, DOCTOR, T0, walk
from workflow import DEFINITION, Actor, GuardRefused, InvalidTransition, PermissionDenied, ValidationError
from workflow.clock import utc_iso


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_assign_reassign_and_unassign(service):
    case_id = service.open_case("PX-1", actor=DESK).case_id
    walk(service, case_id, "referred")
    receipt = service.fire(case_id, "assign", actor=DESK, data={"assignee": "desk-2"})
    assert receipt.from_state == receipt.to_state == "referred"
    case = service.case(case_id)
    assert case.facts["assignee"] == {"id": "desk-2", "at": utc_iso(T0), "by": "coordinator"}
    service.fire(case_id, "assign", actor=CONSULTANT, data={"assignee": "zc-9"})
    assert service.case(case_id).facts["assignee"]["id"] == "zc-9"
    assert service.case(case_id).facts["assignee"]["by"] == "care_consultant"
    with pytest.raises(GuardRefused, match="already assigned to zc-9"):
        service.fire(case_id, "assign", actor=DESK, data={"assignee": "zc-9"})
    service.fire(case_id, "unassign", actor=DESK)
    assert "assignee" not in service.case(case_id).facts and service.case(case_id).state == "referred"
    with pytest.raises(GuardRefused) as refused:
        service.fire(case_id, "unassign", actor=DESK)
    assert refused.value.guard == "assigned"
    events = [r.event for r in service.history(case_id) if r.outcome == "accepted"][-3:]
    assert events == ["assign", "assign", "unassign"]
    assert service.verify().ok


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
@pytest.mark.parametrize("state", DEFINITION.open_states)
def test_assign_in_every_open_state_keeps_the_state(service, state):
    case_id = service.open_case("PX-1", actor=DESK).case_id
    walk(service, case_id, state)
    assert service.fire(case_id, "assign", actor=DESK, data={"assignee": "desk-2"}).to_state == state


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_who_may_assign_and_closed_cases(service):
    assert set(DEFINITION.roles_for("assign")) == set(DEFINITION.roles_for("unassign")) == {"coordinator",
                                                                                              "care_consultant"}
    case_id = service.open_case("PX-1", actor=DESK).case_id
    with pytest.raises(PermissionDenied):
        service.fire(case_id, "assign", actor=DOCTOR, data={"assignee": "dr-1"})
    walk(service, case_id, "withdrawn")
    with pytest.raises(InvalidTransition):
        service.fire(case_id, "assign", actor=DESK, data={"assignee": "desk-2"})


@pytest.mark.parametrize("db_url", ["memory", "sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("assignee", "error", "says"),
    [
        ("x", GuardRefused, "person's actor id"),
        ("a" * 65, GuardRefused, "3-64 characters"),
        ("desk 2", GuardRefused, "person's actor id"),
        (42, GuardRefused, "person's actor id"),
        (None, GuardRefused, "person's actor id"),
        ("111222333", ValidationError, "BSN"),
        ("nurse-111.222.333", ValidationError, "BSN"),
    ],
)
def test_bad_assignees_are_refused_and_not_kept(service, assignee, error, says):
    case_id = service.open_case("PX-1", actor=DESK).case_id
    with pytest.raises(error, match=says):
        service.fire(case_id, "assign", actor=DESK, data={"assignee": assignee})
    case = service.case(case_id)
    assert "assignee" not in case.facts and case.version == 1
    last = service.history(case_id)[-1]
    assert last.outcome == "rejected" and last.payload == {}
    assert "111222333" not in (last.refusal or "") and "111.222.333" not in (last.refusal or "")


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_missing_assignee_and_the_patients_name(service):
    case_id = service.open_case("PX-1", actor=DESK).case_id
    with pytest.raises(ValidationError, match="assignee"):
        service.fire(case_id, "assign", actor=DESK)


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_a_word_of_the_patients_name_is_refused_before_anything_is_written(db_url, clock):
    from second_opinion import connect

    with connect(db_url, clock=clock, identity_key=b"k" * 32) as service:
        case_id = service.open_case("PX-1", actor=DESK, patient_name="Jansen").case_id
        before = service.case(case_id)
        with pytest.raises(ValidationError):
            service.fire(case_id, "assign", actor=DESK, data={"assignee": "jansen"})
        assert service.case(case_id) == before  # not even a refusal record
        assert service.fire(case_id, "assign", actor=Actor("desk-1", "coordinator"),
                            data={"assignee": "desk-2"}).version == 2  # fmt: skip
