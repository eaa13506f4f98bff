"""The case commands: ``init``, ``open``, ``fire``, ``show``, ``cases``, ``history``, and the ones
that need no database: ``diagram``, ``coverage``, ``providers``; and ``demo``.

Every command is a thin shell over :class:`~workflow.service.cases.CaseService`: parse, call, print.
They are registered in :mod:`second_opinion.cli.root`.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from workflow.cases.case import DEFAULT_ORGANISATION
from workflow.cases.definitions import DEFINITION
from workflow.coverage.rules import decide_all, decide_coverage, policy_ids
from workflow.service.inputs import check_route

from .. import render, views
from ..bootstrap import connect, database_url, init, provider_contacts_from_env
from .common import (
    ActorId,
    BsnStdin,
    Db,
    Json,
    Key,
    Lang,
    Occurred,
    OnBehalf,
    Org,
    Role,
    actor_of,
    bsn_from_stdin,
    emit,
    guard,
    json_object,
    name_from_stdin,
    occurred,
    open_service,
    out,
    print_json,
    words,
)
from .next_steps import print_verdict
from .progress import progress_bar

EVENTS_HELP = "\n\n".join(f"{e.name}: {e.description}" for e in DEFINITION.events)
FIRE_HELP = f"Fire EVENT on case CASE.\n\nEvents (from the definition table):\n\n{EVENTS_HELP}"


def init_command(db: Db = None, lang: Lang = None) -> None:
    """Create the database schema, or upgrade it to this version's."""
    from storage.db import redact as redact_url

    w = words(lang)
    with guard(), progress_bar("migrating", "migrations") as progress:
        revision = init(db, progress)
        out.print(w.t("initialised %(url)s at schema revision %(revision)s") % {
            "url": redact_url(database_url(db)), "revision": revision}, markup=False)  # fmt: skip


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
    provider: Annotated[
        str | None,
        typer.Option(
            "--provider",
            help="The provider the patient chose, when known (`second-opinion providers --route ROUTE` lists "
            "them); a route one provider serves implies it. Later: fire choose_provider.",
        ),
    ] = None,
    db: Db = None,
    as_json: Json = False,
) -> None:
    """Open a case in state 'requested'; prints the case id."""
    with guard(as_json), open_service(db) as service:
        bsn = bsn_from_stdin() if bsn_stdin else None  # the BSN's line comes first
        receipt = service.open_case(
            patient_ref,
            actor=actor_of(actor, role, on_behalf_of),
            route=route,
            occurred_at=occurred(occurred_at),
            idempotency_key=idempotency_key,
            bsn=bsn,
            organisation=org,
            patient_name=name_from_stdin() if patient_name_stdin else None,
            provider=provider,
        )
        emit(as_json, receipt.as_dict(), receipt.case_id)


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
    check: Annotated[
        bool, typer.Option("--check", help="Print what fire would decide (exit 1 if refused); write nothing.")
    ] = False,
    lang: Lang = None,
) -> None:
    w = words(lang)
    with guard(as_json), open_service(db) as service:
        payload = json_object(data)
        if check:
            verdict = service.check(
                case, event, actor=actor_of(actor, role, on_behalf_of), reason=reason, data=payload,
                expect_version=expect_version, occurred_at=occurred(occurred_at), idempotency_key=idempotency_key,
            )  # fmt: skip
            print_verdict(verdict, as_json, w)
            return
        receipt = service.fire(
            case,
            event,
            actor=actor_of(actor, role, on_behalf_of),
            reason=reason,
            data=payload,
            expect_version=expect_version,
            occurred_at=occurred(occurred_at),
            idempotency_key=idempotency_key,
        )
        note = w.t(" (replayed: nothing new written)") if receipt.replayed else ""
        human = w.t("%(case)s: %(from)s -> %(to)s (version %(version)s)") % {
            "case": receipt.case_id, "from": w.state(receipt.from_state), "to": w.state(receipt.to_state),
            "version": receipt.version}  # fmt: skip
        emit(as_json, receipt.as_dict(), human + note)


def history_command(case: str, db: Db = None, as_json: Json = False, lang: Lang = None) -> None:
    """Every command on a case, accepted or refused, from its audit trail."""
    w = words(lang)
    with guard(as_json), open_service(db) as service:
        records = service.history(case)
        emit(as_json, [render.record_json(r) for r in records], lambda: render.history_table(case, records, w))


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
        from ..api.docs import api_markdown  # the web stack loads only for this page

        with connect("memory://") as service:
            sys.stdout.write(api_markdown(service))
        return
    from workflow.docs import deadlines_markdown, domain_markdown, mermaid, states_markdown

    if deadlines:
        sys.stdout.write(deadlines_markdown())
        return
    sys.stdout.write(domain_markdown() if domain else states_markdown() if markdown else mermaid())


def coverage_command(
    facts: Annotated[str, typer.Option("--facts", help="The stated facts as a JSON object (see docs/domain.md).")],
    policy: Annotated[
        str | None, typer.Option("--policy", help=f"One of: {', '.join(policy_ids())}; default: all of them.")
    ] = None,
    as_json: Json = False,
    lang: Lang = None,
) -> None:
    """Decide whether a second opinion is covered, rule by rule with the seed of each rule."""
    w = words(lang)
    with guard(as_json):
        stated = json_object(facts, "--facts")
        decisions = [decide_coverage(stated, policy)] if policy else decide_all(stated)
    if as_json:
        data = decisions[0].as_dict() if policy else [d.as_dict() for d in decisions]
        print_json(data)
        return
    for decision in decisions:
        out.print(views.coverage_table(decision, w))


def providers_command(
    route: Annotated[
        str | None, typer.Option("--route", help=f"Only those serving this route: {', '.join(DEFINITION.route_names)}.")
    ] = None,
    as_json: Json = False,
    lang: Lang = None,
) -> None:
    """The providers a patient may choose (newest version of each): checklist, whether the patient is seen,
    the costs-team rule and contact values (the operator's, from $SECOND_OPINION_PROVIDER_CONTACTS, else the
    seed's). Needs no database."""
    w = words(lang)
    with guard(as_json):
        contacts = provider_contacts_from_env(providers=DEFINITION.providers)
        if route is not None:
            check_route(DEFINITION, route)
        listed = render.providers_json(DEFINITION, contacts, route)
    emit(as_json, listed, lambda: views.providers_view(listed, w))


def demo_command(db: Db = None) -> None:
    """Initialise the database and walk a few cases through the life cycle."""
    from ..demo import run_demo

    with guard():
        raise typer.Exit(run_demo(database_url(db), out.console))
