"""The ``second-opinion`` command line.

Every command is a thin shell over :class:`~workflow.service.cases.CaseService`: parse, call, print.
User errors (anything derived from :class:`~workflow.errors.SecondOpinionError`) print one line
on stderr, no traceback, and exit 1; under ``--json`` stdout also gets ``{"error": {...}}`` so
scripts can parse every outcome. Exit 2 is reserved for command-line usage errors.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, time
from enum import StrEnum
from typing import Annotated, Any, NoReturn

import typer
import typer.core
from rich.console import Console

from storage import DEFAULT_URL
from storage.db import redact as redact_url
from workflow.cases.case import DEFAULT_ORGANISATION, Actor
from workflow.cases.definitions import DEFINITION
from workflow.clock import AMSTERDAM, parse_instant
from workflow.coverage.rules import decide_all, decide_coverage, policy_ids
from workflow.docs import deadlines_markdown, domain_markdown, mermaid, states_markdown
from workflow.errors import SecondOpinionError, StorageUnavailable, ValidationError, first_line
from workflow.privacy import redact
from workflow.service.cases import CaseService

from . import render
from .bootstrap import ENV_DB, connect, database_url, init

# Piped output has no terminal width; rich would assume 80 columns and truncate ids and states.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # one error, one line: never wrapped


class _Commands(typer.core.TyperGroup):
    """The top-level group. Usage errors (exit 2: a bad choice, an unknown command, an extra
    argument) quote what was typed and are printed by click, not by :func:`_guard`; a BSN in them
    is masked here. Every subcommand's arguments are parsed inside this group's ``invoke``."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        with _masked_usage():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: Any) -> Any:
        with _masked_usage():
            return super().invoke(ctx)


_USAGE_ERROR: type[Any] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
"""click's UsageError, which recent typer versions vendor (typer._click): found through the public
BadParameter, its subclass, so either kind of typer is served."""


@contextmanager
def _masked_usage() -> Iterator[None]:
    try:
        yield
    except _USAGE_ERROR as exc:
        exc.message = redact(exc.message)
        raise


app = typer.Typer(
    cls=_Commands,
    name="second-opinion",
    help="Run Dutch second-opinion cases as persisted state machines with a verifiable audit trail.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
audit_app = typer.Typer(help="Verify and export the audit trail.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")

_EVENTS_HELP = "\n\n".join(f"{e.name}: {e.description}" for e in DEFINITION.events)

Db = Annotated[str | None, typer.Option("--db", help=f"Database URL (default ${ENV_DB} or {DEFAULT_URL}).")]
Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
ActorId = Annotated[
    str | None, typer.Option("--actor", help="Who acts (default $SECOND_OPINION_ACTOR or user:<login>).")
]
Role = Annotated[
    str,
    typer.Option(
        "--role", envvar="SECOND_OPINION_ROLE", help=f"Role of the actor: {', '.join(DEFINITION.role_names)}."
    ),
]
OnBehalf = Annotated[str | None, typer.Option("--on-behalf-of", help="Whom the actor acts for.")]
Key = Annotated[
    str | None, typer.Option("--idempotency-key", help="Retry-safe key: a repeat returns the first result.")
]
BsnStdin = Annotated[
    bool,
    typer.Option("--bsn-stdin", help="Read the patient's BSN from stdin (never pass it as an argument)."),
]
Org = Annotated[
    str, typer.Option("--org", envvar="SECOND_OPINION_ORG", help="The organisation that owns the case.")
]
Occurred = Annotated[
    str | None, typer.Option("--occurred-at", help="When it happened (ISO 8601 with offset); default now.")
]


@contextmanager
def _guard(as_json: bool = False) -> Iterator[None]:
    try:
        yield
    except SecondOpinionError as exc:
        _fail(type(exc).__name__, str(exc), as_json)
    except StorageUnavailable as exc:  # any other StorageError is a bug: it propagates
        first = first_line(exc)
        _fail("StorageUnavailable", f"the database could not be reached ({first}); try again", as_json)


def _fail(kind: str, text: str, as_json: bool) -> NoReturn:
    message = _one_line(redact(text))  # errors may quote what was typed; never a BSN
    if as_json:
        _print_json({"error": {"type": kind, "message": message}})
    err.print(f"error: {message}", markup=False)
    raise typer.Exit(1) from None


def _one_line(message: str) -> str:
    """The last defence of "one error, one line": messages quote typed values with repr(), but a
    line break or a byte that is not UTF-8 (a lone surrogate) that still slips through is escaped,
    so it can neither split the line nor crash the output."""
    message = message.replace("\r", "\\r").replace("\n", "\\n")
    return message.encode("utf-8", "backslashreplace").decode("utf-8")


def _print_json(data: Any) -> None:
    """JSON goes straight to stdout: rich would wrap long lines, breaking strings in two."""
    sys.stdout.write(render.dumps(data) + "\n")


def _actor(actor: str | None, role: str, on_behalf_of: str | None) -> Actor:
    if actor is None:
        actor = os.environ.get("SECOND_OPINION_ACTOR") or "user:" + re.sub(r"[^A-Za-z0-9._-]", "_", getpass.getuser())
    return Actor(actor, role, on_behalf_of)


def _occurred(text: str | None) -> datetime | None:
    return parse_instant(text, "--occurred-at") if text else None


def _emit(as_json: bool, data: Any, human: Any) -> None:
    if as_json:
        _print_json(data)
    else:
        out.print(human)


def _service(db: str | None) -> CaseService:
    return connect(db)


@app.command("init")
def init_command(db: Db = None) -> None:
    """Create the database schema, or upgrade it to this version's."""
    with _guard():
        revision = init(db)
        out.print(f"initialised {redact_url(database_url(db))} at schema revision {revision}", markup=False)


@app.command("open")
def open_command(
    patient_ref: Annotated[
        str, typer.Option("--patient-ref", help="Pseudonymous patient reference (never a name or BSN).")
    ],
    route: Annotated[str, typer.Option(help=f"Route: {', '.join(DEFINITION.route_names)}.")] = "domestic",
    actor: ActorId = None,
    role: Role = "coordinator",
    on_behalf_of: OnBehalf = None,
    occurred_at: Occurred = None,
    idempotency_key: Key = None,
    bsn_stdin: BsnStdin = False,
    patient_name_stdin: Annotated[
        bool,
        typer.Option(
            "--patient-name-stdin",
            help="Read the patient's name from stdin (the line after the BSN with --bsn-stdin); kept only as "
            "keyed hashes of its words, so that the name is refused wherever it is typed about the case.",
        ),
    ] = False,
    org: Org = DEFAULT_ORGANISATION,
    db: Db = None,
    as_json: Json = False,
) -> None:
    """Open a case in state 'requested'; prints the case id."""
    with _guard(as_json), _service(db) as service:
        bsn = _bsn_from_stdin() if bsn_stdin else None  # the BSN's line comes first
        receipt = service.open_case(
            patient_ref,
            actor=_actor(actor, role, on_behalf_of),
            route=route,
            occurred_at=_occurred(occurred_at),
            idempotency_key=idempotency_key,
            bsn=bsn,
            organisation=org,
            patient_name=_name_from_stdin() if patient_name_stdin else None,
        )
        _emit(as_json, receipt.as_dict(), receipt.case_id)


@app.command("fire", help=f"Fire EVENT on case CASE.\n\nEvents (from the definition table):\n\n{_EVENTS_HELP}")
def fire_command(
    case: Annotated[str, typer.Argument(help="Case id.")],
    event: Annotated[str, typer.Argument(help=f"One of: {', '.join(DEFINITION.event_names)}.")],
    reason: Annotated[str | None, typer.Option(help="Reason (required for withdraw and decline).")] = None,
    data: Annotated[str | None, typer.Option(help="Event data as a JSON object.")] = None,
    expect_version: Annotated[int | None, typer.Option(help="Refuse unless the case is at this version.")] = None,
    actor: ActorId = None,
    role: Role = "coordinator",
    on_behalf_of: OnBehalf = None,
    occurred_at: Occurred = None,
    idempotency_key: Key = None,
    db: Db = None,
    as_json: Json = False,
) -> None:
    with _guard(as_json), _service(db) as service:
        payload = _json_object(data)
        receipt = service.fire(
            case,
            event,
            actor=_actor(actor, role, on_behalf_of),
            reason=reason,
            data=payload,
            expect_version=expect_version,
            occurred_at=_occurred(occurred_at),
            idempotency_key=idempotency_key,
        )
        note = " (replayed: nothing new written)" if receipt.replayed else ""
        _emit(
            as_json,
            receipt.as_dict(),
            f"{receipt.case_id}: {receipt.from_state} -> {receipt.to_state} (version {receipt.version}){note}",
        )


@app.command("show")
def show_command(case: str, db: Db = None, as_json: Json = False) -> None:
    """Show one case and the events allowed in its state."""
    with _guard(as_json), _service(db) as service:
        found = service.case(case)
        deadlines = service.deadlines_of(case)
        _emit(
            as_json,
            render.case_json(found, service.definition, deadlines),
            render.case_table(found, service.definition, deadlines),
        )


@app.command("cases")
def cases_command(
    state: Annotated[str | None, typer.Option(help="Only cases in this state.")] = None,
    org: Annotated[str | None, typer.Option("--org", help="Only cases of this organisation.")] = None,
    bsn_stdin: BsnStdin = False,
    db: Db = None,
    as_json: Json = False,
) -> None:
    """List cases, oldest first; with --bsn-stdin, the cases opened with that BSN."""
    with _guard(as_json), _service(db) as service:
        if bsn_stdin:
            found = [c for c in service.find_by_bsn(_bsn_from_stdin(), state) if org in (None, c.organisation)]
        else:
            found = service.cases(state, org)
        _emit(as_json, [render.case_json(c, service.definition) for c in found], render.cases_table(found))


@app.command("history")
def history_command(case: str, db: Db = None, as_json: Json = False) -> None:
    """Every command on a case, accepted or refused, from its audit trail."""
    with _guard(as_json), _service(db) as service:
        records = service.history(case)
        _emit(as_json, [render.record_json(r) for r in records], render.history_table(case, records))


@audit_app.command("verify")
def verify_command(
    case: Annotated[str | None, typer.Option("--case", help="Verify one case only.")] = None,
    db: Db = None,
    as_json: Json = False,
) -> None:
    """Recompute every hash chain and replay every case; exit 1 naming the first bad record."""
    with _guard(as_json), _service(db) as service:
        report = service.verify(case)
    if as_json:
        _print_json(render.verify_json(report))
    elif report.ok:
        out.print(
            f"audit trail verified: {report.cases} case(s), {report.records} record(s), no problems", markup=False
        )
    for finding in report.findings:
        err.print(f"audit verification FAILED: {finding}", markup=False)
    if not report.ok:
        raise typer.Exit(1)


class ExportFormat(StrEnum):
    jsonl = "jsonl"
    csv = "csv"


@audit_app.command("export")
def export_command(
    format: Annotated[ExportFormat, typer.Option("--format", help="jsonl or csv.")] = ExportFormat.jsonl,
    since: Annotated[
        str | None, typer.Option(help="Only records stored from this date (Amsterdam) or instant.")
    ] = None,
    db: Db = None,
) -> None:
    """Write audit records, in storage order, to stdout."""
    with _guard(), _service(db) as service:
        records = service.export(_since(since))
        text = render.export_csv(records) if format is ExportFormat.csv else render.export_jsonl(records)
    sys.stdout.write(text)


@app.command("diagram")
def diagram_command(
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the whole docs/states.md instead.")] = False,
    domain: Annotated[bool, typer.Option("--domain", help="Print docs/domain.md (coverage rules, glossary).")] = False,
    deadlines: Annotated[
        bool, typer.Option("--deadlines", help="Print the generated section of docs/deadlines.md.")
    ] = False,
    api: Annotated[bool, typer.Option("--api", help="Print the generated section of docs/api.md.")] = False,
) -> None:
    """Print the state diagram (Mermaid), generated from the definition table."""
    if api:
        from .api.docs import api_markdown

        with connect("memory://") as service:
            sys.stdout.write(api_markdown(service))
        return
    if deadlines:
        sys.stdout.write(deadlines_markdown())
        return
    sys.stdout.write(domain_markdown() if domain else states_markdown() if markdown else mermaid())


@app.command("coverage")
def coverage_command(
    facts: Annotated[str, typer.Option("--facts", help="The stated facts as a JSON object (see docs/domain.md).")],
    policy: Annotated[
        str | None, typer.Option("--policy", help=f"One of: {', '.join(policy_ids())}; default: all of them.")
    ] = None,
    as_json: Json = False,
) -> None:
    """Decide whether a second opinion is covered, rule by rule with the seed of each rule."""
    with _guard(as_json):
        stated = _json_object(facts, "--facts")
        decisions = [decide_coverage(stated, policy)] if policy else decide_all(stated)
    if as_json:
        data = decisions[0].as_dict() if policy else [d.as_dict() for d in decisions]
        _print_json(data)
        return
    for decision in decisions:
        out.print(render.coverage_table(decision))


@app.command("demo")
def demo_command(db: Db = None) -> None:
    """Initialise the database and walk a few cases through the life cycle."""
    from .demo import run_demo

    with _guard():
        raise typer.Exit(run_demo(database_url(db), out))


def _json_object(text: str | None, option: str = "--data") -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(option, f"not valid JSON ({exc.msg} at position {exc.pos})") from None
    except RecursionError:  # the decoder recurses per level: "[[[[..." exhausts the stack before it fails
        raise ValidationError(option, "nests too deeply to be read") from None
    if not isinstance(value, dict):
        raise ValidationError(option, 'must be a JSON object such as \'{"key": "value"}\'')
    return value


def _bsn_from_stdin() -> str:
    try:
        line = sys.stdin.readline()
    except UnicodeDecodeError:
        raise ValidationError("BSN", "stdin is not UTF-8 text; a BSN is 9 digits") from None
    if not line.strip():
        raise ValidationError("BSN", "--bsn-stdin was given but stdin was empty")
    return line.strip()


def _name_from_stdin() -> str:
    try:
        line = sys.stdin.readline()
    except UnicodeDecodeError:
        raise ValidationError("patient name", "stdin is not UTF-8 text") from None
    if not line.strip():
        raise ValidationError("patient name", "--patient-name-stdin was given but stdin had no (further) line")
    return line.strip()


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            return datetime.combine(datetime.fromisoformat(text).date(), time(0), AMSTERDAM)
        except ValueError:
            raise ValidationError("--since", f"{text!r} is not a calendar date") from None
    return parse_instant(text, "--since")


def main() -> None:
    app()


from . import cli_bench, cli_deadlines, cli_serve, cli_tokens  # noqa: E402,F401  (register the command groups)
