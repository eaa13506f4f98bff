"""Auditor routes: verify the audit trail, export it as JSON lines, read the access log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from second_opinion.render import next_after, record_json, verify_json
from workflow.access.log import as_dict as access_json

from . import schemas
from .deps import Access, Caller, aware
from .schemas import Instant

router = APIRouter(tags=["audit"])
JSONL = "application/jsonl"
NEXT_AFTER = "X-Next-After"
"""The response header of an export that gives the cursor of the next one (``?after=``)."""
EXPORTED: dict[str, Any] = {
    "content": {JSONL: {"schema": {"type": "string"}}},
    "description": "One record per line.",
    "headers": {
        NEXT_AFTER: {
            "description": "The `after` of the next incremental export (absent when nothing matched `from` alone)",
            "schema": {"type": "integer"},
        }
    },
}


@router.get("/audit/verify", response_model=schemas.VerifyOut, summary="Verify the audit trail (auditors)",
            operation_id="verifyAudit")
def verify(
    caller: Caller, access: Access, case: Annotated[str | None, Query(max_length=64)] = None
) -> dict[str, Any]:
    return verify_json(access.verify(caller, case))


@router.get(
    "/audit/export",
    summary="Export audit records as JSON lines, in storage order (auditors)",
    response_class=StreamingResponse,
    responses={200: EXPORTED},
    operation_id="exportAudit",
)
def export(
    caller: Caller,
    access: Access,
    recorded_from: Annotated[Instant | None, Query(alias="from", description="Records from this instant on.")] = None,
    after: Annotated[
        int | None,
        Query(ge=0, description=f"Records after this sequence: the `{NEXT_AFTER}` of the previous export."),
    ] = None,
) -> StreamingResponse:
    records = access.export(caller, aware(recorded_from, "from"), after)

    def lines() -> Iterator[str]:
        for record in records:
            yield json.dumps(record_json(record), ensure_ascii=False, sort_keys=True) + "\n"

    cursor = next_after(records, after)
    headers = None if cursor is None else {NEXT_AFTER: str(cursor)}
    return StreamingResponse(lines(), media_type=JSONL, headers=headers)


@router.get("/access-log", response_model=list[schemas.AccessRecordOut], response_model_exclude_unset=True,
            summary="The access log: your organisation's (auditors) or your own case's (patients)",
            operation_id="listAccessLog")  # fmt: skip
def access_log(caller: Caller, access: Access) -> list[dict[str, Any]]:
    return [access_json(r) for r in access.access_records(caller)]
