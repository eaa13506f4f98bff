"""How cases and records look: stable JSON for programs, rich tables for people.

The JSON shapes here are a documented contract (``docs/cli.md``); timestamps in JSON are UTC
ISO 8601 with a ``Z``, and they never change with the language. Tables show the same instants in
Europe/Amsterdam, in the words of ``--lang`` (a :class:`~second_opinion.labels.Words`; English
when none is given); one case's view (``show``) and the reference tables (``providers``,
``coverage``) are in :mod:`second_opinion.views`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from workflow.audit.chain import AuditRecord, VerifyReport
from workflow.cases import insurer
from workflow.cases.case import Case
from workflow.cases.definitions import Definition
from workflow.cases.providers import ProviderVersion
from workflow.clock import utc_iso
from workflow.coverage.rules import COVERED, PARTLY
from workflow.deadlines.policies import Deadline
from workflow.ports import Notification

from . import i18n
from .labels import Words

if TYPE_CHECKING:
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
CSV_COLUMNS = (*AUDIT_COLUMNS, "channel", "encoding")
"""The CSV export's header: the audit columns, then (issue 17, added at the end so that readers by
position keep working) the channel a record came through and the encoding its hash is taken in;
a record before issue 17 has an empty channel and encoding 1. JSON lines leave both out for such a
record, so that its line reads as it always did."""


def shown(value: datetime) -> str:
    """Minutes in Europe/Amsterdam as English tables show them (JSON and exports keep full UTC
    precision); a table in the words of ``--lang`` uses :meth:`~second_opinion.labels.Words.when`."""
    return i18n.format_minutes(value, "en")


TIMES_NOTE = "times in Europe/Amsterdam"
"""Every table's caption, in English (the catalogue's message id)."""


def N_(text: str) -> str:
    """Marks a message for the catalogue that is translated where it is shown (``w.t(value)``)."""
    return text


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
    if record.encoding >= 2:  # records before issue 17 read exactly as they did
        out["channel"], out["encoding"] = record.channel, record.encoding
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


def case_columns(table: Table, w: Words) -> None:
    """The columns every list of cases starts with (``cases``, ``show`` of a patient reference)."""
    table.add_column(w.t("case"), no_wrap=True)
    for column in (w.t("patient ref"), w.t("route"), w.t("state"), w.t("v"), w.t("opened")):
        table.add_column(column)


def case_cells(case: Case, w: Words) -> list[str]:
    return [case.id, case.patient_ref, w.route(case.route), w.state(case.state), str(case.version),
            w.when(case.opened_at)]  # fmt: skip


def cases_table(cases: Iterable[Case], w: Words | None = None) -> Table:
    w = w or Words()
    table = new_table(title=w.t("Cases"), caption=w.t("times in Europe/Amsterdam"))
    case_columns(table, w)
    for case in cases:
        table.add_row(*case_cells(case, w))
    return table


def history_table(case_id: str, records: Iterable[AuditRecord], w: Words | None = None) -> Table:
    """``history``: a record per row. The reason and the refusal are shown as recorded (typed by a
    person, or the engine's English refusal): a label never rewrites what the trail holds."""
    w = w or Words()
    table = new_table(title=w.t("History of case %(id)s") % {"id": case_id}, caption=w.t("times in Europe/Amsterdam"))
    for column in ("#", w.t("occurred"), w.t("event"), w.t("outcome"), w.t("now in"), w.t("actor (role)"),
                   w.t("reason / refusal")):  # fmt: skip
        table.add_column(column)
    for r in records:
        actor = f"{r.actor_id} ({w.role(r.actor_role)})"
        if r.on_behalf_of:
            actor += " " + w.t("for %(whom)s") % {"whom": r.on_behalf_of}
        table.add_row(
            str(r.seq), w.when(r.occurred_at), w.event(r.event), w.t(r.outcome), w.state(r.to_state), actor,
            r.refusal or r.reason or decision_note(r, w),
        )
    return table


OUTCOMES = (N_("accepted"), N_("rejected"), N_("denied"))
"""A record's outcome, as the history translates it (``w.t(r.outcome)``)."""


def decision_note(record: AuditRecord, w: Words | None = None) -> str:
    """What the history's last column says of an accepted decision: its outcome."""
    decided = record.payload.get("decision") if record.event == insurer.EVENT else None
    if record.outcome != "accepted" or not isinstance(decided, Mapping):
        return ""
    return coverage_summary({**decided, "policy": record.payload.get("policy")}, w or Words())


def coverage_summary(decision: Mapping[str, Any], w: Words) -> str:
    """:func:`workflow.cases.insurer.summary` in the words of ``w``: outcome, policy, route and
    whether eigen risico applies."""
    outcome = {COVERED: w.t("covered"), PARTLY: w.t("partly covered")}.get(decision.get("outcome", ""),
                                                                         w.t("not covered"))  # fmt: skip
    line = w.t("%(outcome)s under %(policy)s (%(route)s)") % {
        "outcome": outcome, "policy": decision.get("policy"), "route": w.route(str(decision.get("route")))}
    if decision.get("eigen_risico", {}).get("applies"):
        line += w.t("; eigen risico applies")
    return line


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
    lines = [",".join(CSV_COLUMNS)]
    for record in records:
        row = record_json(record)
        row["payload"] = json.dumps(row["payload"], sort_keys=True, ensure_ascii=False)
        row["channel"], row["encoding"] = record.channel, record.encoding
        lines.append(",".join(csv_field(row[column]) for column in CSV_COLUMNS))
    return "".join(line + "\n" for line in lines)


def next_after(records: Sequence[AuditRecord], after: int | None) -> int | None:
    """The cursor of the next incremental export: the last sequence exported, else the one given
    (None when neither is known: nothing matched a ``--since`` alone)."""
    sequences = [r.sequence for r in records if r.sequence is not None]
    return max(sequences) if sequences else after


def export_jsonl(records: Iterable[AuditRecord]) -> str:
    return "".join(json.dumps(record_json(r), sort_keys=True, ensure_ascii=False) + "\n" for r in records)


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


DEADLINE_STATES = (N_("running"), N_("paused"), N_("met"), N_("late"), N_("breached"), N_("cancelled"))
"""A deadline's state, as the tables translate it (``w.t(d.state)``)."""


def deadlines_table(deadlines: Iterable[Deadline], w: Words | None = None) -> Table:
    w = w or Words()
    table = new_table(title=w.t("Deadlines"), caption=w.t("times in Europe/Amsterdam"))
    for column in (w.t("case"), w.t("policy"), w.t("state"), w.t("due"), w.t("next action"), w.t("reminders sent"),
                   w.t("calendar")):  # fmt: skip
        table.add_column(column)
    for d in deadlines:
        table.add_row(
            d.case_id, d.policy, w.t(d.state), w.when(d.due_at), w.when(d.next_action_at), str(d.reminders_sent),
            d.calendar,
        )  # fmt: skip
    return table


def notification_json(n: Notification) -> dict[str, Any]:
    return {
        "id": n.id, "key": n.key, "case_id": n.case_id, "kind": n.kind, "channel": n.channel, "target": n.target,
        "status": n.status, "attempts": n.attempts, "next_attempt_at": utc_iso(n.next_attempt_at),
        "last_error": n.last_error, "delivered_at": utc_iso(n.delivered_at) if n.delivered_at else None,
        "payload": n.payload,
    }  # fmt: skip


def outbox_table(notifications: Iterable[Notification], w: Words | None = None) -> Table:
    w = w or Words()
    table = new_table(title=w.t("Outbox"), caption=w.t("times in Europe/Amsterdam"))
    for column in (w.t("id"), w.t("case"), w.t("kind"), w.t("channel"), w.t("status"), w.t("attempts"),
                   w.t("next attempt"), w.t("last error")):  # fmt: skip
        table.add_column(column)
    for n in notifications:
        table.add_row(
            str(n.id), n.case_id, n.kind, n.channel, n.status, str(n.attempts), w.when(n.next_attempt_at),
            n.last_error or "",
        )  # fmt: skip
    return table
