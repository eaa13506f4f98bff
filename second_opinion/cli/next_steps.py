"""``next CASE``: what a role may do to a case now and what is missing; and ``fire --check``'s
printing. Thin shells over :meth:`CaseService.next_steps` and :meth:`CaseService.check`
(:mod:`workflow.cases.next_steps`); registered in :mod:`second_opinion.cli.root`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from workflow.cases.definitions import DEFINITION
from workflow.cases.next_steps import ALLOWED, BLOCKED, NOT_IN_THIS_STATE, NOT_PERMITTED, NextSteps, Step
from workflow.service.commands import Verdict

from ..labels import Words
from .common import Db, Json, Lang, guard, open_service, out, print_json, words

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
    lang: Lang = None,
) -> None:
    """What ROLE may do to the case now, what blocks the rest (guard and message), and the
    dossier's missing items; tries nothing and writes nothing."""
    w = words(lang)
    with guard(as_json), open_service(db) as service:
        steps = service.next_steps(case, role)
        if as_json:
            print_json(steps.as_dict())
        else:  # one line per event, however long: never wrapped, never read as markup
            out.print(next_text(steps, w), markup=False, soft_wrap=True)


def next_text(steps: NextSteps, w: Words | None = None) -> str:
    """``next``'s lines in the words of ``w``: labels for the state, role, events, guards and
    checklist items; the guards' messages as the rules word them (English)."""
    w = w or Words()
    t = w.t
    lines = [t("%(case)s: %(state)s (version %(version)s), as %(role)s") % {
        "case": steps.case_id, "state": w.state(steps.state), "version": steps.version, "role": w.role(steps.role)}]
    checklist = steps.checklist
    if checklist.get("provider_required") and not checklist.get("provider"):
        lines.append(t("dossier: no provider chosen yet (its checklist decides what is needed)"))
    elif checklist.get("items"):
        shown = ", ".join(t("%(item)s (%(status)s)") % {"item": w.item(i["item"]), "status": _status(i, w)}
                          for i in checklist["items"])  # fmt: skip
        lines.append(t("dossier: %(items)s") % {"items": shown})
        missing = ", ".join(map(w.item, checklist["missing"])) or t("nothing")
        lines.append(t("missing: %(items)s") % {"items": missing})
    if checklist.get("circumstances_missing"):
        lines.append(t("circumstances to record: %(names)s") % {"names": ", ".join(checklist["circumstances_missing"])})
    for status, title in ((ALLOWED, t("you may")), (BLOCKED, t("blocked"))):
        found = steps.of(status)
        if found:
            lines.append(f"{title}:")
            lines += [f"  {_line(s, w)}" for s in found]
    for status, title in ((NOT_IN_THIS_STATE, t("not in this state")), (NOT_PERMITTED, t("not for this role"))):
        names = [w.event(s.event) for s in steps.of(status)]
        if names:
            lines.append(f"{title}: {', '.join(names)}")
    return "\n".join(lines)


def _line(step: Step, w: Words) -> str:
    t = w.t
    event = w.command(step.event)
    parts = [event if step.to_state == "" else f"{event} -> {w.state(step.to_state)}"]
    if step.reason_required:
        parts.append(t("reason required"))
    for f in step.data:
        wanted = "" if f.required else t(" (optional)")
        if f.choices and step.status == ALLOWED:
            choices = t("one of %(choices)s") % {"choices": ", ".join(map(_shown, f.choices))}
            parts.append(f"{f.name}{wanted}: {choices}")
        else:
            parts.append(f"{f.name}{wanted}: {f.kind}")
    if step.status == BLOCKED:
        by = t("guard %(name)s") % {"name": w.guard(step.guard)} if step.guard else t("data %(field)s") % {
            "field": step.field}  # fmt: skip
        parts.append(f"{by}: {step.message}")
        parts += [t("then guard %(name)s: %(why)s") % {"name": w.guard(name), "why": why} for name, why in step.also]
    return "; ".join(parts)


def _status(item: dict[str, Any], w: Words) -> str:
    if item["status"] == "missing" and not item["required"]:
        return w.t("not required")
    return w.t(str(item["status"]))


def _shown(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def print_verdict(verdict: Verdict, as_json: bool, w: Words | None = None) -> None:
    """``fire --check``: the decision on stdout, exit 0 if ``fire`` would accept it, 1 if not."""
    w = w or Words()
    if as_json:
        print_json(verdict.as_dict())
    elif verdict.accepted:
        note = w.t(" (replayed: the key names a command already done)") if verdict.replayed else ""
        line = w.t("check: accepted: %(case)s: %(from)s -> %(to)s (version %(version)s -> %(next)s)%(note)s; "
                   "nothing written") % {
            "case": verdict.case_id, "from": w.state(verdict.from_state), "to": w.state(verdict.to_state),
            "version": verdict.version, "next": verdict.version + 1, "note": note}  # fmt: skip
        out.print(line, markup=False)
    else:
        refusal = verdict.refusal or {}
        out.print(w.t("check: refused: %(message)s; nothing written") % {"message": refusal.get("message")},
                  markup=False)  # fmt: skip
    if not verdict.accepted:
        raise typer.Exit(1)
