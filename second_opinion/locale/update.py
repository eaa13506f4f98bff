"""Extract every message and update ``en`` and ``nl`` from it, with Babel:
``python -m second_opinion.locale.update`` (then translate the new, empty ``msgstr`` of ``nl``).

What is marked, and so what the catalogue must hold (``tests/unit/test_web_i18n.py`` compares the
two: no message missing, none unused):

- the web desk's templates (``_()``, ``gettext``, ``ngettext``) and modules (``_()``, ``N_()``);
- the CLI's human output: :mod:`second_opinion.render`, :mod:`second_opinion.views` and
  ``second_opinion/cli/*.py`` (``t()``, ``w.t()``, ``N_()``);
- the labels of the tables' names (:func:`second_opinion.labels.entries`), one ``msgctxt`` per kind:
  they come from ``workflow/cases/definitions.py``, not from marked source text.

The English catalogue lists the same messages untranslated (the msgid is the English text).
Updating keeps every translation that still has its message, drops those that lost it, and never
guesses a fuzzy match: a new message arrives empty, for a person to translate.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po, write_po
from jinja2.ext import babel_extract

from second_opinion import __version__, i18n, labels

PACKAGE = Path(__file__).resolve().parents[1]
WIDTH = 120

WEB_KEYWORDS = {"_": None, "N_": None}
CLI_KEYWORDS = {"t": None, "N_": None}


def cli_modules() -> list[Path]:
    """The modules whose messages are the CLI's human output."""
    return [PACKAGE / "render.py", PACKAGE / "views.py", *sorted((PACKAGE / "cli").glob("*.py"))]


def marked() -> Iterator[tuple[str | tuple[str, ...], str | None, str]]:
    """Every marked message as (msgid, msgctxt, where), in a stable order."""
    for template in sorted((PACKAGE / "web" / "templates").glob("*.html")):
        with template.open("rb") as f:
            for _, _, message, _ in babel_extract(f, ("_", "gettext", "ngettext"), [], {}):
                if message:
                    yield (message if isinstance(message, str) else tuple(m for m in message if m)), None, template.name
    for keywords, modules in ((WEB_KEYWORDS, sorted((PACKAGE / "web").glob("*.py"))), (CLI_KEYWORDS, cli_modules())):
        for module in modules:
            for _, message, _, context in extract_from_file("python", str(module), keywords=keywords):
                if message:
                    yield message, context, module.name
    for kind, msgid in labels.entries():
        yield msgid, kind, "workflow/cases/definitions.py"


def template() -> Catalog:
    """The catalogue the sources mark (a ``.pot``, without translations)."""
    catalog = Catalog(project="second-opinion", version=__version__, charset="utf-8")
    for message, context, _ in marked():
        python = any("%(" in m for m in ((message,) if isinstance(message, str) else message))
        catalog.add(message, context=context, flags=("python-format",) if python else ())
    return catalog


def update(lang: str, source: Catalog) -> int:
    """Bring ``lang``'s ``.po`` up to ``source``; the number of messages it holds now."""
    path = i18n.catalogue_path(lang)
    with path.open("rb") as f:
        catalog = read_po(f, locale=lang, domain=i18n.DOMAIN)
    before = {(m.context, str(m.id)): n for n, m in enumerate(catalog) if m.id}
    created = catalog.creation_date  # kept: a header line every branch would change is a merge conflict
    catalog.update(source, no_fuzzy_matching=True, update_header_comment=False)
    catalog.creation_date = created
    catalog.obsolete.clear()  # a message no source marks is gone, not kept as a commented-out entry
    # the messages kept stay where they were and new ones follow, sorted: a small diff, which
    # merges with another branch's new messages
    messages = [m for m in catalog if m.id]
    messages.sort(key=lambda m: (before.get((m.context, str(m.id)), len(before)), str(m.id), m.context or ""))
    for message in messages:
        catalog.delete(message.id, context=message.context)
    for message in messages:
        catalog[message.id] = message
    with path.open("wb") as f:
        write_po(f, catalog, width=WIDTH, no_location=True, include_previous=False)
    return len(messages)


def main() -> None:
    source = template()
    for lang in i18n.LANGUAGES:
        count = update(lang, source)
        sys.stdout.write(f"{i18n.catalogue_path(lang)}: {count} messages\n")


if __name__ == "__main__":
    main()
