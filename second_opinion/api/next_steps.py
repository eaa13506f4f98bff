"""Next steps and checks: ``GET /cases/{id}/next`` (what the caller's role may do now, and what is
missing) and ``POST /cases/{id}/check`` (what ``POST /cases/{id}/events`` would decide on the same
body, writing nothing to the case). Both are reads of the case: visible as ``GET /cases/{id}`` is,
logged in the access log (kinds ``next`` and ``check``), and counted against the token's read limit."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from workflow.access.rules import Principal

from . import schemas
from .cases import IdempotencyKey, IfMatch
from .deps import Access, Caller, command_args, limits
from .edge import RateLimited

router = APIRouter(prefix="/cases", tags=["cases"])


def checker(request: Request, caller: Caller) -> Principal:
    """A check is a POST (it carries a command's body) but a read: it takes the read budget."""
    wait = limits(request).take_read(caller.token.id)
    if wait:
        raise RateLimited("too many reads for this token; retry after Retry-After seconds", wait)
    return caller


Checker = Annotated[Principal, Depends(checker)]


class DataFieldOut(BaseModel):
    name: str
    kind: str = Field(description="choice | boolean | integer | text | id | object")
    description: str
    required: bool
    choices: list[Any] | None = Field(None, description="Values accepted now (blocked: the values there are); "
                                      "absent for free text, ids and objects.")


class BlockerOut(BaseModel):
    guard: str
    message: str


class StepOut(BaseModel):
    event: str
    status: str = Field(description="allowed | blocked")
    description: str
    to_state: str | None
    reason_required: bool
    data: list[DataFieldOut]
    guard: str | None = Field(None, description="blocked: the guard that refuses first (null: the data).")
    message: str | None = None
    field: str | None = Field(None, description="blocked by the data: the field named.")
    also: list[BlockerOut] | None = Field(None, description="blocked: the other guards that refuse too.")


class CaseChecklistItemOut(BaseModel):
    item: str
    required: bool
    status: str = Field(description="received | waived | missing")


class ChecklistOut(BaseModel):
    provider: str | None = Field(None, description="The provider whose checklist it is; absent: none chosen.")
    provider_required: bool
    items: list[CaseChecklistItemOut]
    missing: list[str]
    circumstances_missing: list[str]


class NextStepsOut(BaseModel):
    case_id: str
    state: str
    version: int
    role: str
    events: list[StepOut] = Field(description="Every event the role may fire in this state: allowed or blocked.")
    not_in_this_state: list[str]
    not_permitted: list[str]
    checklist: ChecklistOut


class VerdictOut(BaseModel):
    case_id: str
    event: str
    accepted: bool
    from_state: str
    to_state: str
    version: int = Field(description="The case's version now; accepted, firing would make it version + 1.")
    refusal: dict[str, Any] | None = Field(description="type, outcome, message; guard and reason, or field.")
    replayed: bool
    written: bool = Field(description="Always false: a check writes nothing to the case.")


@router.get("/{case_id}/next", response_model=NextStepsOut, response_model_exclude_none=True,
            summary="What your role may do to the case now, and what blocks the rest",
            operation_id="readNextSteps")  # fmt: skip
def next_steps(case_id: str, caller: Caller, access: Access) -> dict[str, Any]:
    return access.next_steps(caller, case_id).as_dict()


@router.post("/{case_id}/check", response_model=VerdictOut,
             summary="What firing this event would decide (the body of POST /events); writes nothing",
             operation_id="checkEvent")  # fmt: skip
def check(
    case_id: str,
    body: schemas.FireEvent,
    caller: Checker,
    access: Access,
    response: Response,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    verdict = access.check(caller, case_id, body.event, **command_args(body, if_match, idempotency_key))
    response.headers["ETag"] = f'"{verdict.version}"'
    return verdict.as_dict()
