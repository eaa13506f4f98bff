"""Report routes: the figures as JSON or CSV, and the SVG charts (docs/reports.md).

Each is one call into :meth:`workflow.service.access.AccessService.report` (roles with the
``reports`` read; the caller's organisation only; one access record of kind ``report`` naming no
case), then :mod:`second_opinion.reporting` to put it in the shape asked for.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from second_opinion.reporting import CHARTS, MEDIA_CSV, MEDIA_SVG, chart, report_csv, report_json
from workflow.errors import ValidationError
from workflow.service.reports import Report

from .deps import Access, Caller
from .schemas import RouteName

router = APIRouter(prefix="/reports", tags=["reports"])

RouteParam = Annotated[
    RouteName | None, Query(max_length=32, description="Only this route (default: every route).")
]
FromParam = Annotated[
    str | None,
    Query(alias="from", max_length=10, description="First day, YYYY-MM-DD, Europe/Amsterdam (default: the first "
          "of the month eleven months before `to`)."),
]  # fmt: skip
ToParam = Annotated[
    str | None, Query(alias="to", max_length=10, description="Last day, YYYY-MM-DD, Europe/Amsterdam (default: today).")
]


class SpreadOut(BaseModel):
    n: int
    median: float | None
    p90: float | None


class LeadTimeOut(BaseModel):
    calendar_days: SpreadOut
    working_days: SpreadOut | None
    calendar: str | None


class TermOut(BaseModel):
    policy: str
    term_working_days: int
    calendar: str
    calendar_days: SpreadOut
    working_days: SpreadOut
    counted_working_days: SpreadOut
    within_term: int


class DeadlineShareOut(BaseModel):
    met: int
    breached: int
    share_on_time: float | None


class RouteFiguresOut(BaseModel):
    route: str
    advice_returned: int
    lead_time: LeadTimeOut
    dossier_to_report: list[TermOut]
    deadlines: DeadlineShareOut
    breaches_per_month: dict[str, int]
    cases_per_state: dict[str, int]


class ReportOut(BaseModel):
    from_: str
    to: str
    timezone: str
    generated_at: str
    organisation: str | None
    percentile_method: str
    routes: list[RouteFiguresOut]

    model_config = {"populate_by_name": True, "alias_generator": lambda name: "from" if name == "from_" else name}


def _body(media: str, what: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"content": {media: {"schema": {"type": "string"}}}, "description": what}}


def _report(caller: Caller, access: Access, route: str | None, first: str | None, last: str | None) -> Report:
    return access.report(caller, route=route, first=first, last=last)


@router.get("/summary", response_model=ReportOut, response_model_by_alias=True,
            summary="Figures per route over a period (coordinators, care consultants, auditors)",
            operation_id="readReport")  # fmt: skip
def summary(
    caller: Caller, access: Access, route: RouteParam = None, first: FromParam = None, last: ToParam = None
) -> dict[str, Any]:
    return report_json(_report(caller, access, route, first, last))


@router.get("/summary.csv", summary="The figures as CSV (coordinators, care consultants, auditors)",
            responses=_body(MEDIA_CSV, "CSV"), operation_id="readReportCsv")
def summary_csv(
    caller: Caller, access: Access, route: RouteParam = None, first: FromParam = None, last: ToParam = None
) -> Response:
    found = _report(caller, access, route, first, last)
    name = f"report-{found.period.first.isoformat()}-{found.period.last.isoformat()}.csv"
    return Response(report_csv(found), media_type=MEDIA_CSV,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip


@router.get("/charts/{name}.svg", summary=f"A chart as SVG: {', '.join(CHARTS)}",
            responses=_body(MEDIA_SVG, "SVG"), operation_id="readReportChart")
def chart_svg(
    name: str, caller: Caller, access: Access, route: RouteParam = None, first: FromParam = None,
    last: ToParam = None,
) -> Response:  # fmt: skip
    if name not in CHARTS:  # refused before the report is read or logged
        raise ValidationError("chart", f"not one of the charts: {', '.join(CHARTS)}")
    found = _report(caller, access, route, first, last)
    # the SVG holds no script, but a browser opening it directly must not run one either
    headers = {"Content-Security-Policy": "default-src 'none'", "X-Content-Type-Options": "nosniff"}
    return Response(chart(found, name), media_type=MEDIA_SVG, headers=headers)
