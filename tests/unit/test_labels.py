"""The labels of the domain's names: every name in every table of the workflow (states, events,
routes, roles, providers, guards, checklist items) has a Dutch label in the catalogue, under its
kind's msgctxt; English is the machine name (or a provider's title); a name outside the tables is
shown as it is."""

from __future__ import annotations

from dataclasses import replace

import pytest
from babel.messages.pofile import read_po

from second_opinion import i18n, labels
from second_opinion.labels import KINDS, Words, label, names
from workflow.cases.definitions import DEFINITION, OPEN_EVENT, STATES, State


def dutch_catalogue() -> dict[tuple[str | None, str], str]:
    with i18n.catalogue_path("nl").open("rb") as f:
        return {(m.context, str(m.id)): str(m.string) for m in read_po(f) if m.id}


def table_names(kind: str) -> set[str]:
    """The names of ``kind`` read straight from the tables, not through :func:`names`."""
    d = DEFINITION
    return {
        "state": {s.name for s in d.states},
        "event": {OPEN_EVENT, *(e.name for e in d.events)},
        "route": {r.name for r in d.routes},
        "role": {r.name for r in d.roles},
        "provider": {p.id for p in d.providers},
        "guard": {g.name for e in d.events for g in e.guards},
        "item": {i.name for i in d.checklist} | {i.name for p in d.providers for i in p.checklist},
    }[kind]


@pytest.mark.parametrize("kind", KINDS)
def test_every_name_of_every_table_is_listed(kind: str) -> None:
    assert set(names(kind)) == table_names(kind)
    assert len(names(kind)) == len(set(names(kind)))
    assert names(kind), kind


@pytest.mark.parametrize("kind", KINDS)
def test_every_name_has_a_dutch_label(kind: str) -> None:
    dutch = dutch_catalogue()
    missing = [n for n in names(kind) if not dutch.get((kind, labels.english(kind, n)))]
    assert missing == [], f"no Dutch label for these {kind} names: run python -m second_opinion.locale.update"
    for name in names(kind):
        assert label(kind, name, "nl") == dutch[(kind, labels.english(kind, name))]


def test_no_label_without_a_name() -> None:
    """Every label in the catalogue belongs to a name the tables still hold."""
    entries = set(labels.entries())
    stale = [key for key in dutch_catalogue() if key[0] in KINDS and key not in entries]
    assert stale == []


@pytest.mark.parametrize("kind", KINDS)
def test_english_is_the_machine_name_or_the_title(kind: str) -> None:
    for name in names(kind):
        expected = next(p.name for p in DEFINITION.providers if p.id == name) if kind == "provider" else name
        assert label(kind, name, "en") == expected


def test_dutch_labels_are_care_coordination_dutch() -> None:
    assert label("state", "referred", "nl") == "verwezen"
    assert label("state", "dossier_received", "nl") == "dossier ontvangen"
    assert label("role", "care_consultant", "nl") == "zorgconsulent"
    assert label("role", "gp", "nl") == "huisarts"
    assert label("event", "refer", "nl") == "verwijzen"
    assert label("route", "domestic", "nl") == "binnenland"
    assert label("provider", "generic-hospital", "nl") == "Een ziekenhuis in Nederland"
    assert label("item", "pathology", "nl") == "pathologieverslag"


def test_one_word_two_kinds_two_labels() -> None:
    """``receive_dossier`` (the event) and ``dossier_received`` (the state) read differently; the
    msgctxt keeps an event's label from a state's of the same spelling."""
    assert label("event", "receive_dossier", "nl") == "dossier ontvangen"
    assert label("state", "dossier_received", "nl") == "dossier ontvangen"
    assert label("event", "withdraw", "nl") != label("state", "withdrawn", "nl")


def test_a_name_outside_the_tables_is_shown_as_it_is() -> None:
    assert label("event", "deadline_breached", "nl") == "deadline_breached"
    assert label("state", "a_state_of_an_older_release", "nl") == "a_state_of_an_older_release"
    assert label("state", "referred", "fr") == "referred"  # an unknown language: English


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown kind of name 'colour'"):
        names("colour")


def test_a_state_added_to_the_table_is_a_name_at_once() -> None:
    """The labels read the tables: a new row is listed (and so needs a Dutch label) without an
    edit anywhere else."""
    added = replace(DEFINITION, states=(*STATES, State("on_hold", "Waiting.")))
    assert "on_hold" in names("state", added)
    assert ("state", "on_hold") in set(labels.entries(added))
    assert ("state", "on_hold") not in dutch_catalogue()


def test_words_name_what_to_type_in_dutch_only() -> None:
    assert Words("nl").command("refer") == "verwijzen (refer)"
    assert Words("en").command("refer") == "refer"
    assert Words("nl").item("letter") == "brief (letter)"
    assert Words("nl").state(None) == "-"
