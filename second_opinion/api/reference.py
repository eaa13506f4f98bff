"""Stateless answers: coverage decisions, the providers and working-day arithmetic. They hold no case
data; each answer is still one access record of kind ``reference`` naming the credential (issue 19:
every use of a token is in the access log), written after the answer is computed, so a refused
input writes nothing."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query

from second_opinion.render import providers_json
from workflow.coverage.rules import decide_all, decide_coverage
from workflow.deadlines.calendars import CALENDARS, add_working_days, working_days_between
from workflow.service.inputs import check_route

from . import schemas
from .deps import Access, Caller, Cases, Contacts

router = APIRouter(tags=["reference"])
CalendarName = Annotated[str, Query(max_length=32, description=f"One of {', '.join(CALENDARS)}.")]


@router.post("/coverage", summary="Coverage decisions for the stated facts", operation_id="decideCoverage")
def coverage(body: schemas.Coverage, caller: Caller, access: Access) -> list[dict[str, Any]]:
    decisions = [decide_coverage(body.facts, body.policy)] if body.policy else decide_all(body.facts)
    access.granted(caller, "reference", [])
    return [d.as_dict() for d in decisions]


@router.get("/providers", response_model=list[schemas.ProviderOut],
            summary="The providers a patient may choose: checklist, consultation, costs team, contacts",
            operation_id="listProviders")  # fmt: skip
def providers(
    caller: Caller,
    access: Access,
    cases: Cases,
    contacts: Contacts,
    route: Annotated[
        schemas.RouteName | None, Query(max_length=32, description="Only those serving this route.")
    ] = None,
) -> list[dict[str, Any]]:
    if route is not None:
        check_route(cases.definition, route)
    found = providers_json(cases.definition, contacts, route)
    access.granted(caller, "reference", [])
    return found


@router.get("/calendar/add-working-days", response_model=schemas.CountOut,
            summary="The date N working days after a start date (day 0 never counts)",
            operation_id="addWorkingDays")  # fmt: skip
def add_days(
    caller: Caller,
    access: Access,
    cases: Cases,
    start: date,
    days: Annotated[int, Query(ge=0, le=2000)],
    calendar: CalendarName = "nl-atw",
) -> dict[str, Any]:
    answer = add_working_days(cases.calendars(calendar), start, days).as_dict()
    access.granted(caller, "reference", [])
    return answer


@router.get("/calendar/working-days", response_model=schemas.CountOut,
            summary="Working days after START up to and including END",
            operation_id="countWorkingDays")  # fmt: skip
def between(caller: Caller, access: Access, cases: Cases, start: date, end: date,
            calendar: CalendarName = "nl-atw") -> dict[str, Any]:  # fmt: skip
    answer = working_days_between(cases.calendars(calendar), start, end).as_dict()
    access.granted(caller, "reference", [])
    return answer
