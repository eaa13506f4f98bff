"""One message catalogue for the web desk and the CLI's human output: every message the
templates, the web package, the CLI's rendering and the tables' labels mark is in the Dutch
catalogue, translated, and the catalogue holds no other; the catalogue compiles; languages are
negotiated from Accept-Language; dates are shown in Europe/Amsterdam."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from babel.messages.pofile import read_po

from second_opinion import i18n
from second_opinion.locale.update import marked

Key = tuple[str | None, str]
"""A message as the catalogue keys it: (msgctxt, msgid)."""


def catalogue_ids() -> set[Key]:
    """Every message marked in the templates (``_()``), the web package (``_()``, ``N_()``), the
    CLI's rendering (``t()``, ``w.t()``, ``N_()``) and the tables' labels (a msgctxt per kind):
    what ``python -m second_opinion.locale.update`` extracts."""
    return {(context, message if isinstance(message, str) else message[0]) for message, context, _ in marked()}


def catalogue(lang: str) -> dict[Key, str]:
    with i18n.catalogue_path(lang).open("rb") as f:
        return {(m.context, m.id if isinstance(m.id, str) else m.id[0]): m.string if isinstance(m.string, str)
                else m.string[0] for m in read_po(f) if m.id}  # fmt: skip


def test_every_marked_message_has_a_dutch_translation() -> None:
    ids = catalogue_ids()
    dutch = catalogue("nl")
    assert len(ids) > 300
    assert sorted(ids - dutch.keys(), key=str) == [], "messages missing: run python -m second_opinion.locale.update"
    assert sorted((m for m in ids if not dutch[m]), key=str) == [], "untranslated messages in locale/nl"


def test_no_message_is_unused() -> None:
    assert sorted(catalogue("nl").keys() - catalogue_ids(), key=str) == [], "messages no source marks any more"


def test_the_english_catalogue_lists_the_same_messages() -> None:
    assert catalogue("en").keys() == catalogue("nl").keys()


def test_placeholders_survive_translation() -> None:
    import re

    for (_, message), translated in catalogue("nl").items():
        assert sorted(re.findall(r"%\(\w+\)s", message)) == sorted(re.findall(r"%\(\w+\)s", translated)), message


def test_translator_compiles_the_catalogue() -> None:
    assert i18n.translator("nl").gettext("Board") == "Bord"
    assert i18n.translator("en").gettext("Board") == "Board"
    assert i18n.translator("fr").gettext("Board") == "Board"  # unknown: English


@pytest.mark.parametrize(("header", "expected"), [
    ("nl-NL,nl;q=0.9,en-US;q=0.8,en;q=0.7", "nl"),
    ("en-GB,en;q=0.9,nl;q=0.8", "en"),
    ("de-DE,de;q=0.9,nl;q=0.5", "nl"),
    ("de-DE", "en"),
    ("nl;q=0, en", "en"),
    ("nl-BE", "nl"),
    ("", "en"),
    (None, "en"),
    ("en;q=0.4, nl;q=0.6", "nl"),
    ("nl;q=abc, en;q=0.1", "en"),
    ("*", "en"),
    ("x" * 10_000 + ",nl", "en"),  # read up to a bound only
])  # fmt: skip
def test_negotiate(header: str | None, expected: str) -> None:
    assert i18n.negotiate(header) == expected


def test_language_from_the_environment() -> None:
    assert i18n.from_env({"SECOND_OPINION_LANG": "nl_NL.UTF-8"}) == "nl"
    assert i18n.from_env({}) == "en"


def test_dates_in_amsterdam() -> None:
    winter = datetime(2026, 12, 17, 22, 59, 59, tzinfo=UTC)  # 23:59:59 in Amsterdam (UTC+1)
    assert "23:59:59" in i18n.format_datetime(winter, "nl")
    assert "17 dec" in i18n.format_datetime(winter, "nl")
    assert "23:59:59" in i18n.format_datetime(winter, "en")
    summer = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)  # 12:00 in Amsterdam (UTC+2)
    assert "12:00:00" in i18n.format_datetime(summer, "en")
    assert i18n.format_day("2026-12-25", "nl").startswith("vr")


def test_show_speaks_dutch() -> None:
    from rich.console import Console

    from second_opinion import connect
    from second_opinion.labels import Words
    from second_opinion.views import case_table
    from tests.conftest import DESK

    service = connect("memory://")
    case_id = service.open_case("PX-0001", actor=DESK).case_id
    console = Console(width=200, record=True)
    console.print(case_table(service.case(case_id), service.definition, (), Words("nl")))
    text = console.export_text()
    assert f"Casus {case_id}" in text and "patiëntreferentie" in text and "toegestane gebeurtenissen" in text
    assert "aangevraagd" in text and "verwijzen (refer)" in text  # the state's label; an event with its name


def test_the_desk_shows_the_same_labels() -> None:
    """The web desk's board and case page show the labels of second_opinion.labels (Dutch for a
    Dutch browser; the machine names in English), and keep the machine names in ids and forms."""
    import re

    from fastapi.testclient import TestClient

    from second_opinion import connect
    from second_opinion.api import create_app
    from tests.conftest import DESK
    from workflow.service.tokens import TokenService

    service = connect("memory://")
    secret = TokenService(service.runtime).create("coor-1", "coordinator", "org-a")[0]
    case_id = service.open_case("PX-0002", actor=DESK, organisation="org-a").case_id
    client = TestClient(create_app(service), raise_server_exceptions=False)
    form = client.get("/ui/sign-in").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf
    client.post("/ui/sign-in", data={"csrf": csrf.group(1), "token": secret}, follow_redirects=False)
    dutch = {"Accept-Language": "nl"}
    board = client.get("/ui/board", headers=dutch).text
    assert ">aangevraagd <span" in board and 'data-state="requested"' in board and ">binnenland<" in board
    case = client.get(f"/ui/cases/{case_id}", headers=dutch).text
    assert '<dd id="state">aangevraagd</dd>' in case and "<legend>toestemming geven</legend>" in case
    assert 'name="event" value="give_consent"' in case and "(coördinator)" in case
    english = client.get(f"/ui/cases/{case_id}", headers={"Accept-Language": "en"}).text
    assert '<dd id="state">requested</dd>' in english and "<legend>give_consent</legend>" in english
