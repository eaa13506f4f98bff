"""The ``audit verify`` and ``audit export`` commands (registered in :mod:`second_opinion.cli.root`)."""

from __future__ import annotations

import re
import sys
from datetime import datetime, time
from enum import StrEnum
from typing import Annotated

import typer

from workflow.clock import AMSTERDAM, parse_instant
from workflow.errors import ValidationError

from .. import render
from .common import Db, Json, Lang, err, guard, open_service, out, print_json, words


def verify_command(
    case: Annotated[str | None, typer.Option("--case", help="Verify one case only.")] = None,
    db: Db = None,
    as_json: Json = False,
    lang: Lang = None,
) -> None:
    """Recompute every hash chain and replay every case; exit 1 naming the first bad record."""
    w = words(lang)
    with guard(as_json), open_service(db) as service:
        report = service.verify(case)
    if as_json:
        print_json(render.verify_json(report))
    elif report.ok:
        out.print(w.t("audit trail verified: %(cases)s case(s), %(records)s record(s), no problems") % {
            "cases": report.cases, "records": report.records}, markup=False)  # fmt: skip
    for finding in report.findings:
        err.print(w.t("audit verification FAILED: %(finding)s") % {"finding": finding}, markup=False)
    if not report.ok:
        raise typer.Exit(1)


class ExportFormat(StrEnum):
    jsonl = "jsonl"
    csv = "csv"


def export_command(
    format: Annotated[ExportFormat, typer.Option("--format", help="jsonl or csv.")] = ExportFormat.jsonl,
    since: Annotated[
        str | None, typer.Option(help="Only records stored from this date (Amsterdam) or instant.")
    ] = None,
    after: Annotated[
        int | None,
        typer.Option(
            "--after", min=0, help="Only records after this sequence: the cursor the previous export printed."
        ),
    ] = None,
    db: Db = None,
) -> None:
    """Write audit records, in storage order, to stdout; with --after or --since, the cursor of the
    next export to stderr."""
    with guard(), open_service(db) as service:
        records = service.export(since_instant(since), after)
        text = render.export_csv(records) if format is ExportFormat.csv else render.export_jsonl(records)
    sys.stdout.write(text)
    cursor = render.next_after(records, after)
    if (after is not None or since is not None) and cursor is not None:  # an incremental pull (start: --after 0)
        err.print(f"next: --after {cursor}", markup=False)


def since_instant(text: str | None) -> datetime | None:
    if text is None:
        return None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            return datetime.combine(datetime.fromisoformat(text).date(), time(0), AMSTERDAM)
        except ValueError:
            raise ValidationError("--since", f"{text!r} is not a calendar date") from None
    return parse_instant(text, "--since")
