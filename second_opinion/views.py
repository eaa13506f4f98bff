"""One case as ``show`` prints it, and the reference tables ``providers`` and ``coverage``: rich
tables for people, in the words of ``--lang`` (:class:`~second_opinion.labels.Words`).

Split from :mod:`second_opinion.render` (the JSON and the lists of cases, records, deadlines)
because these views own the case's recorded facts as a person reads them. The machine names a
table shows are labelled (:mod:`second_opinion.labels`); the tables' descriptions, the insurers'
rules and what people typed (reasons, contact values) are shown as the tables and the trail hold
them, in English or as typed. English output is what it was before ``--lang``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from workflow.cases.case import Case
from workflow.cases.definitions import Definition
from workflow.cases.rules import ALWAYS, DOCTOR_DECIDES, NEVER
from workflow.coverage.rules import COVERED, NOT_COVERED, PARTLY, CoverageDecision
from workflow.deadlines.policies import Deadline

from .labels import Words
from .render import case_provider, coverage_summary, new_table

if TYPE_CHECKING:
    from rich.console import Group
    from rich.table import Table


def case_table(case: Case, definition: Definition, deadlines: Iterable[Deadline] = (),
               w: Words | None = None) -> Table:  # fmt: skip
    """``show``'s table, in the words of ``w`` (``show --lang``)."""
    w = w or Words()
    t = w.t
    table = new_table(title=t("Case %(id)s") % {"id": case.id}, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    allowed = ", ".join(map(w.command, definition.events_from(case.state))) or t("none (closed)")
    for field, value in (
        (t("patient ref"), case.patient_ref),
        (t("route"), w.route(case.route)),
        (t("organisation"), case.organisation),
        (t("state"), w.state(case.state)),
        (t("version"), str(case.version)),
        (t("opened"), w.when(case.opened_at)),
        (t("last change"), w.when(case.updated_at)),
        (t("audit records"), str(case.audit_count)),
        (t("allowed events"), allowed),
        *provider_lines(case, definition, w),
        *((t("fact: %(key)s") % {"key": key}, json.dumps(value, ensure_ascii=False))
          for key, value in sorted(case.facts.items()) if key not in ("coverage", "provider", "self_paying")),
        *coverage_lines(case.facts.get("coverage"), w),
        *self_paying_lines(case.facts.get("self_paying"), w),
        *deadline_lines(deadlines, w),
    ):  # fmt: skip
        table.add_row(field, value)
    return table


def provider_lines(case: Case, definition: Definition, w: Words) -> list[tuple[str, str]]:
    """The case's provider as a row of ``show``: name, id and the version of its rules, who chose
    it when; on a route version with providers, "not chosen yet" until one is."""
    shown_provider = case_provider(case, definition)
    if shown_provider is None:
        route = definition.route(case.route, case.facts.get("route_version", 1))
        wanted = w.t("not chosen yet (%(event)s)") % {"event": w.command("choose_provider")}
        return [(w.t("provider"), wanted)] if route and route.uses_providers else []
    chosen = case.facts["provider"]
    name = w("provider", str(shown_provider["id"])) if shown_provider["name"] else "?"
    line = w.t("%(name)s (%(id)s, version %(version)s)") % {
        "name": name, "id": shown_provider["id"], "version": shown_provider["version"]}
    if chosen.get("by"):
        line += w.t(", chosen by %(by)s (%(at)s)") % {"by": chosen.get("by"), "at": instant(chosen.get("at"), w)}
    return [(w.t("provider"), line)]


def outcome_text(outcome: Any, w: Words) -> str:
    """An insurer's outcome (``covered``, ``partly``, ``not_covered``) in words; anything else: not covered."""
    return {COVERED: w.t("covered"), PARTLY: w.t("partly covered"), NOT_COVERED: w.t("not covered")}.get(
        str(outcome), w.t("not covered"))  # fmt: skip


def self_paying_lines(self_paying: Mapping[str, Any] | None, w: Words) -> list[tuple[str, str]]:
    """The mark of a case going ahead without a referral, the patient paying what decision #N does not."""
    if not self_paying:
        return []
    text = w.t("yes: the patient pays what decision #%(number)s (%(outcome)s) does not, by %(by)s (%(at)s)") % {
        "number": self_paying.get("decision"), "outcome": outcome_text(self_paying.get("outcome"), w),
        "by": self_paying.get("by"), "at": instant(self_paying.get("at"), w)}  # fmt: skip
    return [(w.t("self-paying"), text)]


def instant(at: Any, w: Words) -> str:
    """A recorded UTC instant (``...Z``) as a table shows it; "?" for anything else."""
    if not isinstance(at, str):
        return "?"
    try:
        return w.when(datetime.fromisoformat(at.replace("Z", "+00:00")))
    except ValueError:
        return "?"


def coverage_lines(decision: Mapping[str, Any] | None, w: Words) -> list[tuple[str, str]]:
    """The insurer's latest decision as rows of ``show``: outcome, each reason with its seed rule,
    and eigen risico only when it applies (saying nothing otherwise, as the issue asks)."""
    if not decision:
        return []
    head = w.t("#%(number)s %(summary)s, by %(by)s (%(at)s)") % {
        "number": decision.get("number"), "summary": coverage_summary(decision, w),
        "by": decision.get("decided_by"), "at": instant(decision.get("decided_at"), w)}  # fmt: skip
    rows = [(w.t("coverage"), head)]
    for reason in decision.get("reasons", []):
        mark = w.t("ok") if reason.get("passed") else w.t("FAILS")
        rows.append((w.t("coverage reason"), w.t("%(mark)s %(rule)s (seed %(seed)s)") % {
            "mark": mark, "rule": reason.get("rule"), "seed": reason.get("seed")}))  # fmt: skip
    rows.append((w.t("coverage facts"), json.dumps(decision.get("facts", {}), ensure_ascii=False, sort_keys=True)))
    return rows


def coverage_table(decision: CoverageDecision, w: Words | None = None) -> Table:
    """``coverage``: one policy's verdict and its rules (their conditions as the rules word them)."""
    w = w or Words()
    verdict = outcome_text(decision.outcome, w).upper()
    deductible = w.t("; deductible (eigen risico) applies") if decision.deductible_applies else ""
    caption = "\n".join([*decision.notes, w.t("Never covered: ") + "; ".join(decision.never_covered)])
    title = w.t("%(policy)s, route %(route)s: %(verdict)s") % {
        "policy": decision.policy, "route": w.route(decision.route), "verdict": verdict}
    table = new_table(title=title + deductible, caption=caption)
    for column in (w.t("rule"), w.t("holds"), w.t("seed"), w.t("condition")):
        table.add_column(column)
    for check in decision.checks:
        table.add_row(check.rule, w.t("yes") if check.passed else w.t("NO"), check.seed, check.description)
    return table


def providers_view(providers: Iterable[Mapping[str, Any]], w: Words | None = None) -> Group:
    """:func:`~second_opinion.render.providers_json`'s rows for people: a table per provider, a line
    per checklist item and contact field. An operator's value is printed whole, as typed, never read
    as rich markup."""
    from rich.console import Group
    from rich.text import Text

    w = w or Words()
    t = w.t
    tables = []
    for p in providers:
        title = t("%(name)s (%(id)s, version %(version)s)") % {
            "name": w("provider", p["id"]), "id": p["id"], "version": p["version"]}
        table = new_table(title=title, show_header=False, title_justify="left")
        table.add_column("field", style="bold", no_wrap=True)
        table.add_column("value", overflow="fold")
        table.add_row(t("about"), t("%(description)s (seed %(source)s)") % {
            "description": p["description"], "source": p["source"]})  # fmt: skip
        table.add_row(t("routes"), ", ".join(map(w.route, p["routes"])))
        table.add_row(t("patient seen"), consultation_text(p["consultation"], w))
        table.add_row(t("costs team first"), t("yes (patients insured abroad)") if p["costs_team_first"] else t("no"))
        for i in p["checklist"]:
            when = t("when %(circumstance)s") % {"circumstance": i["required_when"]} if i["required_when"] else (
                t("always"))  # fmt: skip
            waivable = "" if i["waivable"] else t(", not waivable")
            table.add_row(t("item: %(item)s") % {"item": w.item(i["item"])}, f"{when}{waivable}: {i['description']}")
        for c in p["contacts"]:
            value = c["value"] or t("- (none known)")
            origin = {"operator": t(" (operator)"), "seed": t(" (seed)")}.get(c["value_from"] or "", "")
            table.add_row(t("contact: %(field)s") % {"field": c["field"]},
                          Text(f"{c['description']}: {value}{origin}"))  # fmt: skip
        tables.append(table)
    return Group(*tables)


def consultation_text(policy: str, w: Words) -> str:
    """Whether the provider sees the patient (its consultation policy) in words."""
    return {ALWAYS: w.t("always"), DOCTOR_DECIDES: w.t("when the doctor decides"), NEVER: w.t("never")}.get(
        policy, policy)  # fmt: skip


def deadline_lines(deadlines: Iterable[Deadline], w: Words) -> list[tuple[str, str]]:
    """``show``'s deadline rows: state, due moment, calendar and term."""
    rows = []
    for d in deadlines:
        text = w.t("%(state)s, due %(due)s (%(calendar)s, %(days)s working days)") % {
            "state": w.t(d.state), "due": w.when(d.due_at, w.t("paused")), "calendar": d.calendar,
            "days": d.working_days}  # fmt: skip
        rows.append((w.t("deadline: %(policy)s") % {"policy": d.policy}, text))
    return rows
