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

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from workflow.access.log import GRANTED, AccessRecord
from workflow.audit.chain import ACCEPTED, NOTED, AuditRecord
from workflow.cases.case import Case
from workflow.cases.definitions import OPEN_EVENT
from workflow.clock import utc_iso
from workflow.deadlines.policies import RUNNING, Deadline
from workflow.service.worklists import WorkListQuery

from .deps import Access, Caller
from .fhir_search import (
    CURSOR_CHARS,
    MAX_COUNT,
    PAGING,
    TASK_SEARCH,
    capability_statement,
    check_parameters,
    task_search,
)


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


def _doc(name: str) -> str:
    return TASK_SEARCH[name][1]


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


@router.get("/Task/{case_id}", summary="A case as a FHIR R4 Task", operation_id="readTask")
def read_task(case_id: str, caller: Caller, access: Access) -> dict[str, Any]:
    return task(*access.case_file(caller, case_id, "fhir-task"))


@router.get(
    "/AuditEvent",
    summary="A case's audit records (and, for auditors and the patient, access records)",
    operation_id="searchAuditEvents",
)
def search_audit_events(
    caller: Caller,
    access: Access,
    entity: Annotated[str, Query(max_length=80, description="The case: its id or Task/<id>.")],
) -> dict[str, Any]:
    records, accesses = access.case_events(caller, entity.removeprefix("Task/"))
    return bundle([*map(audit_event, records), *map(access_event, accesses)])


@router.get("/metadata", summary="The FHIR CapabilityStatement: what this endpoint reads and searches (no token)",
            operation_id="readCapabilityStatement")  # fmt: skip
def metadata(request: Request) -> dict[str, Any]:
    return capability_statement(request.app.version)


@router.get("/Task", summary="Search cases as FHIR Tasks: a searchset Bundle, one page at a time",
            operation_id="searchTasks")  # fmt: skip
def search_tasks(
    request: Request,
    caller: Caller,
    access: Access,
    status: Annotated[
        str | None,
        Query(max_length=32, description=_doc("status"), json_schema_extra={"enum": sorted(set(TASK_STATUS.values()))}),
    ] = None,
    owner: Annotated[str | None, Query(max_length=120, description=_doc("owner"))] = None,
    patient: Annotated[str | None, Query(max_length=120, description=_doc("patient"))] = None,
    period: Annotated[str | None, Query(max_length=40, description=_doc("period"))] = None,
    count: Annotated[int | None, Query(alias="_count", ge=1, le=MAX_COUNT, description=_doc("_count"))] = None,
    cursor: Annotated[
        str | None, Query(alias=PAGING, max_length=CURSOR_CHARS, description="From the Bundle's next link.")
    ] = None,
) -> dict[str, Any]:
    """Each page is one work-list page of the caller's (one access record of kind ``list`` naming every
    case on it) and, per case, its Task read as ``GET /fhir/Task/ID`` reads it (one ``fhir-task``
    record each): every result is a logged read. The declared parameters are for the schema; the
    query is read whole, so that an unknown or repeated parameter is refused."""
    check_parameters(request.query_params.multi_items())
    search = task_search(dict(request.query_params), TASK_STATUS)
    index, cursor_now = search.index, search.cursor
    while True:
        query = WorkListQuery(state=search.states[index], organisation=search.organisation,
                              patient_ref=search.patient_ref, updated_since=search.updated_since, limit=search.count,
                              cursor=cursor_now)  # fmt: skip
        page = access.worklist(caller, query)
        if page.next_cursor is not None:
            following: tuple[int, str] | None = (index, page.next_cursor)
        elif index + 1 < len(search.states):
            following = (index + 1, "")
        else:
            following = None
        if page.cases or following is None or following[1]:
            break
        index, cursor_now = following[0], None  # this state has none (left): the next state's first page
    tasks = [task(*access.case_file(caller, case.id, "fhir-task")) for case in page.cases]
    params = dict(request.query_params)
    links = [{"relation": "self", "url": f"Task?{request.url.query}" if request.url.query else "Task"}]
    if following is not None:
        links.append({"relation": "next", "url": search.link("Task", params, *following)})
    return {"resourceType": "Bundle", "type": "searchset", "link": links,
            "entry": [{"resource": t, "search": {"mode": "match"}} for t in tasks]}  # fmt: skip
