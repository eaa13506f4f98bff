"""The ``audit verify`` and ``audit export`` commands (registered in :mod:`second_opinion.cli.root`)."""

from __future__ import annotations

import re
import sys
from datetime import datetime, time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from workflow.clock import AMSTERDAM, parse_instant
from workflow.errors import ValidationError

from .. import render
from .common import Db, Json, Lang, err, guard, open_service, out, print_json, words
from .progress import progress_bar
from .transparency import PublicKeys, read_text, verifiers, witness_dir


def verify_command(
    case: Annotated[str | None, typer.Option("--case", help="Verify one case only.")] = None,
    checkpoint: Annotated[list[Path] | None, typer.Option(
        "--checkpoint", help="A signed checkpoint kept outside the database: today's log must extend it.")] = None,
    witness: Annotated[Path | None, typer.Option(
        "--witness-dir", help="A witness directory the worker wrote (checkpoints and the leaves they cover).")] = None,
    public_key: PublicKeys = None,
    db: Db = None,
    as_json: Json = False,
    lang: Lang = None,
) -> None:
    """Recompute every hash chain and replay every case; with --checkpoint or --witness-dir, prove
    the transparency log extends each checkpoint; exit 1 naming the first bad record or position."""
    w = words(lang)
    with guard(as_json), open_service(db) as service:
        log = None
        if checkpoint or witness is not None:
            from workflow.audit.transparency import Leaf
            from workflow.service.transparency import LogService

            trusted = verifiers(public_key)
            notes = [(str(path), read_text(path, "--checkpoint")) for path in checkpoint or []]
            leaves: list[tuple[str, list[Leaf]]] = []
            if witness is not None:
                kept, leaves = witness_dir(witness)
                notes += kept
            log = LogService(service.runtime).verify(notes, trusted, trusted[0].name, leaves)
        with progress_bar("verifying", "cases", as_json) as progress:
            report = service.verify(case, progress)
    problems = log.problems if log is not None else []
    if as_json:
        data = render.verify_json(report)
        if log is not None:
            data["log"] = {"ok": log.ok, "size": log.size, "not_yet_logged": log.not_yet_logged,
                           "checkpoints": log.checkpoints, "problems": problems}  # fmt: skip
        print_json(data)
    else:
        if report.ok:
            out.print(w.t("audit trail verified: %(cases)s case(s), %(records)s record(s), no problems") % {
                "cases": report.cases, "records": report.records}, markup=False)  # fmt: skip
        if log is not None and log.ok:
            out.print(f"transparency log verified: {log.size} record(s), extending {log.checkpoints} checkpoint(s); "
                      f"{log.not_yet_logged} newer record(s) not yet logged", markup=False)  # fmt: skip
    for finding in report.findings:
        err.print(w.t("audit verification FAILED: %(finding)s") % {"finding": finding}, markup=False)
    for problem in problems:
        err.print(f"transparency log verification FAILED: {problem}", markup=False)
    if not report.ok or problems:
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
        with progress_bar("exporting", "records") as progress:
            records = service.export(since_instant(since), after, progress)
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
