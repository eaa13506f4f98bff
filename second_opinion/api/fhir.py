"""Read-only FHIR R4 views: a case as a ``Task``, its audit and access records as ``AuditEvent``s.

The mapping is data (:data:`TASK_STATUS`, :data:`ACTIONS`) and pure functions, tested by
validating their output with the ``fhir.resources`` models; ``docs/api.md`` documents it. Our
identifiers travel as FHIR identifiers under ``urn:second-opinion:*`` systems; the patient is
named only by the pseudonymous patient reference, never by BSN or name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from workflow.access.log import GRANTED, AccessRecord
from workflow.audit.chain import ACCEPTED, NOTED, AuditRecord
from workflow.cases.case import Case
from workflow.cases.definitions import OPEN_EVENT
from workflow.clock import utc_iso
from workflow.deadlines.policies import RUNNING, Deadline

from .deps import Access, Caller


class FhirJSON(JSONResponse):
    media_type = "application/fhir+json"


router = APIRouter(prefix="/fhir", tags=["fhir"], default_response_class=FhirJSON)

TASK_STATUS = {
    "requested": "requested",
    "referred": "accepted",
    "dossier_received": "in-progress",
    "reviewed": "in-progress",
    "advice_returned": "in-progress",
    "back_to_first_provider": "completed",
    "care_transferred": "completed",
    "withdrawn": "cancelled",
    "declined": "rejected",
}
"""Our state -> Task.status; our own state name travels as Task.businessStatus."""

ACTIONS = {OPEN_EVENT: "C", "read": "R"}
"""AuditEvent.action: C for opening a case, R for a read, U for every other command."""

OUTCOMES = {ACCEPTED: "0", NOTED: "0", GRANTED: "0"}
"""AuditEvent.outcome: 0 (success) for these, 4 (minor failure: refused, denied, not found) otherwise."""

_SYSTEM = "urn:second-opinion:"
_SOURCE = {
    "observer": {"display": "second-opinion"},
    "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4",
              "display": "Application Server"}],
}  # fmt: skip
_REST = {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest",
         "display": "RESTful Operation"}  # fmt: skip
_PATIENT_RECORD = {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110110",
                   "display": "Patient Record"}  # fmt: skip


def _identifier(kind: str, value: str) -> dict[str, Any]:
    return {"system": _SYSTEM + kind, "value": value}


def _entities(case_id: str | None, patient_ref: str | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if case_id:
        out.append({"what": {"reference": f"Task/{case_id}"},
                    "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2",
                             "display": "System Object"}})  # fmt: skip
    if patient_ref:
        out.append({"what": {"identifier": _identifier("patient-ref", patient_ref)},
                    "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1",
                             "display": "Person"}})  # fmt: skip
    return out


def _agents(actor_id: str, role: str, on_behalf_of: str | None, client: str | None = None) -> list[dict[str, Any]]:
    agent: dict[str, Any] = {"who": {"identifier": _identifier("actor", actor_id)}, "role": [{"text": role}],
                             "requestor": True}  # fmt: skip
    if client:
        agent["network"] = {"address": client, "type": "2"}
    agents = [agent]
    if on_behalf_of:
        agents.append({"who": {"identifier": _identifier("actor", on_behalf_of)}, "requestor": False,
                       "role": [{"text": "on behalf of"}]})  # fmt: skip
    return agents


def _fhir_id(*parts: object) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:40]


def task(case: Case, records: Sequence[AuditRecord], deadlines: Iterable[Deadline]) -> dict[str, Any]:
    opened = next((r for r in records if r.event == OPEN_EVENT and r.outcome == ACCEPTED), None)
    running = sorted((d.due_at for d in deadlines if d.state == RUNNING and d.due_at), key=lambda d: d)
    out: dict[str, Any] = {
        "resourceType": "Task",
        "id": case.id,
        "meta": {"versionId": str(case.version), "lastUpdated": utc_iso(case.updated_at)},
        "identifier": [_identifier("case", case.id)],
        "status": TASK_STATUS[case.state],
        "businessStatus": {"coding": [{"system": _SYSTEM + "state", "code": case.state}], "text": case.state},
        "intent": "order",
        "code": {"text": "second opinion"},
        "description": f"Second opinion, route {case.route}",
        "for": {"identifier": _identifier("patient-ref", case.patient_ref)},
        "authoredOn": utc_iso(case.opened_at),
        "lastModified": utc_iso(case.updated_at),
        "owner": {"identifier": _identifier("organisation", case.organisation), "display": case.organisation},
    }
    if opened is not None:
        out["requester"] = {"identifier": _identifier("actor", opened.actor_id), "display": opened.actor_role}
    if running:
        out["restriction"] = {"period": {"end": utc_iso(running[0])}}
    return out


def audit_event(record: AuditRecord) -> dict[str, Any]:
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": _fhir_id("audit", record.case_id, record.seq),
        "type": _REST,
        "subtype": [{"system": _SYSTEM + "event", "code": record.event}],
        "action": ACTIONS.get(record.event, "U"),
        "recorded": utc_iso(record.recorded_at),
        "period": {"start": utc_iso(record.occurred_at), "end": utc_iso(record.occurred_at)},
        "outcome": OUTCOMES.get(record.outcome, "4"),
        "agent": _agents(record.actor_id, record.actor_role, record.on_behalf_of),
        "source": _SOURCE,
        "entity": _entities(record.case_id, None),
    }
    if record.refusal:
        event["outcomeDesc"] = record.refusal
    return event


def access_event(record: AccessRecord) -> dict[str, Any]:
    return {
        "resourceType": "AuditEvent",
        "id": _fhir_id("access", record.hash or f"sequence-{record.sequence}"),  # a patient's view has no hashes
        "type": _PATIENT_RECORD,
        "subtype": [{"system": _SYSTEM + "access", "code": record.kind}],
        "action": ACTIONS["read"],
        "recorded": utc_iso(record.at),
        "outcome": OUTCOMES.get(record.outcome, "4"),
        "outcomeDesc": record.outcome,
        "agent": _agents(record.actor_id, record.actor_role, record.on_behalf_of, record.client),
        "source": _SOURCE,
        "entity": _entities(record.case_id, record.patient_ref),
    }


def bundle(resources: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
            "entry": [{"resource": r} for r in resources]}  # fmt: skip


@router.get("/Task/{case_id}", summary="A case as a FHIR R4 Task")
def read_task(case_id: str, caller: Caller, access: Access) -> dict[str, Any]:
    return task(*access.case_file(caller, case_id, "fhir-task"))


@router.get("/AuditEvent", summary="A case's audit records (and, for auditors and the patient, access records)")
def search_audit_events(
    caller: Caller,
    access: Access,
    entity: Annotated[str, Query(max_length=80, description="The case: its id or Task/<id>.")],
) -> dict[str, Any]:
    records, accesses = access.case_events(caller, entity.removeprefix("Task/"))
    return bundle([*map(audit_event, records), *map(access_event, accesses)])
