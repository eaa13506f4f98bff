"""How cases and records look: stable JSON for programs, rich tables for people.

The JSON shapes here are a documented contract (``docs/cli.md``); timestamps in JSON are UTC
ISO 8601 with a ``Z``. Tables show the same instants in Europe/Amsterdam.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from workflow.audit.chain import AuditRecord, VerifyReport
from workflow.cases import insurer
from workflow.cases.case import Case
from workflow.cases.definitions import Definition
from workflow.cases.providers import ProviderVersion
from workflow.cases.rules import ALWAYS, DOCTOR_DECIDES, NEVER
from workflow.clock import local, utc_iso
from workflow.coverage.rules import COVERED, NOT_COVERED, PARTLY, CoverageDecision
from workflow.deadlines.policies import Deadline
from workflow.ports import Notification

if TYPE_CHECKING:
    from rich.console import Group
    from rich.table import Table

AUDIT_COLUMNS = (
    "sequence",
    "case_id",
    "seq",
    "event",
    "outcome",
    "from_state",
    "to_state",
    "actor_id",
    "actor_role",
    "on_behalf_of",
    "occurred_at",
    "recorded_at",
    "idempotency_key",
    "payload",
    "reason",
    "refusal",
    "prev_hash",
    "hash",
)


def shown(value: datetime) -> str:
    """Minutes in Europe/Amsterdam for tables (JSON and exports keep full UTC precision)."""
    return local(value).strftime("%Y-%m-%d %H:%M")


TIMES_NOTE = "times in Europe/Amsterdam"


def new_table(**options: Any) -> Table:
    """A rich table; rich loads with the first one, so a command printing JSON never loads it."""
    from rich.table import Table

    return Table(**options)


def case_json(case: Case, definition: Definition, deadlines: Iterable[Deadline] | None = None) -> dict[str, Any]:
    """A case as JSON; ``deadlines`` (given by ``show``, not by lists) adds its deadline clocks.
    ``provider``, ``coverage_outcome`` and ``self_paying`` sum up what ``facts`` records."""
    coverage = case.facts.get("coverage")
    return {
        "id": case.id,
        "patient_ref": case.patient_ref,
        "route": case.route,
        "organisation": case.organisation,
        "state": case.state,
        "version": case.version,
        "opened_at": utc_iso(case.opened_at),
        "updated_at": utc_iso(case.updated_at),
        "audit_count": case.audit_count,
        "audit_head": case.audit_head,
        "bsn_recorded": case.bsn_hash is not None,
        "facts": dict(case.facts),
        "provider": case_provider(case, definition),
        "coverage_outcome": coverage.get("outcome") if isinstance(coverage, Mapping) else None,
        "self_paying": bool(case.facts.get("self_paying")),
        "allowed_events": list(definition.events_from(case.state)),
        **({} if deadlines is None else {"deadlines": [d.as_dict() for d in deadlines]}),
    }


def case_provider(case: Case, definition: Definition) -> dict[str, Any] | None:
    """The provider the case recorded (id, the version of its rules, its name); None before one is
    chosen, and on cases opened before providers were (route version 1)."""
    chosen = case.facts.get("provider")
    if not isinstance(chosen, Mapping):
        return None
    found = definition.provider(str(chosen.get("id", "")), int(chosen.get("version", 0)))
    return {"id": chosen.get("id"), "version": chosen.get("version"), "name": found.name if found else None}


def record_json(record: AuditRecord) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column in AUDIT_COLUMNS:
        value = getattr(record, column)
        out[column] = utc_iso(value) if isinstance(value, datetime) else value
    out["payload"] = dict(record.payload)
    return out


def verify_json(report: VerifyReport) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "cases": report.cases,
        "records": report.records,
        "findings": [{"case_id": f.case_id, "seq": f.seq, "problem": f.problem} for f in report.findings],
    }


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


def cases_table(cases: Iterable[Case]) -> Table:
    table = new_table(title="Cases", caption=TIMES_NOTE)
    table.add_column("case", no_wrap=True)
    for column in ("patient ref", "route", "state", "v", "opened"):
        table.add_column(column)
    for case in cases:
        table.add_row(case.id, case.patient_ref, case.route, case.state, str(case.version), shown(case.opened_at))
    return table


def case_table(case: Case, definition: Definition, deadlines: Iterable[Deadline] = (),
               t: Callable[[str], str] = str) -> Table:  # fmt: skip
    """``show``'s table; ``t`` translates its labels (``show --lang``, :mod:`second_opinion.i18n`)."""
    table = new_table(title=t("Case %(id)s") % {"id": case.id}, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    allowed = ", ".join(definition.events_from(case.state)) or t("none (closed)")
    for field, value in (
        (t("patient ref"), case.patient_ref),
        (t("route"), case.route),
        (t("organisation"), case.organisation),
        (t("state"), case.state),
        (t("version"), str(case.version)),
        (t("opened"), shown(case.opened_at)),
        (t("last change"), shown(case.updated_at)),
        (t("audit records"), str(case.audit_count)),
        (t("allowed events"), allowed),
        *provider_lines(case, definition),
        *((f"fact: {key}", json.dumps(value, ensure_ascii=False))
          for key, value in sorted(case.facts.items()) if key not in ("coverage", "provider", "self_paying")),
        *coverage_lines(case.facts.get("coverage")),
        *self_paying_lines(case.facts.get("self_paying")),
        *deadline_lines(deadlines),
    ):
        table.add_row(field, value)
    return table


def provider_lines(case: Case, definition: Definition) -> list[tuple[str, str]]:
    """The case's provider as a row of ``show``: name, id and the version of its rules, who chose
    it when; on a route version with providers, "not chosen yet" until one is."""
    shown_provider = case_provider(case, definition)
    if shown_provider is None:
        route = definition.route(case.route, case.facts.get("route_version", 1))
        return [("provider", "not chosen yet (choose_provider)")] if route and route.uses_providers else []
    chosen = case.facts["provider"]
    line = f"{shown_provider['name'] or '?'} ({shown_provider['id']}, version {shown_provider['version']})"
    line += f", chosen by {chosen.get('by')} ({instant(chosen.get('at'))})" if chosen.get("by") else ""
    return [("provider", line)]


OUTCOME_TEXT = {COVERED: "covered", PARTLY: "partly covered", NOT_COVERED: "not covered"}


def self_paying_lines(self_paying: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """The mark of a case going ahead without a referral, the patient paying what decision #N does not."""
    if not self_paying:
        return []
    outcome = OUTCOME_TEXT.get(str(self_paying.get("outcome")), "not covered")
    return [("self-paying", f"yes: the patient pays what decision #{self_paying.get('decision')} ({outcome}) "
                            f"does not, by {self_paying.get('by')} ({instant(self_paying.get('at'))})")]  # fmt: skip


def instant(at: Any) -> str:
    """A recorded UTC instant (``...Z``) as a table shows it; "?" for anything else."""
    return shown(datetime.fromisoformat(at.replace("Z", "+00:00"))) if isinstance(at, str) else "?"


def coverage_lines(decision: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """The insurer's latest decision as rows of ``show``: outcome, each reason with its seed rule,
    and eigen risico only when it applies (saying nothing otherwise, as the issue asks)."""
    if not decision:
        return []
    head = f"#{decision.get('number')} {insurer.summary(decision)}, by {decision.get('decided_by')}"
    rows = [("coverage", f"{head} ({instant(decision.get('decided_at'))})")]
    for reason in decision.get("reasons", []):
        mark = "ok" if reason.get("passed") else "FAILS"
        rows.append(("coverage reason", f"{mark} {reason.get('rule')} (seed {reason.get('seed')})"))
    rows.append(("coverage facts", json.dumps(decision.get("facts", {}), ensure_ascii=False, sort_keys=True)))
    return rows


def history_table(case_id: str, records: Iterable[AuditRecord]) -> Table:
    table = new_table(title=f"History of case {case_id}", caption=TIMES_NOTE)
    for column in ("#", "occurred", "event", "outcome", "now in", "actor (role)", "reason / refusal"):
        table.add_column(column)
    for r in records:
        actor = f"{r.actor_id} ({r.actor_role})" + (f" for {r.on_behalf_of}" if r.on_behalf_of else "")
        table.add_row(
            str(r.seq), shown(r.occurred_at), r.event, r.outcome, r.to_state or "-", actor,
            r.refusal or r.reason or decision_note(r),
        )
    return table


def decision_note(record: AuditRecord) -> str:
    """What the history's last column says of an accepted decision: its outcome."""
    decided = record.payload.get("decision") if record.event == insurer.EVENT else None
    if record.outcome != "accepted" or not isinstance(decided, Mapping):
        return ""
    return insurer.summary({**decided, "policy": record.payload.get("policy")})


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""What a spreadsheet may read as the start of a formula (OWASP, CSV injection): a cell of an
export that starts with one of these is written with a single quote before it, and quoted, so
``=HYPERLINK("http://x","y")`` arrives as the text it was. Every cell, whatever its column: no
column of the export holds a negative number (sequences, versions and counts start at 1), so
the rule needs no exception, and a text that looks like one (``-2+3``) is escaped too."""


_AFTER_SEPARATOR = re.compile(r"([;\t])([=+\-@])")
"""A formula character right after another reader's list separator."""


def csv_field(value: Any) -> str:
    """One cell as the CSV export writes it: as :mod:`csv` would (quoted only when it holds a
    comma, a quote or a line break), except that a cell starting with :data:`FORMULA_START`
    gets a leading ``'`` and is always quoted. A spreadsheet set to another list separator (Dutch
    ones split on ``;``; some readers on tabs) ignores our quotes, so inside a cell a formula
    character right after a ``;`` or a tab gets the same ``'`` (``wish;=1+1`` is written
    ``wish;'=1+1``) and the cell is quoted (other cells holding a ``;`` are written as before):
    a reason ``x;=cmd|' /C calc'!A0;`` would otherwise open as a cell of its own holding a
    formula. The JSON Lines export keeps every byte.

    Written here rather than by :mod:`csv` because its writer cannot quote one cell and not the
    next (only every cell, or by its own rule), and exports must stay byte for byte as before
    for every cell that is not a risk."""
    text = "" if value is None else str(value)
    risky = text.startswith(FORMULA_START)
    if risky:
        text = "'" + text
    if ";" in text or "\t" in text:
        text, escaped = _AFTER_SEPARATOR.subn(r"\1'\2", text)
        risky = risky or escaped > 0
    if risky or any(ch in text for ch in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def export_csv(records: Iterable[AuditRecord]) -> str:
    """The audit records as CSV, safe to open in a spreadsheet (:func:`csv_field`); otherwise
    byte for byte what :mod:`csv` wrote (quotes where needed, ``\n`` line ends), but for a cell
    holding a carriage return, which :mod:`csv` with ``\n`` line ends left unquoted (a file no
    CSV reader could read back) and which is quoted now."""
    lines = [",".join(AUDIT_COLUMNS)]
    for record in records:
        row = record_json(record)
        row["payload"] = json.dumps(row["payload"], sort_keys=True, ensure_ascii=False)
        lines.append(",".join(csv_field(row[column]) for column in AUDIT_COLUMNS))
    return "".join(line + "\n" for line in lines)


def next_after(records: Sequence[AuditRecord], after: int | None) -> int | None:
    """The cursor of the next incremental export: the last sequence exported, else the one given
    (None when neither is known: nothing matched a ``--since`` alone)."""
    sequences = [r.sequence for r in records if r.sequence is not None]
    return max(sequences) if sequences else after


def export_jsonl(records: Iterable[AuditRecord]) -> str:
    return "".join(json.dumps(record_json(r), sort_keys=True, ensure_ascii=False) + "\n" for r in records)


def coverage_table(decision: CoverageDecision) -> Table:
    verdict = OUTCOME_TEXT.get(decision.outcome, "not covered").upper()
    deductible = "; deductible (eigen risico) applies" if decision.deductible_applies else ""
    caption = "\n".join([*decision.notes, "Never covered: " + "; ".join(decision.never_covered)])
    table = new_table(title=f"{decision.policy}, route {decision.route}: {verdict}{deductible}", caption=caption)
    for column in ("rule", "holds", "seed", "condition"):
        table.add_column(column)
    for check in decision.checks:
        table.add_row(check.rule, "yes" if check.passed else "NO", check.seed, check.description)
    return table


def newest_providers(definition: Definition, route: str | None = None) -> list[ProviderVersion]:
    """The newest version of each provider, in table order; only those serving ``route`` when given."""
    if route is not None:
        return list(definition.serving(route).values())
    newest: dict[str, ProviderVersion] = {}
    for p in definition.providers:
        if p.id not in newest or p.version > newest[p.id].version:
            newest[p.id] = p
    return list(newest.values())


def provider_json(provider: ProviderVersion, contacts: Mapping[str, str]) -> dict[str, Any]:
    """A provider's rules and contact values: the operator's (``contacts``), else the seed's, else null."""
    return {
        "id": provider.id, "version": provider.version, "name": provider.name, "description": provider.description,
        "routes": list(provider.routes), "consultation": provider.consultation,
        "costs_team_first": provider.costs_team_first, "source": provider.source,
        "checklist": [{"item": i.name, "description": i.description, "required_when": i.required_when,
                       "waivable": i.waivable, "source": i.source} for i in provider.checklist],
        "contacts": [{"field": f.name, "description": f.description,
                      "value": contacts.get(f.name, f.seed_value),
                      "value_from": "operator" if f.name in contacts else "seed" if f.seed_value else None}
                     for f in provider.contact_fields],
    }  # fmt: skip


def providers_json(
    definition: Definition, contacts: Mapping[str, Mapping[str, str]], route: str | None = None
) -> list[dict[str, Any]]:
    return [provider_json(p, contacts.get(p.id, {})) for p in newest_providers(definition, route)]


def providers_view(providers: Iterable[Mapping[str, Any]]) -> Group:
    """:func:`providers_json`'s rows for people: a table per provider, a line per checklist item and
    contact field. An operator's value is printed whole, as typed, never read as rich markup."""
    from rich.console import Group
    from rich.text import Text

    tables = []
    for p in providers:
        table = new_table(title=f"{p['name']} ({p['id']}, version {p['version']})", show_header=False,
                          title_justify="left")  # fmt: skip
        table.add_column("field", style="bold", no_wrap=True)
        table.add_column("value", overflow="fold")
        table.add_row("about", f"{p['description']} (seed {p['source']})")
        table.add_row("routes", ", ".join(p["routes"]))
        table.add_row("patient seen", CONSULTATION_TEXT.get(p["consultation"], p["consultation"]))
        table.add_row("costs team first", "yes (patients insured abroad)" if p["costs_team_first"] else "no")
        for i in p["checklist"]:
            when = f"when {i['required_when']}" if i["required_when"] else "always"
            waivable = "" if i["waivable"] else ", not waivable"
            table.add_row(f"item: {i['item']}", f"{when}{waivable}: {i['description']}")
        for c in p["contacts"]:
            value = c["value"] or "- (none known)"
            origin = {"operator": " (operator)", "seed": " (seed)"}.get(c["value_from"] or "", "")
            table.add_row(f"contact: {c['field']}", Text(f"{c['description']}: {value}{origin}"))
        tables.append(table)
    return Group(*tables)


CONSULTATION_TEXT = {ALWAYS: "always", DOCTOR_DECIDES: "when the doctor decides", NEVER: "never"}


def deadline_lines(deadlines: Iterable[Deadline]) -> list[tuple[str, str]]:
    rows = []
    for d in deadlines:
        due = shown(d.due_at) if d.due_at else "paused"
        rows.append((f"deadline: {d.policy}", f"{d.state}, due {due} ({d.calendar}, {d.working_days} working days)"))
    return rows


def deadlines_table(deadlines: Iterable[Deadline]) -> Table:
    table = new_table(title="Deadlines", caption=TIMES_NOTE)
    for column in ("case", "policy", "state", "due", "next action", "reminders sent", "calendar"):
        table.add_column(column)
    for d in deadlines:
        table.add_row(
            d.case_id, d.policy, d.state, shown(d.due_at) if d.due_at else "-",
            shown(d.next_action_at) if d.next_action_at else "-", str(d.reminders_sent), d.calendar,
        )  # fmt: skip
    return table


def notification_json(n: Notification) -> dict[str, Any]:
    return {
        "id": n.id, "key": n.key, "case_id": n.case_id, "kind": n.kind, "channel": n.channel, "target": n.target,
        "status": n.status, "attempts": n.attempts, "next_attempt_at": utc_iso(n.next_attempt_at),
        "last_error": n.last_error, "delivered_at": utc_iso(n.delivered_at) if n.delivered_at else None,
        "payload": n.payload,
    }  # fmt: skip


def outbox_table(notifications: Iterable[Notification]) -> Table:
    table = new_table(title="Outbox", caption=TIMES_NOTE)
    for column in ("id", "case", "kind", "channel", "status", "attempts", "next attempt", "last error"):
        table.add_column(column)
    for n in notifications:
        table.add_row(
            str(n.id), n.case_id, n.kind, n.channel, n.status, str(n.attempts), shown(n.next_attempt_at),
            n.last_error or "",
        )  # fmt: skip
    return table
