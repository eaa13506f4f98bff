"""Text generated from the definition table: the Mermaid diagram and ``docs/states.md``.

Generated, never hand-written, so the documentation cannot drift from the rules; a test
regenerates ``docs/states.md`` and fails when the committed file differs.
"""

from __future__ import annotations

from .definitions import DEFINITION, OPEN_EVENT, Definition


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
