"""The ``calendar``, ``deadlines`` and ``outbox`` commands (see docs/deadlines.md); registered in
:mod:`second_opinion.cli.root`. The worker is in :mod:`second_opinion.cli.serve`.

Same conventions as every command: user errors print one line on stderr and exit 1.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Annotated

import typer

from workflow.clock import AMSTERDAM, parse_instant
from workflow.deadlines.calendars import (
    CALENDARS,
    DEFAULT_CALENDAR,
    Calendar,
    Count,
    add_working_days,
    calendar_named,
    working_days_between,
)
from workflow.errors import ValidationError
from workflow.service import inputs

from .. import render
from ..bootstrap import connect_deadlines, load_closures
from .common import Db, Json, Lang, emit, guard, open_service, out, print_json, words
from .progress import progress_bar

CalendarName = Annotated[str, typer.Option("--calendar", help=f"One of: {', '.join(CALENDARS)}.")]
Organisation = Annotated[str | None, typer.Option("--organisation", help="Layer this organisation's closures.")]
Closures = Annotated[str | None, typer.Option("--closures", help="JSON file of organisation closure days.")]
Explain = Annotated[bool, typer.Option("--explain", help="List every skipped day with its reason.")]


def parse_date(text: str, what: str) -> date:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
        raise ValidationError(what, f"{text!r} is not a date in the form YYYY-MM-DD")
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(what, f"{text!r} is not a calendar date") from None


def calendar_of(name: str, organisation: str | None, closures: str | None) -> Calendar:
    if closures and not organisation:
        raise ValidationError("--organisation", "--closures needs --organisation to say whose closures apply")
    if organisation:  # checked as --org is: it is echoed in the answer (calendar 'nl-atw+<organisation>')
        inputs.check_id("--organisation", organisation)
    return calendar_named(name, organisation or None, load_closures(closures, "--closures") if closures else ())


def add_command(
    start: Annotated[str, typer.Argument(help="Day 0 (YYYY-MM-DD); it never counts itself.")],
    days: Annotated[str, typer.Argument(help="How many working days to add (0-2000).")],
    calendar: CalendarName = DEFAULT_CALENDAR,
    organisation: Organisation = None,
    closures: Closures = None,
    explain: Explain = False,
    as_json: Json = False,
) -> None:
    """Print the date that is DAYS working days after START."""
    with guard(as_json):
        if not re.fullmatch(r"\d+", days.strip()):
            raise ValidationError("working days", f"{days!r} must be a whole number from 0 to 2000")
        count = add_working_days(calendar_of(calendar, organisation, closures), parse_date(start, "START"), int(days))
        print_count(count.end.isoformat(), count, explain, as_json)


def between_command(
    start: Annotated[str, typer.Argument(help="From (YYYY-MM-DD), not counted.")],
    end: Annotated[str, typer.Argument(help="To (YYYY-MM-DD), counted.")],
    calendar: CalendarName = DEFAULT_CALENDAR,
    organisation: Organisation = None,
    closures: Closures = None,
    explain: Explain = False,
    as_json: Json = False,
) -> None:
    """Print how many working days lie after FROM up to and including TO."""
    with guard(as_json):
        cal = calendar_of(calendar, organisation, closures)
        count = working_days_between(cal, parse_date(start, "FROM"), parse_date(end, "TO"))
        print_count(str(count.working_days), count, explain, as_json)


def print_count(answer: str, count: Count, explain: bool, as_json: bool) -> None:
    if as_json:
        print_json(count.as_dict())
        return
    print(answer)
    if explain:
        for line in count.lines():
            print(line)
    else:
        for warning in count.warnings:
            typer.echo(f"warning: {warning}", err=True)


def due_before_instant(text: str | None) -> datetime | None:
    if text is None:
        return None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return datetime.combine(parse_date(text, "--due-before"), time(0), AMSTERDAM)
    return parse_instant(text, "--due-before")


def deadlines_command(
    ctx: typer.Context,
    overdue: Annotated[
        bool,
        typer.Option(
            "--overdue",
            help="Only deadlines past their due moment and not stopped (running or "
            "breached), with the working days late.",
        ),
    ] = False,
    due_within: Annotated[
        int | None,
        typer.Option(
            "--due-within",
            help="Only running deadlines due within N working days (on their "
            "own calendar), with the working days left.",
        ),
    ] = None,
    due_before: Annotated[
        str | None, typer.Option("--due-before", help="Only those due before this date (Amsterdam) or instant.")
    ] = None,
    db: Db = None,
    as_json: Json = False,
    lang: Lang = None,
) -> None:
    """List deadlines by due moment."""
    if ctx.invoked_subcommand is not None:
        return
    w = words(lang)
    with guard(as_json), open_service(db) as service:
        before = due_before_instant(due_before)
        if overdue or due_within is not None:
            rows = service.worklists.deadlines(overdue=overdue, due_within=due_within, due_before=before)
            data = [{**d.as_dict(), "working_days_late": late, "working_days_left": left} for d, late, left in rows]
            emit(as_json, data, lambda: render.deadlines_table([d for d, _, _ in rows], w))
            return
        found = connect_deadlines(service).deadlines(due_before=before)
        emit(as_json, [d.as_dict() for d in found], lambda: render.deadlines_table(found, w))


def recompute_command(db: Db = None, as_json: Json = False, lang: Lang = None) -> None:
    """Recompute running deadlines with this release's calendar data; every change is audited."""
    w = words(lang)
    with guard(as_json), open_service(db) as service:
        with progress_bar("recomputing", "cases", as_json) as progress:
            changes = connect_deadlines(service).recompute(progress)
        human = "\n".join(f"{c['deadline']}: {c['old_due_at']} -> {c['new_due_at']}" for c in changes)
        emit(as_json, changes, human or w.t("no deadline changed"))


def outbox_command(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option("--status", help="pending, delivered or dead.")] = None,
    db: Db = None,
    as_json: Json = False,
    lang: Lang = None,
) -> None:
    """List notifications with their delivery state."""
    if ctx.invoked_subcommand is not None:
        return
    w = words(lang)
    with guard(as_json), open_service(db) as service:
        found = connect_deadlines(service).notifications(status)
        emit(as_json, [render.notification_json(n) for n in found], lambda: render.outbox_table(found, w))


def retry_command(notification: int, db: Db = None, lang: Lang = None) -> None:
    """Re-queue a dead-lettered notification."""
    w = words(lang)
    with guard(), open_service(db) as service:
        again = connect_deadlines(service).retry(notification)
        out.print(w.t("notification %(id)s queued again") % {"id": again.id})
