"""Bad input, every way in: each CLI command (``test_cli.py`` here) and each HTTP endpoint
(``test_api.py`` here) is fed a corpus of hostile values and property-based fuzz (hypothesis), on
SQLite and PostgreSQL (and the in-memory backend where cheap). This module holds what both share (the
corpus, the rules each slot is held to, the fuzz strategies); it has no tests.

Why this exists: ``tests/cli/test_cli.py`` and ``tests/api/test_api*.py`` check the errors we thought of,
one by one, and ``test_api_fuzz.py`` holds the API to its OpenAPI document. These take the side of whoever types:
SQL (``'; DROP TABLE cases; --``), shell metacharacters, path traversal, format strings (``{0}``,
``%s``), right-to-left overrides, combining characters, NUL and lone surrogates (where the channel can
carry them: argv carries ``\\udcff`` for a non-UTF-8 byte, JSON carries ``\\ud800``), emoji, 100 000
characters, malformed JSON, wrong types, unknown events and impossible dates (years 0, 1, 9999, 10000,
30 February). Every one gets either a success that stores the value verbatim, or one clear refusal:

- CLI: exit 1 with exactly one ``error:`` line on stderr (and ``{"error": ...}`` on stdout under
  ``--json``), or a usage error (exit 2); never a traceback;
- HTTP: a 4xx ``application/problem+json`` document; never a 5xx;

and a refusal leaves the database as it was, compared table by table (CLI) or through the service
(HTTP), except for the one audit record a refused command on a case leaves by design.

Where the slot's rule is crisp (identifiers, roles, states, routes, free text) an oracle written from
the documented rule says which values must be accepted and which refused. Inputs that still break the
promise are pinned as strict xfails naming the bug and its reproduction, so they stay visible until
fixed. Example counts are modest and generation is derandomised so the two modules run in well under
a minute and a failure reproduces.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from workflow.cases.definitions import DEFINITION

# --- the corpus ----------------------------------------------------------------------------------

HOSTILE: dict[str, str] = {
    "sql": "'; DROP TABLE cases; --",
    "sql-or": '" OR 1=1; SELECT pg_sleep(5); --',
    "shell": "$(touch pwned) `id` | rm -rf / ; && > x",
    "path": "../../../../etc/passwd",
    "path-win": "..\\..\\windows\\win.ini",
    "format": "{0} {case.__class__} %s %n %(x)s %x",
    "rtl": "\u202eevil\u202c",
    "combining": "e\u0301\u0302\u0303\u0304\u0305",
    "emoji": "\U0001f600\U0001f3e5\U0001f469\u200d\u2695\ufe0f",
    "zero-width": "a\u200bb\ufeffc",
    "fullwidth": "\uff21\uff22\uff23\uff11\uff12\uff13",
    "newline": "line one\nline two",
    "escape": "\x1b[31mred\x1b[0m\x07",
    "surrogate": "\udcff\udcfe",  # what bytes that are not UTF-8 become in argv (surrogateescape)
    "nul": "a\x00b",
    "lone-high": "\ud800",  # only JSON (as an escape) and percent-encoding can carry this one
    "long": "x" * 100_000,
    "empty": "",
    "blank": "   ",
    "dash": "-1",
    "number": "99999999999999999999",
    "float": "1e309",
    "nan": "NaN",
    "null": "null",
    "json": '{"a": [1, 2]}',
}
BSN_SPELLINGS: dict[str, str] = {
    "bsn-tab": "111\t222\t333",
    "bsn-newline": "111\n222\n333",
    "bsn-underscore": "111_222_333",
    "bsn-slash": "111/222/333",
    "bsn-comma": "111,222,333",
    "bsn-mixed": "111 - 222.333",
    "bsn-zero-width": "111\u200b222\u200b333",
    "bsn-soft-hyphen": "111\u00ad222\u00ad333",
    "bsn-ideographic-space": "111\u3000222\u3000333",
    "bsn-fullwidth": "\uff11\uff11\uff11 \uff12\uff12\uff12 \uff13\uff13\uff13",
    "bsn-arabic-indic": "\u0661\u0661\u0661\u0662\u0662\u0662\u0663\u0663\u0663",
    "bsn-superscript": "\u00b9\u00b9\u00b9\u00b2\u00b2\u00b2\u00b3\u00b3\u00b3",
    "bsn-circled": "\u2460\u2460\u2460\u2461\u2461\u2461\u2462\u2462\u2462",
}
"""A BSN (111222333 passes the elfproef) as the screens missed it before the one normaliser (issue
14): refused in every slot that takes text, on every channel; quoted back, masked."""
HOSTILE.update(BSN_SPELLINGS)
_BSN_VALUES = frozenset(BSN_SPELLINGS.values())
ARGV_CANNOT_CARRY = {"nul", "lone-high"}  # execve's arguments are C strings; argv decodes to \udc80-\udcff only
ARGV = {k: v for k, v in HOSTILE.items() if k not in ARGV_CANNOT_CARRY}
CORE = ("sql", "format", "rtl", "combining", "emoji", "newline", "surrogate", "long", "empty", "nul",
        "lone-high")  # fmt: skip
"""What runs on the SQL backends, where a CLI call costs 30-50 ms: the values whose bytes could upset
storage (quotes, placeholders, Unicode, a control character, size). Shell metacharacters, paths,
terminal escapes and numbers only meet the validation and the messages, which are the same on every
backend: the whole corpus runs in memory, on the commands that take no database, and on the HTTP API
in memory."""
HEADERS_CANNOT_CARRY = {"nul", "newline", "lone-high", "long"}  # a server refuses CR, LF, NUL and huge lines

DATES = {"year-0": "0000-01-01", "year-1": "0001-01-01", "year-9999": "9999-12-31", "year-10000": "10000-01-01",
         "feb-30": "2026-02-30", "month-13": "2026-13-01", "no-dashes": "20261123"}  # fmt: skip
INSTANTS = {
    "year-0": "0000-01-01T00:00:00Z",
    "year-1": "0001-01-01T00:00:00Z",
    "year-9999": "9999-12-31T23:59:59Z",
    "year-10000": "10000-01-01T00:00:00Z",
    "feb-30": "2026-02-30T10:00:00+01:00",
    "overflow-low": "0001-01-01T00:00:00+14:00",
    "overflow-high": "9999-12-31T23:59:59-14:00",
    "naive": "2026-11-23T08:00:00",
    "hour-24": "2026-11-23T24:00:00Z",
    "leap-second": "2026-06-30T23:59:60Z",
    "offset-25h": "2026-11-23T08:00:00+25:00",
}

OK, REFUSED, EITHER = "ok", "refused", "either"
Expect = Callable[[str], str]

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{2,63}")  # docs: 3-64 letters, digits and . _ : -
_DIGITS = re.compile(r"\d{8}")  # may be a BSN (8 or 9 digits with the eleven-test): refused, which is right
FORBIDDEN_KEYS = {"bsn", "burgerservicenummer", "name", "naam", "patient_name", "first_name", "last_name", "surname",
                  "achternaam", "voornaam", "birth_date", "date_of_birth", "geboortedatum", "dob"}  # fmt: skip
MAX_DATA = 64 * 1024


def _surrogates(value: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in value)


def _controls(value: str) -> bool:
    return any((ch < " " and ch not in "\n\r\t") or ch == "\x7f" for ch in value)


def bsn_spelled(value: str) -> str | None:
    """REFUSED for a value of :data:`BSN_SPELLINGS`; EITHER for a text holding one (what stands
    beside it may make it part of a longer number); None otherwise."""
    if value in _BSN_VALUES:
        return REFUSED
    return EITHER if any(b in value for b in _BSN_VALUES) else None


def identifier(value: str) -> str:
    if not _ID.fullmatch(value):
        return REFUSED
    return bsn_spelled(value) or (EITHER if _DIGITS.search(value) else OK)


def one_of(*allowed: str) -> Expect:
    return lambda value: OK if value in allowed else REFUSED


def free_text(value: str) -> str:
    """Reasons: any text but control characters (bar line breaks and tabs) and lone surrogates."""
    if _surrogates(value) or _controls(value):
        return REFUSED
    return bsn_spelled(value) or (EITHER if _DIGITS.search(value) or len(value) > 2000 else OK)


def data_value(value: str) -> str:
    """Event data is JSON: control characters travel escaped, except DEL, which JSON leaves raw and the
    service then refuses as a control character; lone surrogates and > 64 KiB do not travel."""
    size = len(json.dumps({"note": value}, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    if _surrogates(value) or "\x7f" in value or size > MAX_DATA:
        return REFUSED
    return bsn_spelled(value) or (EITHER if _DIGITS.search(value) else OK)


def data_key(value: str) -> str:
    if _surrogates(value) or "\x7f" in value or value.lower() in FORBIDDEN_KEYS or len(value.encode()) > MAX_DATA:
        return REFUSED
    return bsn_spelled(value) or (EITHER if _DIGITS.search(value) else OK)


def idempotency_key(value: str) -> str:
    """1-200 printable characters; accepted, replayed, or a conflict with the same key used elsewhere."""
    return (bsn_spelled(value) or EITHER) if 1 <= len(value) <= 200 and value.isprintable() else REFUSED


def json_object(value: str) -> str:
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):
        return REFUSED
    return EITHER if isinstance(parsed, dict) else REFUSED


def refused(value: str) -> str:
    return REFUSED


def anything(value: str) -> str:
    return EITHER


def accepted(value: str) -> str:
    return OK


def whole_days(value: str) -> str:
    return EITHER if re.fullmatch(r"\d+", value.strip()) else REFUSED


_STATES = [s.name for s in DEFINITION.states]
_BOUNDS_ONLY = ("year-1", "year-9999")  # as a filter bound, a far past or future instant is fine


UNKNOWN_EVENTS = ["fly", "open", "refer_", "Refer", "REFER", " refer", "refer ", "refer\n", "r" * 64, "r" * 65,
                  "refer;withdraw", "refer\u0301", "\u0440efer"]  # fmt: skip


# --- property-based: the strategies both targets draw from -----------------------------------------

FUZZ = settings(derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
_FRAGMENTS = sorted(v for k, v in HOSTILE.items() if k != "long")
_ARGV_CHARS = st.characters(exclude_characters="\x00", exclude_categories=("Cs",)) | st.sampled_from(
    ["\udc80", "\udcff"]
)  # the surrogates argv can carry
ANY_CHARS = st.characters(exclude_categories=())
ARGV_TEXT = st.text(_ARGV_CHARS, max_size=40) | st.lists(
    st.sampled_from([f for f in _FRAGMENTS if "\x00" not in f and "\ud800" not in f]) | st.text(_ARGV_CHARS,
                                                                                              max_size=6),
    max_size=4).map("".join)  # fmt: skip
ANY_TEXT = st.text(ANY_CHARS, max_size=40) | st.lists(
    st.sampled_from(_FRAGMENTS) | st.text(ANY_CHARS, max_size=6), max_size=4).map("".join)  # fmt: skip
