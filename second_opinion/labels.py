"""What a person reads for one of the domain's machine names: a state, an event, a route, a role,
a provider, a guard or a checklist item, in English or Dutch.

The names come from the workflow's tables (:data:`workflow.cases.definitions.DEFINITION` is the one
source), never from a list kept here: a state added to the table is a name :func:`names` lists at
once, and the catalogue test fails until the Dutch catalogue has its label. The English label is
the machine name itself (``dossier_received``: what a script, the JSON and the API use, so a reader
of the English output can type what they see), or, for a provider, the table's own title (``UMC
Utrecht``). Each kind is its own gettext context (``msgctxt "state"``...), so a word that is a
state and an outcome, or an event and a guard, may be translated differently in each.

A name the tables do not hold (an event of the deadlines in an audit trail, a record from an
older release) is shown as it is: a label never hides what was recorded.

>>> label("state", "dossier_received", "nl")
'dossier ontvangen'
>>> label("state", "dossier_received", "en")
'dossier_received'
>>> label("provider", "umc-utrecht", "en")
'UMC Utrecht'
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from functools import lru_cache

from workflow.cases.definitions import DEFINITION, OPEN_EVENT, Definition

from . import i18n

KINDS = ("state", "event", "route", "role", "provider", "guard", "item")
"""The kinds of name, each a gettext context (``msgctxt``) of the catalogue."""


def names(kind: str, definition: Definition = DEFINITION) -> tuple[str, ...]:
    """Every machine name of ``kind`` in the tables, in table order (each once)."""
    found: list[str]
    if kind == "state":
        found = [s.name for s in definition.states]
    elif kind == "event":
        found = [OPEN_EVENT, *definition.event_names]
    elif kind == "route":
        found = [r.name for r in definition.routes]
    elif kind == "role":
        found = [r.name for r in definition.roles]
    elif kind == "provider":
        found = [p.id for p in definition.providers]
    elif kind == "guard":
        found = [g.name for e in definition.events for g in e.guards]
    elif kind == "item":
        found = [i.name for i in definition.checklist] + [i.name for p in definition.providers for i in p.checklist]
    else:
        raise ValueError(f"unknown kind of name {kind!r}; one of {', '.join(KINDS)}")
    return tuple(dict.fromkeys(found))


@lru_cache(maxsize=1)
def _titles() -> dict[str, str]:
    """Provider id -> its title (the newest version's name, as ``providers`` lists it)."""
    titles: dict[str, str] = {}
    for p in sorted(DEFINITION.providers, key=lambda p: p.version):
        titles[p.id] = p.name
    return titles


def english(kind: str, name: str) -> str:
    """The English label, which is also the catalogue's msgid: the name, or a provider's title."""
    return _titles().get(name, name) if kind == "provider" else name


def label(kind: str, name: str, lang: str) -> str:
    """``name`` (of ``kind``) as a reader of ``lang`` reads it; a name outside the tables as it is."""
    shown = english(kind, name)
    if lang == i18n.DEFAULT or lang not in i18n.LANGUAGES:
        return shown
    return i18n.translator(lang).pgettext(kind, shown)


def entries(definition: Definition = DEFINITION) -> Iterator[tuple[str, str]]:
    """Every ``(msgctxt, msgid)`` the catalogue must hold for the tables' names."""
    for kind in KINDS:
        for name in names(kind, definition):
            yield kind, english(kind, name)


class Words:
    """One language's words for a command's printing: the catalogue's ``gettext`` (``t``), the
    labels of the tables' names (``state``, ``event``...) and instants to the minute in
    Europe/Amsterdam (``when``): everything a table needs to speak one language."""

    def __init__(self, lang: str = i18n.DEFAULT) -> None:
        self.lang = lang if lang in i18n.LANGUAGES else i18n.DEFAULT
        self.t = i18n.translator(self.lang).gettext

    def when(self, value: datetime | None, missing: str = "-") -> str:
        """An instant to the minute in Europe/Amsterdam (``2026-12-07 23:59``; Dutch ``7 dec 2026 23:59``)."""
        return missing if value is None else i18n.format_minutes(value, self.lang)

    def __call__(self, kind: str, name: str) -> str:
        return label(kind, name, self.lang)

    def state(self, name: str | None) -> str:
        return "-" if not name else label("state", name, self.lang)

    def event(self, name: str) -> str:
        return label("event", name, self.lang)

    def named(self, kind: str, name: str) -> str:
        """A name a person may have to type (an event to fire, a checklist item as data): its label
        with the name (``verwijzen (refer)``); in English the name alone, as before."""
        shown = label(kind, name, self.lang)
        return shown if shown == name else f"{shown} ({name})"

    def command(self, name: str) -> str:
        return self.named("event", name)

    def route(self, name: str) -> str:
        return label("route", name, self.lang)

    def role(self, name: str) -> str:
        return label("role", name, self.lang)

    def item(self, name: str) -> str:
        return self.named("item", name)

    def guard(self, name: str) -> str:
        return label("guard", name, self.lang)
