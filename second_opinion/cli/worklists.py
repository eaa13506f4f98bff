"""The work-list commands: ``cases`` (filters, order, pages) and ``show`` (a case, or the cases
of a patient reference); registered in :mod:`second_opinion.cli.root`. See docs/cli.md.

``cases`` without ``--limit`` or ``--cursor`` prints every case that matches, as it always has
(a JSON list); with either, one page: under ``--json`` an object with the page's ``cases`` and
the ``next_cursor`` to pass back (null on the last page).
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, time
from typing import Annotated, Any

import typer

from workflow.clock import AMSTERDAM, parse_instant
from workflow.errors import UnknownCase, ValidationError
from workflow.listing import MAX_PAGE, SORTS
from workflow.privacy import contains_bsn
from workflow.service import inputs
from workflow.service.cases import CaseService
from workflow.service.worklists import MAX_DUE_WITHIN, Page, Row, WorkListQuery

from .. import render, views
from ..labels import Words
from .common import (
    BsnStdin,
    Db,
    Json,
    Lang,
    actor_of,
    bsn_from_stdin,
    emit,
    guard,
    open_service,
    out,
    print_json,
    words,
)
from .deadlines import parse_date

Opt = typer.Option


def instant(text: str | None, option: str) -> datetime | None:
    """A date (midnight Europe/Amsterdam) or an ISO 8601 instant with offset."""
    if text is None:
        return None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return datetime.combine(parse_date(text, option), time(0), AMSTERDAM)
    return parse_instant(text, option)


def cases_command(
    state: Annotated[str | None, Opt(help="Only cases in this state.")] = None,
    org: Annotated[str | None, Opt("--org", help="Only cases of this organisation.")] = None,
    patient_ref: Annotated[str | None, Opt("--patient-ref", help="Only cases of this patient reference.")] = None,
    route: Annotated[str | None, Opt("--route", help="Only cases on this route.")] = None,
    provider: Annotated[str | None, Opt("--provider", help="Only cases with this chosen provider.")] = None,
    assignee: Annotated[str | None, Opt("--assignee", help="Only cases assigned to this person.")] = None,
    mine: Annotated[
        bool, Opt("--mine", help="Only cases assigned to me ($SECOND_OPINION_ACTOR or user:<login>).")
    ] = False,
    updated_since: Annotated[
        str | None, Opt("--updated-since", help="Only cases changed from then on (date, Amsterdam, or instant).")
    ] = None,
    overdue: Annotated[
        bool,
        Opt(
            "--overdue",
            help="Only cases with a deadline past its due moment, not stopped (running or "
            "breached); with the working days late.",
        ),
    ] = False,
    due_within: Annotated[
        int | None,
        Opt(
            "--due-within",
            help=f"Only cases due within N working days (0-{MAX_DUE_WITHIN}), on "
            "each deadline's calendar; with the working days left.",
        ),
    ] = None,
    sort: Annotated[str | None, Opt("--sort", help=f"Order: {', '.join(SORTS)} (default opened).")] = None,
    limit: Annotated[int | None, Opt("--limit", help=f"One page of at most N cases (1-{MAX_PAGE}).")] = None,
    cursor: Annotated[str | None, Opt("--cursor", help="The next page: the cursor the last page printed.")] = None,
    bsn_stdin: BsnStdin = False,
    db: Db = None,
    as_json: Json = False,
    lang: Lang = None,
) -> None:
    """List cases, oldest first; filter, sort and page them (work lists); with --bsn-stdin, the
    cases opened with that BSN."""
    w = words(lang)
    with guard(as_json), open_service(db) as service:
        if mine:
            me = actor_of(None, "coordinator", None).id
            if assignee is not None and assignee != me:
                raise ValidationError("--mine", "lists your own cases: give it without --assignee")
            assignee = me
        query = WorkListQuery(
            patient_ref=patient_ref, state=state, route=route, provider=provider, organisation=org,
            assignee=assignee, updated_since=instant(updated_since, "--updated-since"), overdue=overdue,
            due_within=due_within, sort=sort, limit=limit, cursor=cursor,
        )  # fmt: skip
        if bsn_stdin:
            asked = {k for k, v in query.__dict__.items() if v not in (None, False)} - {"state", "organisation"}
            if asked:
                raise ValidationError("--bsn-stdin", "combines with --state and --org only")
            found = [c for c in service.find_by_bsn(bsn_from_stdin(), state) if org in (None, c.organisation)]
            emit(as_json, [render.case_json(c, service.definition) for c in found],
                 lambda: render.cases_table(found, w))  # fmt: skip
            return
        due = overdue or due_within is not None or (sort or "").lstrip("-") == "due"
        if limit is None and cursor is None:
            rows = every_row(service, query)
            emit(as_json, [row_json(r, service, due) for r in rows], lambda: worklist_table(rows, due, w))
            return
        page = service.worklist(query)
        if as_json:
            print_json({"cases": [row_json(r, service, due) for r in page.rows], "next_cursor": page.next_cursor})
            return
        out.print(worklist_table(page.rows, due, w))
        if page.next_cursor is not None:
            out.print(w.t("next page: --cursor %(cursor)s") % {"cursor": page.next_cursor}, markup=False)


def every_row(service: CaseService, query: WorkListQuery) -> list[Row]:
    rows: list[Row] = []
    query = replace(query, limit=MAX_PAGE)
    while True:
        page: Page = service.worklist(query)
        rows += page.rows
        if page.next_cursor is None:
            return rows
        query = replace(query, cursor=page.next_cursor)


def row_json(row: Row, service: CaseService, due: bool) -> dict[str, Any]:
    """A case as ``cases --json`` always printed it; on a due list (overdue, due within, sorted by
    due) with its ``worklist`` entry: due moment, deadline, working days late or left."""
    found = render.case_json(row.case, service.definition)
    return {**found, "worklist": row.as_dict()} if due else found


def worklist_table(rows: list[Row], due: bool, w: Words) -> Any:
    """The cases table; on a due list with the due moment and the working days late or left."""
    if not due:
        return render.cases_table([r.case for r in rows], w)
    table = render.new_table(title=w.t("Cases"), caption=w.t("times in Europe/Amsterdam"))
    render.case_columns(table, w)
    table.add_column(w.t("due"))
    table.add_column(w.t("working days"))
    for r in rows:
        late, left = r.working_days_late, r.working_days_left
        days = (w.t("%(days)s late") % {"days": late} if late is not None
                else w.t("%(days)s left") % {"days": left} if left is not None else "-")  # fmt: skip
        table.add_row(*render.case_cells(r.case, w), w.when(r.due_at), days)
    return table


def no_case_for(value: str) -> UnknownCase:
    """``show X``: X is neither a case id nor the patient reference of a case."""
    unknown = UnknownCase(value)
    unknown.args = (f"unknown case {value!r}, and no case has it as patient reference",)
    return unknown


def show_command(
    case: Annotated[str, typer.Argument(help="Case id, or a patient reference (its cases).")],
    db: Db = None,
    as_json: Json = False,
    lang: Lang = None,
) -> None:
    """Show one case and the events allowed in its state; given a patient reference, the case
    opened under it (several: the list of them)."""
    w = words(lang)
    with guard(as_json), open_service(db) as service:
        try:
            found = service.case(case)
        except UnknownCase:
            if not inputs.IDENTIFIER.fullmatch(case) or contains_bsn(case):
                raise  # not a patient reference either (a BSN never is one): as an unknown case
            rows = every_row(service, WorkListQuery(patient_ref=case))
            if not rows:
                raise no_case_for(case) from None
            if len(rows) > 1:
                emit(as_json, [row_json(r, service, False) for r in rows],
                     lambda: worklist_table(rows, False, w))  # fmt: skip
                return
            found = rows[0].case
        deadlines = service.deadlines_of(found.id)
        emit(
            as_json,
            render.case_json(found, service.definition, deadlines),
            lambda: views.case_table(found, service.definition, deadlines, w),
        )
