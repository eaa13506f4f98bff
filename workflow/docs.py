"""Text generated from the definition table: the Mermaid diagram and ``docs/states.md``.

Generated, never hand-written, so the documentation cannot drift from the rules; a test
regenerates ``docs/states.md`` and fails when the committed file differs.
"""

from __future__ import annotations

from workflow.cases.definitions import DEFINITION, OPEN_EVENT, SAME, Definition, Event
from workflow.coverage import rules as coverage
from workflow.glossary import GLOSSARY, RIGHTS, SEEDS


def mermaid(definition: Definition = DEFINITION) -> str:
    """The states and the events that move a case; fact-recording events are listed in tables."""
    lines = ["stateDiagram-v2", f"    [*] --> {definition.initial}: {OPEN_EVENT}"]
    for event in definition.events:
        if event.dest == SAME:
            continue
        for source in event.sources:
            lines.append(f"    {source} --> {event.dest}: {event.name}")
    for state in definition.states:
        if state.terminal:
            lines.append(f"    {state.name} --> [*]")
    return "\n".join(lines) + "\n"


def _needs(event: Event) -> str:
    needs = (["reason"] if event.reason_required else []) + [f"data.{k}" for k in event.required_data]
    return ", ".join(needs) or "-"


def _guards(event: Event) -> str:
    return "; ".join(f"`{g.name}`: {g.description}" for g in event.guards) or "-"


def states_markdown(definition: Definition = DEFINITION) -> str:
    out = [
        "# States and events",
        "",
        "<!-- Generated from workflow/cases/definitions.py by `second-opinion diagram --markdown`;"
        " do not edit by hand (tests/unit/test_docs.py fails when this file is stale). -->",
        "",
        "```mermaid",
        mermaid(definition).rstrip("\n"),
        "```",
        "",
        "## States",
        "",
        "| state | terminal | meaning | seed |",
        "|---|---|---|---|",
    ]
    out += [
        f"| `{s.name}` | {'yes' if s.terminal else 'no'} | {s.description} | {s.source or '-'} |"
        for s in definition.states
    ]
    out += ["", "## Events that move a case", "", "| event | from | to | requires | guards | seed |",
            "|---|---|---|---|---|---|"]  # fmt: skip
    out.append(f"| `{OPEN_EVENT}` | - | `{definition.initial}` | patient reference, route | - | - |")
    for e in definition.events:
        if e.dest != SAME:
            sources = ", ".join(f"`{s}`" for s in e.sources)
            out.append(f"| `{e.name}` | {sources} | `{e.dest}` | {_needs(e)} | {_guards(e)} | {e.source or '-'} |")
    out += ["", "## Events that record a fact (the case stays in its state)", ""]
    out += ["| event | in states | what it records | requires | guards | seed |", "|---|---|---|---|---|---|"]
    for e in definition.events:
        if e.dest == SAME:
            sources = ", ".join(f"`{s}`" for s in e.sources)
            out.append(f"| `{e.name}` | {sources} | {e.description} | {_needs(e)} | {_guards(e)} | {e.source or '-'} |")
    events = (OPEN_EVENT, *definition.event_names)
    out += ["", "## Who may do what", "", "Deny by default: a role may fire only what its row lists.", "",
            "| role | " + " | ".join(f"`{e}`" for e in events) + " |", "|---|" + "---|" * len(events)]  # fmt: skip
    for role in definition.roles:
        cells = ["yes" if definition.may(role.name, e) else "" for e in events]
        out.append(f"| `{role.name}` | " + " | ".join(cells) + " |")
    out += ["", "## Roles", "", "| role | who | seed |", "|---|---|---|"]
    out += [f"| `{r.name}` | {r.description} | {r.source or '-'} |" for r in definition.roles]
    out += ["", "## Routes", "", "Each case keeps the route version it was opened under; `upgrade_route` moves it on.",
            "", "| route | version | meaning | referral by | patient must be seen | report due | seed |",
            "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in definition.routes:
        due = (
            f"{r.report_due_working_days} working days after the complete dossier" if r.report_due_working_days else "-"
        )
        out.append(
            f"| `{r.name}` | {r.version} | {r.description} | {', '.join(r.referral_roles)} "
            f"| {'yes' if r.consultation_required else 'when the doctor requires it'} | {due} | {r.source or '-'} |"
        )
    out += ["", "## Dossier checklist", "", "| item | what | required when | seed |", "|---|---|---|---|"]
    out += [
        f"| `{c.name}` | {c.description} | {f'`{c.required_when}`' if c.required_when else 'always'} | {c.source} |"
        for c in definition.checklist
    ]
    return "\n".join(out) + "\n"


def domain_markdown(definition: Definition = DEFINITION) -> str:
    """``docs/domain.md``: the seeds' rules as this library encodes them, generated from the tables."""
    yes_no = {True: "yes", False: "no"}
    out = [
        "# The domain: rules from the seeds",
        "",
        "<!-- Generated from workflow/cases/definitions.py, cases/rules.py, coverage/rules.py and glossary.py"
        " by `second-opinion diagram --domain`; do not edit by hand"
        " (tests/unit/test_docs.py fails when this file is stale). -->",
        "",
        "Every rule cites the source page in `../shared/seeds/` it comes from, by number: 000 (PNO Zorg,"
        " basic-insurance conditions), 001 (MIND Korrelatie, asking and refusal), 002 (Jeroen Bosch"
        " Ziekenhuis, how to ask), 003 (UMC Utrecht, required data), 004 (Interpolis, domestic, Royal"
        " Doctors and online). The life cycle itself, with the permission table, the routes and the"
        " dossier checklist, is in [states.md](states.md).",
        "",
        "| seed | file in `../shared/seeds/` | what it contributes |",
        "|---|---|---|",
        *(f"| {number} | `{name}` | {about} |" for number, name, about in SEEDS),
        "",
        "## Process rules",
        "",
        "Each rule is a guard in `workflow/cases/rules.py`, attached to events in `workflow/cases/definitions.py`.",
        "A refused command is recorded in the case's audit trail with the guard's name and message.",
        "",
        "| rule (guard) | what it demands | checked on |",
        "|---|---|---|",
    ]
    guards: dict[str, tuple[str, list[str]]] = {}
    for event in definition.events:
        for guard in event.guards:
            guards.setdefault(guard.name, (guard.description, []))[1].append(event.name)
    out += [f"| `{name}` | {text} | {', '.join(f'`{e}`' for e in events)} |" for name, (text, events) in guards.items()]
    out += [
        "",
        "What a case has had recorded (its *facts*: consent, checklist items, circumstances, the refusal"
        " of a referral, escalations, the moment the dossier was complete, the route version) changes only"
        " through the effects of the fact-recording events listed in [states.md](states.md), and"
        " `audit verify` rebuilds the facts from the audit trail and compares them with the stored ones.",
        "",
        "## Coverage decision",
        "",
        "`second-opinion coverage --facts JSON [--policy ID] [--json]`, or"
        " `workflow.coverage.rules.decide_coverage(facts, policy)`: a pure function of the facts a caller states."
        " Every rule checked is reported with its seed; a missing or unknown fact is an error naming it.",
        "",
        "### Facts (a contract)",
        "",
        "| fact | meaning | values |",
        "|---|---|---|",
    ]
    for fact in coverage.FACTS:
        values = "true, false" if fact.values == (True, False) else ", ".join(f"`{v}`" for v in fact.values)
        out.append(f"| `{fact.name}` | {fact.description} | {values} |")
    out += ["", "### Rules", "", "| rule | condition | reads | seed |", "|---|---|---|---|"]
    for rule in (*coverage.RULES, coverage.DEDUCTIBLE_RULE):
        reads = ", ".join(f"`{r}`" for r in rule.reads) or "-"
        out.append(f"| `{rule.id}` | {rule.description} | {reads} | {rule.seed} |")
    out += [
        "",
        "### Policies",
        "",
        "| policy | insurer | route | rules that must all hold | deductible consulted |",
        "|---|---|---|---|---|",
    ]
    for policy in coverage.POLICIES:
        for route, cover in policy.routes.items():
            checked = (*cover.rules, *(r for r in coverage.EVERY_ROUTE if r not in cover.rules))
            rules = ", ".join(f"`{r}`" for r in checked)
            out.append(f"| `{policy.id}` | {policy.insurer} | `{route}` | {rules} | {yes_no[cover.deductible]} |")
    out += [
        "",
        "A route a policy does not list is not covered by it (rule `route_offered`).",
        "",
        "Checked on every route of every policy, offered or not, so that no route leaves the purpose unread: "
        + ", ".join(f"`{r}`" for r in coverage.EVERY_ROUTE)
        + ". Where the deductible is consulted, `age_band` is needed: it never applies to a `minor`.",
        "",
        "Never covered, whatever the policy:",
        "",
    ]
    out += [f"- {text} ({seed})" for _, text, seed in coverage.NEVER_COVERED]
    out += [
        "",
        f"Royal Doctors decisions carry the note: {coverage.ADVICE_MAY_EXCEED_COVER}",
        "",
        "## Glossary",
        "",
        "| Dutch | English | meaning |",
        "|---|---|---|",
    ]
    out += [f"| {nl} | {en} | {meaning} |" for nl, en, meaning in GLOSSARY]
    out += ["", "## Where each right comes from", "",
            "The right to a second opinion is not an article of the WGBO. Each right this library models, its "
            "source, and the seed that says so (from `RIGHTS` in workflow/glossary.py):", "",
            "| right | source | seed |", "|---|---|---|"]  # fmt: skip
    out += [f"| {right} | {source} | {seed} |" for right, source, seed in RIGHTS]
    return "\n".join(out) + "\n"


GENERATED_START = "<!-- generated by `second-opinion diagram --deadlines`: do not edit by hand -->"
GENERATED_END = "<!-- end of generated section -->"


def deadlines_markdown() -> str:
    """The policy table and the calendar data, for the generated section of docs/deadlines.md."""
    from workflow.deadlines.calendar_data import ATW_SOURCE, BUSINESS_DAYS, BUSINESS_SOURCE, DECREES, STATUTORY_DAYS
    from workflow.deadlines.policies import POLICIES

    lines = [GENERATED_START, "", "### Policies", ""]
    lines.append("| policy | routes | starts on | stops on | pauses / resumes on | working days | calendar | "
                 "reminders (working days before: who) | on breach | configurable | source |")  # fmt: skip
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for p in POLICIES:
        reminders = "; ".join(f"{r.working_days_before}: {', '.join(r.notify)}" for r in p.reminders) or "-"
        pauses = f"{', '.join(p.pauses_on) or '-'} / {', '.join(p.resumes_on) or '-'}"
        breach = ", ".join(p.notify_on_breach) + (f"; escalate to {p.escalate_to}" if p.escalate_to else "")
        lines.append(
            f"| `{p.name}` | {', '.join(p.routes)} | `{p.starts_on}` | {', '.join(f'`{e}`' for e in p.stops_on)} "
            f"| {pauses} | {p.working_days} | {p.calendar} | {reminders} | {breach} | "
            f"{'yes' if p.configurable else 'no'} | {p.source} |"
        )
    lines += ["", f"### nl-atw: the feestdagen ({ATW_SOURCE})", "", "| day | rule | article |", "|---|---|---|"]
    for day in STATUTORY_DAYS:
        if day.month_day:
            rule = f"{day.month_day[1]}-{day.month_day[0]}"
        else:
            rule = f"Easter Sunday {day.after_easter or 0:+d} days"
        if day.name == "Koningsdag":
            rule += " (26 April when the 27th is a Sunday)"
        lines.append(f"| {day.name} | {rule} | {day.article} |")
    lines += ["", "### nl-atw: decree days known to this release (ATW art. 3 lid 3)", "",
              "| years | days | decree | where it was read |", "|---|---|---|---|"]  # fmt: skip
    for decree in DECREES:
        days = ", ".join(d.isoformat() for d in decree.days)
        lines.append(f"| {decree.years[0]}-{decree.years[-1]} | {days} | {decree.title} | {decree.source} |")
    covered = sorted({y for d in DECREES for y in d.years})
    lines += ["", f"Years with a known decree: {', '.join(map(str, covered))}. Any other year is answered with a "
              "warning that the result may change."]  # fmt: skip
    lines += ["", f"### nl-business: the holidays ({BUSINESS_SOURCE})", "", "| day | rule | which years |",
              "|---|---|---|"]  # fmt: skip
    for b in BUSINESS_DAYS:
        rule = f"{b.month_day[1]}-{b.month_day[0]}" if b.month_day else f"Easter Sunday {b.after_easter or 0:+d} days"
        if b.name == "Koningsdag":
            rule += " (26 April when the 27th is a Sunday)"
        lines.append(f"| {b.name} | {rule} | {b.note} |")
    lines += ["", "Not days off on `nl-business`: Goede Vrijdag, 5 May outside lustrum years, and the ATW decree "
              "days.", "", GENERATED_END]  # fmt: skip
    return "\n".join(lines) + "\n"
