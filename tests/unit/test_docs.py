"""Generated documentation is never stale: docs/states.md is exactly what the table produces."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from workflow.cases.definitions import DEFINITION
from workflow.coverage.rules import RULES
from workflow.docs import GENERATED_END, GENERATED_START, deadlines_markdown, domain_markdown, mermaid, states_markdown
from workflow.glossary import SEEDS

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_states_doc_matches_the_table() -> None:
    committed = (DOCS / "states.md").read_text()
    assert committed == states_markdown(), (
        "docs/states.md is stale: run `second-opinion diagram --markdown > docs/states.md`"
    )


def test_deadlines_doc_holds_the_generated_policy_and_calendar_tables() -> None:
    committed = (DOCS / "deadlines.md").read_text()
    start, end = committed.index(GENERATED_START), committed.index(GENERATED_END) + len(GENERATED_END) + 1
    assert committed[start:end] == deadlines_markdown(), (
        "docs/deadlines.md is stale: replace its generated section with `second-opinion diagram --deadlines`"
    )


def test_diagram_has_every_transition_of_the_table() -> None:
    diagram = mermaid()
    for event in DEFINITION.events:
        for source in event.sources:
            # fact-recording events (dest "*") stay out of the picture; they are tabled instead
            assert (f"{source} --> {event.dest}: {event.name}" in diagram) is (event.dest != "*")
    for state in DEFINITION.states:
        assert (f"{state.name} --> [*]" in diagram) is state.terminal


def test_every_table_row_is_documented() -> None:
    doc = states_markdown()
    for name in [*DEFINITION.event_names, *(s.name for s in DEFINITION.states), *DEFINITION.role_names]:
        assert f"`{name}`" in doc


def test_ci_runs_the_readme_test_command() -> None:
    root = DOCS.parent
    readme = (root / "README.md").read_text()
    command = next(line for line in readme.splitlines() if line.startswith("python3 -m venv") and "pytest" in line)
    assert command in (root / ".ci" / "run").read_text().splitlines()


def test_readme_python_example_runs(capsys) -> None:
    readme = (DOCS.parent / "README.md").read_text()
    block = readme.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(block.replace('"sqlite:///cases.sqlite3"', '"memory://"'), "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "cannot receive_dossier a case in state 'referred'" in printed
    assert "guard 'circumstances_recorded' refused: record the circumstances first" in printed


def test_domain_doc_matches_the_tables() -> None:
    committed = (DOCS / "domain.md").read_text()
    assert committed == domain_markdown(), "docs/domain.md is stale: run `second-opinion diagram --domain`"


def test_seed_citations_name_real_pages() -> None:
    """Every seed number cited in the tables is one of the five pages, and those files exist."""
    numbers = {number for number, _, _ in SEEDS}
    cited: list[str] = []
    for row in (*DEFINITION.states, *DEFINITION.events, *DEFINITION.routes, *DEFINITION.roles):
        cited += [part.strip() for part in row.source.split(",") if part.strip()]
    cited += [part.strip() for rule in RULES for part in rule.seed.split(",")]
    assert cited and set(cited) <= numbers
    seeds_dir = DOCS.parent.parent / "shared" / "seeds"
    if not seeds_dir.is_dir():
        pytest.skip(f"{seeds_dir} is not beside this checkout (CI has it)")
    assert {name for _, name, _ in SEEDS} <= {p.name for p in seeds_dir.iterdir()}


def test_docs_cite_files_that_exist() -> None:
    """A path the docs name (a module, a test) is there: a moved file takes its citations with it.
    The CHANGELOG is history and keeps the paths of its day."""
    cited = re.compile(r"(?<![\w/.])((?:workflow|storage|jobs|second_opinion|tests|bench)/[\w/.-]*\w)")
    missing = []
    for page in [DOCS.parent / "README.md", *sorted(DOCS.glob("*.md"))]:
        for path in sorted(set(cited.findall(page.read_text()))):
            if not (DOCS.parent / path).exists():
                missing.append(f"{page.name}: {path}")
    assert missing == []
