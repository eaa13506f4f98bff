"""FHIR views: every Task and AuditEvent we emit must parse in a FHIR model library.

``fhir.resources`` 8 ships R5 as its default and R4B as a subpackage; Task and AuditEvent are
the same in R4 and R4B (R4B changed medication, evidence and subscription resources), so the
R4B models are the strictest R4-compatible validator available on pydantic 2.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.task import Task

from second_opinion.api.fhir import TASK_STATUS
from tests.api_support import Api
from tests.conftest import PATHS
from workflow import CaseService
from workflow.cases.definitions import DEFINITION


@pytest.fixture
def api(service: CaseService) -> Iterator[Api]:
    yield Api(service)


def test_every_state_has_a_task_status() -> None:
    assert set(TASK_STATUS) == {s.name for s in DEFINITION.states}
    allowed = {"draft", "requested", "received", "accepted", "rejected", "ready", "cancelled", "in-progress",
               "on-hold", "failed", "completed", "entered-in-error"}  # fmt: skip
    assert set(TASK_STATUS.values()) <= allowed


@pytest.mark.parametrize("db_url", ["memory", "sqlite"], indirect=True)
@pytest.mark.parametrize("state", sorted(PATHS))
def test_task_validates_in_every_state(api: Api, state: str) -> None:
    case_id = api.open(patient_ref="PX-0001")
    for event in PATHS[state]:
        assert api.fire(case_id, event).status_code == 200
    answer = api.client.get(f"/fhir/Task/{case_id}", headers=api.auth("coordinator"))
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/fhir+json")
    task = Task.model_validate(answer.json())
    assert task.status == TASK_STATUS[state] and task.businessStatus.text == state
    assert task.for_fhir.identifier.value == "PX-0001" and task.owner.identifier.value == "org-a"
    assert task.requester.identifier.value == "coordinator-1"
    running = [d for d in api.service.deadlines_of(case_id) if d.state == "running"]
    if running:
        assert task.restriction.period.end.isoformat().startswith(running[0].due_at.isoformat()[:19])
    else:
        assert task.restriction is None


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_task_carries_the_running_deadline(api: Api) -> None:
    case_id = api.open()
    for event in PATHS["referred"]:
        api.fire(case_id, event)
    task = api.client.get(f"/fhir/Task/{case_id}", headers=api.auth("coordinator")).json()
    due = api.service.deadlines_of(case_id)[0].due_at
    assert task["restriction"]["period"]["end"] == due.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.mark.parametrize("db_url", ["memory", "sqlite"], indirect=True)
def test_audit_events_validate_for_audit_and_access_records(api: Api) -> None:
    case_id = api.open()
    for event in PATHS["referred"]:
        api.fire(case_id, event)
    api.client.post(f"/cases/{case_id}/events", json={"event": "withdraw", "reason": "x"},
                    headers=api.auth("auditor"))  # denied: an AuditEvent with a failure outcome  # fmt: skip
    api.client.get(f"/cases/{case_id}", headers={**api.auth("gp"), "X-On-Behalf-Of": "gp-head"})
    as_desk = api.client.get("/fhir/AuditEvent", params={"entity": f"Task/{case_id}"}, headers=api.auth("coordinator"))
    bundle = Bundle.model_validate(as_desk.json())
    events = [AuditEvent.model_validate(e.resource.model_dump()) for e in bundle.entry]
    # audit records only (the opening, the path, the denied withdraw): no access log
    assert len(events) == len(PATHS["referred"]) + 2 and {e.action for e in events} == {"C", "U"}
    assert [e.outcome for e in events][-1] == "4"
    as_auditor = api.client.get("/fhir/AuditEvent", params={"entity": case_id}, headers=api.auth("auditor")).json()
    reads = [AuditEvent.model_validate(e["resource"]) for e in as_auditor["entry"] if e["resource"]["action"] == "R"]
    gp_read = [e for e in reads if e.agent[0].who.identifier.value == "gp-1"]
    assert len(gp_read) == 1 and gp_read[0].agent[1].who.identifier.value == "gp-head"
    assert gp_read[0].agent[0].network.address == "testclient" and gp_read[0].outcome == "0"
    ids = [e["resource"]["id"] for e in as_auditor["entry"]]
    assert len(ids) == len(set(ids))
