"""Auditor routes: verify the audit trail, export it as JSON lines, read the access log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from second_opinion.render import record_json, verify_json
from workflow.access.log import as_dict as access_json

from . import schemas
from .deps import Access, Caller, aware
from .schemas import Instant

router = APIRouter(tags=["audit"])
JSONL = "application/jsonl"


@router.get("/audit/verify", response_model=schemas.VerifyOut, summary="Verify the audit trail (auditors)")
def verify(
    caller: Caller, access: Access, case: Annotated[str | None, Query(max_length=64)] = None
) -> dict[str, Any]:
    return verify_json(access.verify(caller, case))


@router.get(
    "/audit/export",
    summary="Export audit records as JSON lines, in storage order (auditors)",
    response_class=StreamingResponse,
    responses={200: {"content": {JSONL: {"schema": {"type": "string"}}}, "description": "One record per line."}},
)
def export(
    caller: Caller,
    access: Access,
    recorded_from: Annotated[Instant | None, Query(alias="from", description="Records from this instant on.")] = None,
) -> StreamingResponse:
    records = access.export(caller, aware(recorded_from, "from"))

    def lines() -> Iterator[str]:
        for record in records:
            yield json.dumps(record_json(record), ensure_ascii=False, sort_keys=True) + "\n"

    return StreamingResponse(lines(), media_type=JSONL)


@router.get("/access-log", response_model=list[schemas.AccessRecordOut],
            summary="The access log: your organisation's (auditors) or your own case's (patients)")  # fmt: skip
def access_log(caller: Caller, access: Access) -> list[dict[str, Any]]:
    return [access_json(r) for r in access.access_records(caller)]
