"""The ``calendar``, ``deadlines``, ``worker`` and ``outbox`` commands (see docs/deadlines.md).

Same conventions as :mod:`second_opinion.cli`: user errors print one line on stderr and exit 1.
"""

from __future__ import annotations

import logging
import re
from datetime import date, datetime, time
from typing import Annotated

import typer

from jobs import Delivery, Worker
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

from . import render
from .bootstrap import connect_deadlines, load_closures
from .cli import Db, Json, _emit, _guard, _print_json, _service, app, out

calendar_app = typer.Typer(help="Working-day arithmetic on the Dutch calendars.", no_args_is_help=True)
deadlines_app = typer.Typer(help="Deadlines: list them, or recompute them after calendar data changed.")
outbox_app = typer.Typer(help="Notifications waiting, delivered or dead-lettered.")
app.add_typer(calendar_app, name="calendar")
app.add_typer(deadlines_app, name="deadlines")
app.add_typer(outbox_app, name="outbox")

CalendarName = Annotated[str, typer.Option("--calendar", help=f"One of: {', '.join(CALENDARS)}.")]
Organisation = Annotated[str | None, typer.Option("--organisation", help="Layer this organisation's closures.")]
Closures = Annotated[str | None, typer.Option("--closures", help="JSON file of organisation closure days.")]
Explain = Annotated[bool, typer.Option("--explain", help="List every skipped day with its reason.")]


def _date(text: str, what: str) -> date:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
        raise ValidationError(what, f"{text!r} is not a date in the form YYYY-MM-DD")
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(what, f"{text!r} is not a calendar date") from None


def _calendar(name: str, organisation: str | None, closures: str | None) -> Calendar:
    if closures and not organisation:
        raise ValidationError("--organisation", "--closures needs --organisation to say whose closures apply")
    if organisation:  # checked as --org is: it is echoed in the answer (calendar 'nl-atw+<organisation>')
        inputs.check_id("--organisation", organisation)
    return calendar_named(name, organisation or None, load_closures(closures, "--closures") if closures else ())


@calendar_app.command("add-working-days")
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
    with _guard(as_json):
        if not re.fullmatch(r"\d+", days.strip()):
            raise ValidationError("working days", f"{days!r} must be a whole number from 0 to 2000")
        count = add_working_days(_calendar(calendar, organisation, closures), _date(start, "START"), int(days))
        _print_count(count.end.isoformat(), count, explain, as_json)


@calendar_app.command("working-days")
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
    with _guard(as_json):
        cal = _calendar(calendar, organisation, closures)
        count = working_days_between(cal, _date(start, "FROM"), _date(end, "TO"))
        _print_count(str(count.working_days), count, explain, as_json)


def _print_count(answer: str, count: Count, explain: bool, as_json: bool) -> None:
    if as_json:
        _print_json(count.as_dict())
        return
    print(answer)
    if explain:
        for line in count.lines():
            print(line)
    else:
        for warning in count.warnings:
            typer.echo(f"warning: {warning}", err=True)


def _due_before(text: str | None) -> datetime | None:
    if text is None:
        return None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return datetime.combine(_date(text, "--due-before"), time(0), AMSTERDAM)
    return parse_instant(text, "--due-before")


@deadlines_app.callback(invoke_without_command=True)
def deadlines_command(
    ctx: typer.Context,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only running deadlines past their due moment.")] = False,
    due_before: Annotated[
        str | None, typer.Option("--due-before", help="Only those due before this date (Amsterdam) or instant.")
    ] = None,
    db: Db = None,
    as_json: Json = False,
) -> None:
    """List deadlines by due moment."""
    if ctx.invoked_subcommand is not None:
        return
    with _guard(as_json), _service(db) as service:
        found = connect_deadlines(service).deadlines(overdue=overdue, due_before=_due_before(due_before))
        _emit(as_json, [d.as_dict() for d in found], render.deadlines_table(found))


@deadlines_app.command("recompute")
def recompute_command(db: Db = None, as_json: Json = False) -> None:
    """Recompute running deadlines with this release's calendar data; every change is audited."""
    with _guard(as_json), _service(db) as service:
        changes = connect_deadlines(service).recompute()
        human = "\n".join(f"{c['deadline']}: {c['old_due_at']} -> {c['new_due_at']}" for c in changes)
        _emit(as_json, changes, human or "no deadline changed")


@app.command("worker")
def worker_command(
    once: Annotated[bool, typer.Option("--once", help="One sweep and one delivery round, then exit.")] = False,
    interval: Annotated[float, typer.Option("--interval", min=1, max=86400, help="Seconds between sweeps.")] = 30,
    max_attempts: Annotated[
        int, typer.Option("--max-attempts", min=1, max=100, help="Webhook tries before dead-letter.")
    ] = 8,
    db: Db = None,
) -> None:
    """Run the deadline worker: sweep due reminders and breaches, deliver notifications."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    with _guard(), _service(db) as service:
        deadlines = connect_deadlines(service)
        delivery = Delivery(deadlines, max_attempts=max_attempts)
        worker = Worker(deadlines, delivery, interval)
        try:
            if once:
                swept, delivered = worker.tick()
                out.print(
                    f"swept {swept.cases} cases: {swept.reminders} reminders, {swept.breaches} breaches; "
                    f"delivered {delivered.delivered}, failed {delivered.failed}, dead {delivered.dead}"
                )
            else:
                worker.run()
        finally:
            delivery.close()


@outbox_app.callback(invoke_without_command=True)
def outbox_command(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option("--status", help="pending, delivered or dead.")] = None,
    db: Db = None,
    as_json: Json = False,
) -> None:
    """List notifications with their delivery state."""
    if ctx.invoked_subcommand is not None:
        return
    with _guard(as_json), _service(db) as service:
        found = connect_deadlines(service).notifications(status)
        _emit(as_json, [render.notification_json(n) for n in found], render.outbox_table(found))


@outbox_app.command("retry")
def retry_command(notification: int, db: Db = None) -> None:
    """Re-queue a dead-lettered notification."""
    with _guard(), _service(db) as service:
        again = connect_deadlines(service).retry(notification)
        out.print(f"notification {again.id} queued again")


