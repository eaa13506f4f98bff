"""Case routes: open, list, read, fire, history, deadlines; each a thin call into AccessService.
The two writes take a :data:`~second_opinion.api.deps.Writer`: the caller, within the rate limits."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Response

from second_opinion.render import case_json, record_json
from workflow.access.log import as_dict as access_json

from . import schemas
from .deps import Access, Caller, Writer, aware, command_args, none_match

router = APIRouter(prefix="/cases", tags=["cases"])

IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=64, description="Retry-safe: same key, same answer."),
]
IfMatch = Annotated[
    str | None, Header(alias="If-Match", max_length=40, description='The version you read (its ETag), e.g. "3".')
]
IfNoneMatch = Annotated[
    str | None,
    Header(alias="If-None-Match", max_length=200,
           description='The ETag(s) you hold, e.g. "3": the same version is a 304 without a body (still a logged '
           "read of the case). Weak comparison (RFC 9110): W/\"3\" matches too."),
]  # fmt: skip



@router.post("", status_code=201, response_model=schemas.Receipt, summary="Open a case in your organisation",
             operation_id="openCase")
def open_case(
    body: schemas.OpenCase, caller: Writer, access: Access, response: Response, idempotency_key: IdempotencyKey = None
) -> dict[str, Any]:
    name = None if body.patient_name is None else body.patient_name.get_secret_value()
    receipt = access.open_case(
        caller, body.patient_ref, route=body.route, occurred_at=aware(body.occurred_at, "occurred_at"),
        idempotency_key=idempotency_key, patient_name=name, provider=body.provider,
    )  # fmt: skip
    response.headers["Location"] = f"/cases/{receipt.case_id}"
    response.headers["ETag"] = f'"{receipt.version}"'
    return receipt.as_dict()


@router.get("/{case_id}", response_model=schemas.CaseOut, summary="Read a case with its deadlines",
            operation_id="readCase", responses={304: {"description": "Not Modified"}})
def read_case(case_id: str, caller: Caller, access: Access, response: Response,
              if_none_match: IfNoneMatch = None) -> Any:  # fmt: skip
    # read (and logged) before the comparison: a 304 tells the caller the case is still at the version
    # they hold, which is itself a read of the case, and the access log says so (kind "case")
    case, deadlines = access.case(caller, case_id)
    etag = f'"{case.version}"'
    if if_none_match is not None and none_match(if_none_match, case.version):
        return Response(status_code=304, headers={"ETag": etag})
    response.headers["ETag"] = etag
    return case_json(case, access.definition, deadlines)


@router.post("/{case_id}/events", response_model=schemas.Receipt, summary="Fire an event on a case",
             operation_id="fireEvent")
def fire(
    case_id: str,
    body: schemas.FireEvent,
    caller: Writer,
    access: Access,
    response: Response,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    receipt = access.fire(caller, case_id, body.event, **command_args(body, if_match, idempotency_key))
    response.headers["ETag"] = f'"{receipt.version}"'
    return receipt.as_dict()


@router.get("/{case_id}/history", response_model=list[schemas.AuditRecordOut], summary="The case's audit trail",
            operation_id="readCaseHistory")
def history(case_id: str, caller: Caller, access: Access) -> list[dict[str, Any]]:
    _, records = access.history(caller, case_id)
    return [record_json(r) for r in records]


@router.get("/{case_id}/deadlines", response_model=list[schemas.DeadlineOut], summary="Deadlines, explained",
            operation_id="listCaseDeadlines")
def deadlines(case_id: str, caller: Caller, access: Access) -> list[dict[str, Any]]:
    return [d.as_dict() for d in access.deadlines(caller, case_id)]


@router.get("/{case_id}/access-log", response_model=list[schemas.AccessRecordOut], response_model_exclude_unset=True,
            summary="Who accessed this case (auditors; the patient for their own case)",
            operation_id="listCaseAccessLog")  # fmt: skip
def case_access_log(case_id: str, caller: Caller, access: Access) -> list[dict[str, Any]]:
    return [access_json(r) for r in access.access_records(caller, case_id)]
