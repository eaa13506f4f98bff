"""Text generated from the definition table: the Mermaid diagram and ``docs/states.md``.

Generated, never hand-written, so the documentation cannot drift from the rules; a test
regenerates ``docs/states.md`` and fails when the committed file differs.
"""

from __future__ import annotations

from workflow.cases.definitions import DEFINITION, OPEN_EVENT, SAME, Definition, Event
from workflow.cases.insurer import EVENT as DECIDE_EVENT
from workflow.coverage import rules as coverage
from workflow.glossary import GLOSSARY, NOT_MODELLED, READINGS, RIGHTS, SEEDS


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
    out += ["", "## Routes", "", "Each case keeps the route version it was opened under; `upgrade_route` moves it on."
            " On version 2 the case's provider decides the checklist, whether the patient is seen and the costs-team"
            " rule (see [domain.md](domain.md#providers)).",
            "", "| route | version | meaning | referral by | checklist and consultation | report due | seed |",
            "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in definition.routes:
        due = (
            f"{r.report_due_working_days} working days after the complete dossier" if r.report_due_working_days else "-"
        )
        rules_from = "the chosen provider's" if r.uses_providers else (
            "the list below; seen " + ("always" if r.consultation_required else "when the doctor requires it"))
        out.append(
            f"| `{r.name}` | {r.version} | {r.description} | {', '.join(r.referral_roles)} "
            f"| {rules_from} | {due} | {r.source or '-'} |"
        )
    out += ["", "## Dossier checklist of version 1", "",
            "UMC Utrecht's list (003), which version 1 applied to every route; cases opened then keep it.", "",
            "| item | what | required when | seed |", "|---|---|---|---|"]  # fmt: skip
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
        "| policy | insurer | route | rules that must all hold | deductible consulted | only the referral fails |",
        "|---|---|---|---|---|---|",
    ]
    for policy in coverage.POLICIES:
        for route, cover in policy.routes.items():
            checked = (*cover.rules, *(r for r in coverage.EVERY_ROUTE if r not in cover.rules))
            rules = ", ".join(f"`{r}`" for r in checked)
            out.append(f"| `{policy.id}` | {policy.insurer} | `{route}` | {rules} | {yes_no[cover.deductible]} "
                       f"| `{cover.self_arranged}` |")
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
        *_decision_markdown(),
        *_providers_markdown(definition),
        "## Readings: where a seed is ambiguous",
        "",
        "| topic | the seed says | our reading, and why |",
        "|---|---|---|",
        *(f"| {topic} | {said} ({seed}) | {reading} |" for topic, seed, said, reading in READINGS),
        "",
        "## What the seeds say that we do not model",
        "",
        "| what | seed | why not |",
        "|---|---|---|",
        *(f"| {what} | {seed} | {why} |" for what, seed, why in NOT_MODELLED),
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


def _decision_markdown() -> list[str]:
    outcomes = {
        coverage.COVERED: "every rule of the policy's route holds",
        coverage.PARTLY: "every rule holds but the referral, on a route whose policy pays a self-arranged opinion "
        "in part (`generic-basic`, 001); how much is the insurer's to say",
        coverage.NOT_COVERED: "any other failing rule, or a route the policy does not offer",
    }
    return [
        "### The insurer's decision on a case",
        "",
        f"`{DECIDE_EVENT}` (care consultant or coordinator; data `policy` and `facts`) decides with the rules above"
        " when it is fired and records the whole decision in the event's payload: the policy, the facts, the"
        " outcome, each rule checked with its seed, whether eigen risico applies, the notes. The case shows the"
        " latest as `facts.coverage` (`show`, the API, the history); replay reads the recorded decision and never"
        " asks today's rules. New facts make a new decision, numbered, never an edit. Natura or restitutie is not"
        " recorded: no seed says which applies (see below).",
        "",
        "| outcome | when |",
        "|---|---|",
        *(f"| `{o}` | {outcomes[o]} |" for o in coverage.OUTCOMES),
        "",
        "After a decision that is `not_covered` or `partly`, a domestic case may go ahead without a referral"
        " (`proceed_self_paying`, by the patient or the desk; 001, 002); the case records it as `facts.self_paying`"
        " with the decision's number. At UMC Utrecht that patient contacts the costs team first (003).",
        "",
    ]


def _providers_markdown(definition: Definition) -> list[str]:
    out = [
        "## Providers",
        "",
        "From `PROVIDERS` in `workflow/cases/providers.py`. A case on a route's version 2 records the provider the"
        " patient chose (002, step 3), at opening (`open --provider`; implied where one provider serves the route)"
        " or with `choose_provider` before the dossier is complete. Its checklist, consultation policy and"
        " costs-team rule are that provider's, at the version recorded: a new version of a row never changes a case"
        " under way. A change of provider is an audited event that needs a reason and restarts the checklist.",
        "",
        "| provider | version | routes | patient seen | checklist (required when) | costs team first | contact fields"
        " | seed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in definition.providers:
        items = "; ".join(
            f"`{i.name}` ({f'`{i.required_when}`' if i.required_when else 'always'}"
            f"{', never waived' if not i.waivable else ''})" for i in p.checklist
        )  # fmt: skip
        contacts = ", ".join(f"`{c.name}`" + (f" ({c.seed_value})" if c.seed_value else "") for c in p.contact_fields)
        out.append(
            f"| `{p.id}` {p.name} | {p.version} | {', '.join(p.routes)} | {p.consultation.replace('_', ' ')} "
            f"| {items} | {'yes' if p.costs_team_first else 'no'} | {contacts or '-'} | {p.source} |"
        )
    out += [
        "",
        "Contact values are the deployment's: the seed's value where it prints one, and whatever the operator sets"
        " in the JSON file named by `SECOND_OPINION_PROVIDER_CONTACTS` (`{\"provider\": {\"field\": \"text\"}}`);"
        " `second-opinion providers` shows them.",
        "",
        "### Who may waive a dossier item",
        "",
        "From `WAIVERS`: deny by default, and the role must be allowed `waive_item` by the permission table too."
        " An item marked never waived cannot be waived by anyone.",
        "",
        "| route | roles | seed | why |",
        "|---|---|---|---|",
        *(f"| `{w.route}` | {', '.join(w.roles)} | {w.source} | {w.why} |" for w in definition.waivers),
        "",
    ]
    return out


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
