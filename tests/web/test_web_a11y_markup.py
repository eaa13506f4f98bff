"""The accessibility structure of the web desk's HTML, without a browser (TestClient on the memory
backend), in English and Dutch: a fast guard for what the browser tests (tests/browser/test_a11y_*)
measure in Chromium. Every page has ``lang``, the skip link first and a focusable ``<main id=main>``;
ids are unique and every ``aria-labelledby``/``for`` names one; every control has a label; every
table has a caption and column headers; a wide table (five columns or more) sits in a scrolling
box that is labelled, has a role and ``tabindex="0"``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi.testclient import TestClient

from second_opinion import connect
from second_opinion.api import create_app
from workflow.service.tokens import TokenService

FOCUSABLE = {"a", "button", "input", "select", "textarea", "summary"}
WIDE = 5
"""Columns from which a table may be wider than a tablet held upright, and so must scroll in its own box."""


@dataclass
class Table:
    caption: bool = False
    headers: int = 0
    columns: int = 0
    box: dict[str, str] | None = None


@dataclass
class Page(HTMLParser):
    """What the checks need from one page, gathered in one pass."""

    lang: str | None = None
    ids: list[str] = field(default_factory=list)
    refs: list[tuple[str, str]] = field(default_factory=list)  # (attribute, id named)
    controls: list[dict[str, str]] = field(default_factory=list)
    labels_for: set[str] = field(default_factory=set)
    focusable: list[dict[str, str]] = field(default_factory=list)
    main: dict[str, str] | None = None
    tables: list[Table] = field(default_factory=list)
    open_divs: list[dict[str, str]] = field(default_factory=list)
    row_cells: int = 0

    def __post_init__(self) -> None:
        HTMLParser.__init__(self)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "html":
            self.lang = a.get("lang")
        if "id" in a:
            self.ids.append(a["id"])
        for name in ("aria-labelledby", "aria-describedby"):
            self.refs.extend((name, ref) for ref in a.get(name, "").split())
        if tag == "label" and "for" in a:
            self.labels_for.add(a["for"])
            self.refs.append(("for", a["for"]))
        if tag in ("input", "select", "textarea") and a.get("type") != "hidden":
            self.controls.append(a)
        if tag in FOCUSABLE and not (tag == "input" and a.get("type") == "hidden") and (tag != "a" or "href" in a):
            self.focusable.append({"tag": tag, **a})
        if tag == "main":
            self.main = a
        if tag == "div":
            self.open_divs.append(a)
        if tag == "table":
            boxes = [d for d in self.open_divs if "scroll" in d.get("class", "").split()]
            self.tables.append(Table(box=boxes[-1] if boxes else None))
        if tag == "caption" and self.tables:
            self.tables[-1].caption = True
        if tag == "th" and a.get("scope") == "col" and self.tables:
            self.tables[-1].headers += 1
        if tag == "tr":
            self.row_cells = 0
        if tag in ("td", "th") and self.tables:
            self.row_cells += int(a.get("colspan") or 1)
            self.tables[-1].columns = max(self.tables[-1].columns, self.row_cells)

    def handle_endtag(self, tag: str) -> None:
        if tag == "div" and self.open_divs:
            self.open_divs.pop()


def parsed(html: str) -> Page:
    page = Page()
    page.feed(html)
    return page


def problems(html: str, lang: str) -> list[str]:
    page = parsed(html)
    found = []
    if page.lang != lang:
        found.append(f"lang {page.lang!r}")
    first = page.focusable[0] if page.focusable else {}
    if first.get("class") != "skip" or first.get("href") != "#main":
        found.append(f"first focusable is not the skip link: {first}")
    if not page.main or page.main.get("id") != "main" or page.main.get("tabindex") != "-1":
        found.append(f"main: {page.main}")
    if dup := sorted({i for i in page.ids if page.ids.count(i) > 1}):
        found.append(f"ids used twice: {dup}")
    found += [f"{attr}={ref!r} names no element" for attr, ref in page.refs if ref not in page.ids]
    for c in page.controls:
        if c.get("id") not in page.labels_for and not c.get("aria-label"):
            found.append(f"control without a label: {c}")
    for t in page.tables:
        if not t.caption or t.headers == 0:
            found.append(f"table without caption or column headers: {t}")
        if t.columns >= WIDE:
            box = t.box or {}
            named = box.get("aria-label") or box.get("aria-labelledby") in page.ids
            if box.get("tabindex") != "0" or box.get("role") not in ("region", "group") or not named:
                found.append(f"a {t.columns}-column table outside a labelled, focusable scroll box: {box}")
    return found


@pytest.fixture
def desk() -> Any:
    service = connect("memory://")
    tokens = TokenService(service.runtime)
    secrets = {role: tokens.create(f"{role[:4]}-1", role, "org-a")[0] for role in ("care_consultant", "auditor")}
    return secrets, TestClient(create_app(service), raise_server_exceptions=False)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def sign_in(client: TestClient, secret: str) -> None:
    form = client.get("/ui/sign-in")
    answer = client.post("/ui/sign-in", data={"csrf": csrf_of(form.text), "token": secret}, follow_redirects=False)
    assert answer.status_code == 303, answer.text


@pytest.mark.parametrize("lang", ["en", "nl"])
def test_every_page_has_the_structure_assistive_technology_needs(desk: Any, lang: str) -> None:
    secrets, client = desk
    client.get(f"/ui/language/{lang}")
    shown = {"sign-in": client.get("/ui/sign-in").text}
    sign_in(client, secrets["care_consultant"])
    board = client.get("/ui/board").text
    opened = client.post("/ui/cases", data={"csrf": csrf_of(board), "patient_ref": "PX-MARKUP-1",
                                             "route": "royal-doctors"})  # fmt: skip
    assert opened.status_code == 200 and "/ui/cases/so-" in str(opened.url), opened.text[:300]
    shown |= {"board": board, "case": opened.text, "work": client.get("/ui/work").text,
              "search": client.get("/ui/search?patient_ref=PX-MARKUP-1").text,
              "reports": client.get("/ui/reports").text,
              "error": client.get("/ui/cases/so-doesnotexist").text}  # fmt: skip
    client.post("/ui/sign-out", data={"csrf": csrf_of(board)})
    sign_in(client, secrets["auditor"])
    shown["audit"] = client.get("/ui/audit").text
    assert "PX-MARKUP-1" in shown["search"] and "<table" in shown["case"] and "<table" in shown["audit"]
    assert {name: found for name, html in shown.items() if (found := problems(html, lang))} == {}


def test_the_checks_find_what_they_look_for() -> None:
    """Each check fails on a page built to fail it: a guard that cannot fail proves nothing."""
    bad = """<html lang="en"><body><a href="/x">first</a><main id="main"><input id="q">
        <label for="nowhere">x</label><p id="d"></p><p id="d"></p>
        <table><tr><td>1</td><td>2</td><td>3</td><td>4</td><td>5</td></tr></table></main></body></html>"""
    found = "\n".join(problems(bad, "nl"))
    for expected in ("lang 'en'", "skip link", "main:", "ids used twice", "'nowhere' names no element",
                     "control without a label", "without caption", "5-column table outside"):  # fmt: skip
        assert expected in found, (expected, found)
