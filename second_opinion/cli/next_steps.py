"""``next CASE``: what a role may do to a case now and what is missing; and ``fire --check``'s
printing. Thin shells over :meth:`CaseService.next_steps` and :meth:`CaseService.check`
(:mod:`workflow.cases.next_steps`); registered in :mod:`second_opinion.cli.root`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from workflow.cases.definitions import DEFINITION
from workflow.cases.next_steps import ALLOWED, BLOCKED, NOT_IN_THIS_STATE, NOT_PERMITTED, NextSteps, Step
from workflow.service.commands import Verdict

from .common import Db, Json, guard, open_service, out, print_json

AsRole = Annotated[
    str,
    typer.Option("--as", "--role", envvar="SECOND_OPINION_ROLE",
                 help=f"The role to ask for: {', '.join(DEFINITION.role_names)}."),
]  # fmt: skip


def next_command(
    case: Annotated[str, typer.Argument(help="Case id.")],
    role: AsRole = "coordinator",
    db: Db = None,
    as_json: Json = False,
) -> None:
    """What ROLE may do to the case now, what blocks the rest (guard and message), and the
    dossier's missing items; tries nothing and writes nothing."""
    with guard(as_json), open_service(db) as service:
        steps = service.next_steps(case, role)
        if as_json:
            print_json(steps.as_dict())
        else:  # one line per event, however long: never wrapped, never read as markup
            out.print(next_text(steps), markup=False, soft_wrap=True)


def next_text(steps: NextSteps) -> str:
    lines = [f"{steps.case_id}: {steps.state} (version {steps.version}), as {steps.role}"]
    checklist = steps.checklist
    if checklist.get("provider_required") and not checklist.get("provider"):
        lines.append("dossier: no provider chosen yet (its checklist decides what is needed)")
    elif checklist.get("items"):
        shown = ", ".join(f"{i['item']} ({_status(i)})" for i in checklist["items"])
        lines.append(f"dossier: {shown}")
        lines.append(f"missing: {', '.join(checklist['missing']) or 'nothing'}")
    if checklist.get("circumstances_missing"):
        lines.append(f"circumstances to record: {', '.join(checklist['circumstances_missing'])}")
    for status, title in ((ALLOWED, "you may"), (BLOCKED, "blocked")):
        found = steps.of(status)
        if found:
            lines.append(f"{title}:")
            lines += [f"  {_line(s)}" for s in found]
    for status, title in ((NOT_IN_THIS_STATE, "not in this state"), (NOT_PERMITTED, "not for this role")):
        names = [s.event for s in steps.of(status)]
        if names:
            lines.append(f"{title}: {', '.join(names)}")
    return "\n".join(lines)


def _line(step: Step) -> str:
    parts = [step.event if step.to_state == "" else f"{step.event} -> {step.to_state}"]
    if step.reason_required:
        parts.append("reason required")
    for f in step.data:
        wanted = "" if f.required else " (optional)"
        if f.choices and step.status == ALLOWED:
            parts.append(f"{f.name}{wanted}: one of {', '.join(map(_shown, f.choices))}")
        else:
            parts.append(f"{f.name}{wanted}: {f.kind}")
    if step.status == BLOCKED:
        by = f"guard {step.guard}" if step.guard else f"data {step.field}"
        parts.append(f"{by}: {step.message}")
        parts += [f"then guard {name}: {why}" for name, why in step.also]
    return "; ".join(parts)


def _status(item: dict[str, Any]) -> str:
    return "not required" if item["status"] == "missing" and not item["required"] else str(item["status"])


def _shown(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def print_verdict(verdict: Verdict, as_json: bool) -> None:
    """``fire --check``: the decision on stdout, exit 0 if ``fire`` would accept it, 1 if not."""
    if as_json:
        print_json(verdict.as_dict())
    elif verdict.accepted:
        note = " (replayed: the key names a command already done)" if verdict.replayed else ""
        out.print(f"check: accepted: {verdict.case_id}: {verdict.from_state} -> {verdict.to_state} (version "
                  f"{verdict.version} -> {verdict.version + 1}){note}; nothing written", markup=False)  # fmt: skip
    else:
        refusal = verdict.refusal or {}
        out.print(f"check: refused: {refusal.get('message')}; nothing written", markup=False)
    if not verdict.accepted:
        raise typer.Exit(1)
