"""``GET /cases``: the work list, one page at a time (see docs/api.md, "Work lists").

Every query parameter is named and bounded; one the route does not know, or one given twice, is
a 422 naming it, never silently ignored. The page's successor is in the ``Link`` header
(``rel="next"``, a relative URL carrying every filter and the opaque ``cursor``), absent on the last
page; the body stays a JSON array of cases, as before pagination. One access-log record per page.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from second_opinion.render import case_json
from workflow.errors import ValidationError
from workflow.listing import MAX_CURSOR_CHARS, MAX_PAGE, SORTS
from workflow.service.worklists import MAX_DUE_WITHIN, WorkListQuery

from . import schemas
from .deps import Access, Caller, aware
from .schemas import Instant

router = APIRouter(prefix="/cases", tags=["cases"])

_ID = r"^[A-Za-z0-9._:-]{3,64}$"
Id = Annotated[str | None, Query(max_length=64, pattern=_ID)]


@router.get(
    "",
    response_model=list[schemas.WorkListCaseOut],
    summary="List the cases you may see (work lists)",
    operation_id="listCases",
)
def list_cases(
    request: Request,
    caller: Caller,
    access: Access,
    state: Annotated[schemas.StateName | None, Query(max_length=64)] = None,
    route: Annotated[schemas.RouteName | None, Query(max_length=32)] = None,
    patient_ref: Annotated[Id, Query(description="Only the cases of this patient reference.")] = None,
    provider: Annotated[Id, Query(description="Only cases with this chosen provider (facts.provider.id).")] = None,
    assignee: Annotated[Id, Query(description="Only cases assigned to this person (facts.assignee.id).")] = None,
    mine: Annotated[bool, Query(description="Only cases assigned to the token's own actor id (my cases).")] = False,
    organisation: Annotated[Id, Query(description="Your own organisation (others have no case you see).")] = None,
    updated_since: Annotated[Instant | None, Query(description="Only cases changed from this instant on.")] = None,
    overdue: Annotated[
        bool,
        Query(
            description="Only cases with a deadline past its due moment and not stopped (running or "
            "breached); each with `worklist.working_days_late`."
        ),
    ] = False,
    due_within: Annotated[
        int | None,
        Query(
            ge=0,
            le=MAX_DUE_WITHIN,
            description="Only cases due within N working days, on each "
            "deadline's own calendar; each with `worklist.working_days_left`.",
        ),
    ] = None,
    due_before: Annotated[Instant | None, Query(description="Only cases due before this instant.")] = None,
    sort: Annotated[str | None, Query(max_length=8, description=f"One of {', '.join(SORTS)}; default opened.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"Page size, 1-{MAX_PAGE}.")] = 50,
    cursor: Annotated[
        str | None, Query(max_length=MAX_CURSOR_CHARS, description='From the `Link: <...>; rel="next"` header.')
    ] = None,
) -> Any:
    _known_parameters_only(request)
    if mine:
        if assignee is not None and assignee != caller.token.actor:
            raise ValidationError("mine", "mine=true lists your own cases: give it without assignee")
        assignee = caller.token.actor
    query = WorkListQuery(
        patient_ref=patient_ref, state=state, route=route, provider=provider, organisation=organisation,
        assignee=assignee, updated_since=aware(updated_since, "updated_since"), overdue=overdue,
        due_within=due_within, due_before=aware(due_before, "due_before"), sort=sort, limit=limit, cursor=cursor,
    )  # fmt: skip
    page = access.worklist(caller, query)
    due = overdue or due_within is not None or (sort or "").lstrip("-") == "due"
    body = []
    for row in page.rows:
        found: dict[str, Any] = {**case_json(row.case, access.definition), "deadlines": None}
        if due:
            found["worklist"] = row.as_dict()
        body.append(found)
    response = JSONResponse(body)
    if page.next_cursor is not None:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
        target = f"{request.url.path}?{urlencode([*params, ('cursor', page.next_cursor)])}"
        response.headers["Link"] = f'<{target}>; rel="next"'
    return response


def _known_parameters_only(request: Request) -> None:
    known = {p.alias for p in request.scope["route"].dependant.query_params}
    for name, _ in request.query_params.multi_items():
        if name not in known:
            raise ValidationError("query", f"unknown parameter {name[:40]!r}; known: {', '.join(sorted(known))}")
    seen = [name for name, _ in request.query_params.multi_items()]
    twice = sorted({n for n in seen if seen.count(n) > 1})
    if twice:
        raise ValidationError(twice[0], "is given more than once; give it once")
