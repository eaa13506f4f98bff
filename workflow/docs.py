"""Text generated from the definition table: the Mermaid diagram and ``docs/states.md``.

Generated, never hand-written, so the documentation cannot drift from the rules; a test
regenerates ``docs/states.md`` and fails when the committed file differs.
"""

from __future__ import annotations

from . import coverage
from .definitions import DEFINITION, OPEN_EVENT, Definition
from .glossary import GLOSSARY


def mermaid(definition: Definition = DEFINITION) -> str:
    lines = ["stateDiagram-v2", f"    [*] --> {definition.initial}: {OPEN_EVENT}"]
    for event in definition.events:
        for source in event.sources:
            lines.append(f"    {source} --> {event.dest}: {event.name}")
    for state in definition.states:
        if state.terminal:
            lines.append(f"    {state.name} --> [*]")
    return "\n".join(lines) + "\n"


def states_markdown(definition: Definition = DEFINITION) -> str:
    out = [
        "# States and events",
        "",
        "<!-- Generated from workflow/definitions.py by `second-opinion diagram --markdown`;"
        " do not edit by hand (tests/test_docs.py fails when this file is stale). -->",
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
    out += [
        "",
        "## Events",
        "",
        "| event | from | to | roles | requires | guards | seed |",
        "|---|---|---|---|---|---|---|",
    ]
    out.append(
        f"| `{OPEN_EVENT}` | - | `{definition.initial}` | {', '.join(definition.open_roles)} "
        "| patient reference, route | - | - |"
    )
    for e in definition.events:
        needs = (["reason"] if e.reason_required else []) + [f"data.{k}" for k in e.required_data]
        guards = "; ".join(f"`{g.name}`: {g.description}" for g in e.guards)
        out.append(
            f"| `{e.name}` | {', '.join(f'`{s}`' for s in e.sources)} | `{e.dest}` | {', '.join(e.roles)} "
            f"| {', '.join(needs) or '-'} | {guards or '-'} | {e.source or '-'} |"
        )
    out += ["", "## Roles", "", "| role | who |", "|---|---|"]
    out += [f"| `{r.name}` | {r.description} |" for r in definition.roles]
    out += ["", "## Routes", "", "| route | meaning | seed |", "|---|---|---|"]
    out += [f"| `{r.name}` | {r.description} | {r.source or '-'} |" for r in definition.routes]
    return "\n".join(out) + "\n"


def domain_markdown() -> str:
    """``docs/domain.md``: the seeds' rules as this library encodes them, generated from the tables."""
    yes_no = {True: "yes", False: "no"}
    out = [
        "# The domain: rules from the seeds",
        "",
        "<!-- Generated from workflow/coverage.py and workflow/glossary.py by `second-opinion diagram --domain`;"
        " do not edit by hand (tests/test_docs.py fails when this file is stale). -->",
        "",
        "Every rule cites the source page in `../shared/seeds/` it comes from, by number: 000 (PNO Zorg,"
        " basic-insurance conditions), 001 (MIND Korrelatie, asking and refusal), 002 (Jeroen Bosch"
        " Ziekenhuis, how to ask), 003 (UMC Utrecht, required data), 004 (Interpolis, domestic, Royal"
        " Doctors and online). The life cycle itself is in [states.md](states.md).",
        "",
        "## Coverage decision",
        "",
        "`second-opinion coverage --facts JSON [--policy ID] [--json]`, or"
        " `workflow.coverage.decide_coverage(facts, policy)`: a pure function of the facts a caller states."
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
            rules = ", ".join(f"`{r}`" for r in cover.rules)
            out.append(f"| `{policy.id}` | {policy.insurer} | `{route}` | {rules} | {yes_no[cover.deductible]} |")
    out += [
        "",
        "A route a policy does not list is not covered by it (rule `route_offered`).",
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
    return "\n".join(out) + "\n"
