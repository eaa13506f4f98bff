"""Dutch and English from one message catalogue: ``second_opinion/locale/<lang>/LC_MESSAGES/messages.po``.

The catalogues are compiled when first used (Babel reads the ``.po`` and writes the ``.mo`` into
memory), not committed compiled: a binary ``.mo`` beside its ``.po`` can drift from it unseen in a
review, and compiling the few hundred messages takes milliseconds once per process. The message
ids are the English texts, so English needs no translation and a message missing from the Dutch
catalogue shows in English rather than as a key.

For the web desk (:mod:`second_opinion.web`) and the CLI's human output (``--lang``,
``$SECOND_OPINION_LANG``, :mod:`second_opinion.cli.common`); the labels of the tables' names
(states, events...) are in :mod:`second_opinion.labels`:

>>> translator("nl").gettext("Board")
'Bord'
>>> negotiate("nl-NL,nl;q=0.9,en;q=0.8")
'nl'
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Mapping
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path

from workflow.clock import AMSTERDAM

LANGUAGES = ("en", "nl")
"""The languages of the catalogue, the default first."""
DEFAULT = "en"
ENV_LANG = "SECOND_OPINION_LANG"
DOMAIN = "messages"
LOCALE_DIR = Path(__file__).with_name("locale")
MAX_ACCEPT_LANGUAGE = 512
"""An Accept-Language header is read up to this many characters (a browser sends a few dozen)."""


def catalogue_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


@lru_cache(maxsize=len(LANGUAGES))
def translator(lang: str) -> gettext.NullTranslations:
    """The translations of ``lang`` (one of :data:`LANGUAGES`; anything else: English)."""
    if lang not in LANGUAGES or lang == DEFAULT:
        return gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with catalogue_path(lang).open("rb") as po:
        catalog = read_po(po, locale=lang, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def negotiate(accept_language: str | None, default: str = DEFAULT) -> str:
    """The language of :data:`LANGUAGES` the header prefers (RFC 9110 weights; ``nl-BE`` counts
    as ``nl``); ``default`` when it names none of them or cannot be read."""
    if not accept_language:
        return default
    best, best_q = default, 0.0
    for position, part in enumerate(accept_language[:MAX_ACCEPT_LANGUAGE].split(",")[:32]):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-", 1)[0]
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if not 0 < q <= 1:
            continue
        q -= position * 1e-6  # equal weights: the first listed wins
        if primary in LANGUAGES and q > best_q:
            best, best_q = primary, q
        elif primary == "*" and q > best_q:
            best, best_q = default, q
    return best


def from_env(env: Mapping[str, str] | None = None) -> str:
    """``$SECOND_OPINION_LANG`` (``nl``, ``nl_NL.UTF-8``, ``en``...), else :data:`DEFAULT`; a value
    naming no language of :data:`LANGUAGES` is English here (the CLI refuses it instead:
    :func:`second_opinion.cli.common.chosen_lang`), read by the same :func:`language`."""
    from .settings import env_text  # settings loads pydantic: only for those who ask

    return language(env_text("lang", env)) or DEFAULT


MAX_LANG = 64
"""A language value (``--lang``, ``$SECOND_OPINION_LANG``) is read up to this many characters."""


def language(value: str) -> str | None:
    """The language of :data:`LANGUAGES` a locale-style value names (``nl``, ``NL``, ``nl_NL.UTF-8``,
    ``en-GB``), or None: the CLI refuses a value it cannot read rather than guess English."""
    if len(value) > MAX_LANG:
        return None
    primary = value.strip().split(".", 1)[0].replace("_", "-").split("-", 1)[0].lower()
    return primary if primary in LANGUAGES else None


def format_minutes(value: datetime, lang: str) -> str:
    """An instant to the minute in Europe/Amsterdam, as the CLI's tables show it: English keeps the
    sortable ``2026-12-07 23:59`` it always printed; Dutch reads ``7 dec 2026 23:59``."""
    if lang != "nl":
        return value.astimezone(AMSTERDAM).strftime("%Y-%m-%d %H:%M")
    from babel.dates import format_datetime as babel_format

    return babel_format(value, format="d MMM y HH:mm", tzinfo=AMSTERDAM, locale=_locale(lang))


def format_datetime(value: datetime, lang: str, format: str = "medium") -> str:
    """An instant as a reader of ``lang`` writes it, in Europe/Amsterdam."""
    from babel.dates import format_datetime as babel_format

    return babel_format(value, format=format, tzinfo=AMSTERDAM, locale=_locale(lang))


def format_date(value: datetime, lang: str, format: str = "medium") -> str:
    """The Amsterdam date of an instant as a reader of ``lang`` writes it."""
    from babel.dates import format_date as babel_format

    return babel_format(value.astimezone(AMSTERDAM).date(), format=format, locale=_locale(lang))


def format_day(day: str, lang: str) -> str:
    """An ISO date (``2026-12-25``) with its weekday, e.g. ``vr 25 dec 2026`` or ``Fri 25 Dec 2026``."""
    from babel.dates import format_date as babel_format

    return babel_format(date.fromisoformat(day), format="EEE d MMM y", locale=_locale(lang))


def _locale(lang: str) -> str:
    return "nl_NL" if lang == "nl" else "en_GB"
