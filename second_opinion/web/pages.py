"""The pages a signed-in caller reads: the board, the work list, search, the case page and the
auditor's page. Each is one or two :class:`~workflow.service.access.AccessService` reads, the
same calls the API's routes make, so each is checked and logged as theirs are."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from markupsafe import Markup

from second_opinion import reporting
from second_opinion.render import export_csv, record_json
from workflow.cases import insurer
from workflow.errors import ValidationError
from workflow.listing import MAX_PAGE
from workflow.service import inputs
from workflow.service.worklists import WorkListQuery

from . import shapes
from .context import N_, Refused, Ui, safe_next
from .forms import checklist_items, form_for, offered
from .sessions import LANG_COOKIE

DUE_SOON_DAYS = 5
""""Due soon": due within this many working days, counted on each deadline's own calendar."""
BOARD_COLUMN = 20
"""Cases shown per column of the unfiltered board (the most recently changed); filtering by state shows
up to a page."""
WORK_SORTS = {"due": N_("due moment, earliest first"), "-due": N_("due moment, latest first"),
              "-updated": N_("last change, newest first"), "updated": N_("last change, oldest first"),
              "opened": N_("opened, oldest first"), "-opened": N_("opened, newest first")}  # fmt: skip
"""The work list's orders (each one of :data:`workflow.listing.SORTS`), as the page offers them."""
ACCESS_LOG_SHOWN = 200
"""Access records the auditor's page shows (the newest); the export has them all."""

Filter = Annotated[str | None, Query(max_length=64)]


def routes(ui: Ui) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    def home(request: Request) -> Response:
        return ui.redirect("/ui/board" if ui.session(request) else "/ui/sign-in")

    @router.get("/language/{lang}")
    def language(request: Request, lang: str, next: Annotated[str | None, Query(max_length=512)] = None) -> Response:
        from second_opinion.i18n import LANGUAGES

        if lang not in LANGUAGES:
            raise Refused(404, N_("No such page"))
        answer = ui.redirect(safe_next(next))
        ui.set_cookie(request, answer, LANG_COOKIE, lang, max_age=365 * 24 * 3600)
        return answer

    @router.get("/board")
    def board(request: Request, route: Filter = None, state: Filter = None) -> Response:
        caller = ui.caller(request)
        route, state = route or None, state or None
        definition = ui.definition
        if state is not None:
            inputs.check_state(definition, state)
        # counted in SQL; each column shows its most recently changed cases (one access record
        # naming them all), the whole list of a state is one filter away
        per_state = MAX_PAGE if state else BOARD_COLUMN
        counts, pages = ui.access.board(caller.principal, WorkListQuery(state=state, route=route, sort="-updated"),
                                        per_state)  # fmt: skip
        columns = [(s.name, pages[s.name].cases if s.name in pages else [], counts.get(s.name, 0))
                   for s in definition.states if state is None or s.name == state]  # fmt: skip
        context = {"columns": columns, "total": sum(counts.values()), "routes": definition.route_names,
                   "states": [s.name for s in definition.states], "route": route, "state": state,
                   "may_open": definition.may(caller.role, "open")}  # fmt: skip
        return ui.page(request, "board.html", context, caller=caller)

    @router.get("/work")
    def work(request: Request, sort: Filter = None) -> Response:
        caller = ui.caller(request)
        if sort is not None and sort not in WORK_SORTS:
            raise Refused(422, N_("Unknown order"), N_("Choose one of the orders the work list offers."))
        sort = sort or "due"
        # the work-list queries: overdue = past due and not stopped (running or breached), with the
        # working days late; due soon within N working days, with the days left; one access record
        # per list shown, naming its cases (the newest MAX_PAGE of each, most urgent first)
        overdue = ui.access.worklist(caller.principal, WorkListQuery(overdue=True, sort=sort, limit=MAX_PAGE))
        soon_page = ui.access.worklist(caller.principal, WorkListQuery(due_within=DUE_SOON_DAYS, sort=sort,
                                                                       limit=MAX_PAGE))  # fmt: skip
        late = {row.case.id for row in overdue.rows}
        soon = [row for row in soon_page.rows if row.case.id not in late]
        context = {"overdue": overdue.rows, "soon": soon, "days": DUE_SOON_DAYS, "sort": sort, "sorts": WORK_SORTS,
                   "more": overdue.next_cursor is not None or soon_page.next_cursor is not None}  # fmt: skip
        return ui.page(request, "work.html", context, caller=caller)

    @router.get("/search")
    def search(request: Request, patient_ref: Filter = None) -> Response:
        caller = ui.caller(request)
        wanted = (patient_ref or "").strip()
        found, problem = None, None
        if wanted:
            try:
                inputs.check_id("patient reference", wanted)
            except ValidationError as exc:
                problem = exc.problem
            else:
                # filtered in SQL: the one access record names only the cases found
                query = WorkListQuery(patient_ref=wanted, limit=MAX_PAGE)
                found = [row.case for row in ui.access.worklist(caller.principal, query).rows]
        context = {"patient_ref": wanted, "found": found, "problem": problem}
        return ui.page(request, "search.html", context, status=422 if problem else 200, caller=caller)

    @router.get("/cases/{case_id}")
    def case_page(request: Request, case_id: str) -> Response:
        caller = ui.caller(request)
        return case_view(ui, request, caller, case_id)

    @router.get("/reports")
    def report_page(request: Request, route: Filter = None) -> Response:
        """The figures of :mod:`workflow.service.reports` over the last twelve months, the charts
        drawn on the server (:mod:`second_opinion.charts`) and put inline: no script, no other host."""
        caller = ui.caller(request)
        report = ui.access.report(caller.principal, route=route or None)
        charts = {name: Markup(_inline(reporting.chart(report, name))) for name in reporting.CHARTS}
        context = {"charts": charts, "route": route or "", "routes": ui.definition.route_names}
        return ui.page(request, "reports.html", context, caller=caller)

    @router.get("/reports.csv")
    def report_csv(request: Request, route: Filter = None) -> Response:
        caller = ui.caller(request)
        report = ui.access.report(caller.principal, route=route or None)
        disposition = {"Content-Disposition": 'attachment; filename="report.csv"'}
        return Response(reporting.report_csv(report), media_type="text/csv; charset=utf-8", headers=disposition)

    @router.get("/audit")
    def audit(request: Request, verify: Filter = None) -> Response:
        caller = ui.caller(request)
        report = ui.access.verify(caller.principal) if verify else None
        records = ui.access.access_records(caller.principal)
        shown = sorted(records, key=lambda r: r.sequence or 0, reverse=True)[:ACCESS_LOG_SHOWN]
        context = {"report": report, "records": shown, "total": len(records), "limit": ACCESS_LOG_SHOWN}
        return ui.page(request, "audit.html", context, caller=caller)

    @router.get("/audit/export")
    def export(request: Request, format: Filter = "jsonl") -> Response:
        caller = ui.caller(request)
        if format not in ("jsonl", "csv"):
            raise Refused(422, N_("Unknown export format"), N_("Choose jsonl or csv."))
        records = ui.access.export(caller.principal)
        if format == "csv":
            body: Iterator[str] = iter([export_csv(records)])
            kind, name = "text/csv; charset=utf-8", "audit-export.csv"
        else:
            body = (json.dumps(record_json(r), ensure_ascii=False, sort_keys=True) + "\n" for r in records)
            kind, name = "application/jsonl", "audit-export.jsonl"
        disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
        return StreamingResponse(body, media_type=kind, headers=disposition)

    return router


def _inline(svg: str) -> str:
    """An SVG document as an element of the page: without its XML declaration, if it has one."""
    return svg.split("?>", 1)[1].lstrip() if svg.startswith("<?xml") else svg


def case_view(ui: Ui, request: Request, caller: Any, case_id: str, *, status: int = 200,
              problem: str | None = None, posted: dict[str, str] | None = None) -> Response:  # fmt: skip
    """The case page: the case with its deadlines (a ``case`` read) and its audit trail (a
    ``history`` read), the checklist, the coverage decision and the next-step forms."""
    case, deadlines = ui.access.case(caller.principal, case_id)
    _, records = ui.access.history(caller.principal, case_id)
    steps = ui.access.next_steps(caller.principal, case_id)  # what the role may do now, what blocks the rest
    allowed = {s.event for s in steps.of("allowed")}
    definition = ui.definition
    coverage = case.facts.get("coverage")
    context = {
        "case": case,
        "records": records,
        "deadlines": [shapes.deadline(d) for d in deadlines],
        "checklist": checklist_items(definition, case),
        "coverage": coverage,
        "coverage_summary": insurer.summary(coverage) if coverage else None,
        "forms": [form_for(definition, case, e) for e in offered(definition, case, caller.role)
                  if e.name in allowed],
        "blocked": [(s.event, s.message or s.field or "") for s in steps.of("blocked")],
        "facts": shapes.facts(case.facts),
        "problem": problem,
        "posted": posted or {},
        "terminal": definition.state(case.state).terminal,
    }
    return ui.page(request, "case.html", context, status=status, caller=caller)
