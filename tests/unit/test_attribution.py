"""Where each right comes from (issue 15): the right to a second opinion is not an article of the
WGBO but rests on the KNMG rules and the modelregeling arts-patiënt; every right cites a seed."""

from __future__ import annotations

import re
from pathlib import Path

from workflow.glossary import GLOSSARY, RIGHTS, SEEDS

ROOT = Path(__file__).resolve().parents[2]


def test_nothing_attributes_the_right_to_a_second_opinion_to_the_wgbo() -> None:
    texts = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "workflow").rglob("*.py"))]
    for path in texts:
        for line in path.read_text().splitlines():
            if re.search(r"wgbo", line, re.IGNORECASE):
                assert re.search(r"article of the WGBO|no article on a second opinion|Wet op de geneeskundige",
                                 line), f"{path.name}: {line.strip()}"  # fmt: skip
    assert "(WGBO)" not in (ROOT / "README.md").read_text()


def test_every_right_names_its_source_and_an_existing_seed() -> None:
    seeds = {number for number, _, _ in SEEDS}
    assert RIGHTS and any("KNMG" in source and "modelregeling" in source for _, source, _ in RIGHTS)
    for right, source, cited in RIGHTS:
        assert right and source
        assert set(re.findall(r"\d{3}", cited)) <= seeds and re.findall(r"\d{3}", cited), right
    assert {"KNMG", "modelregeling arts-patiënt"} <= {nl for nl, _, _ in GLOSSARY}


def test_the_domain_doc_has_the_rights_table() -> None:
    text = (ROOT / "docs" / "domain.md").read_text()
    assert "## Where each right comes from" in text and "| right | source | seed |" in text
