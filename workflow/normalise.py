"""One reading of typed text for the identity screens: what a BSN or a name looks like once the
ways of writing it differently are taken away.

The BSN screen (:func:`workflow.privacy.contains_bsn`) and the name screen
(:func:`workflow.privacy.check_names`) run on every text a caller can send: CLI options and
arguments, JSON bodies (keys and values), headers, query values, event names. Before this module
each screen had its own idea of a separator and a digit, so a BSN written with tabs, a zero-width
space, fullwidth or Arabic-Indic digits, or ``_ / ,`` went through. :func:`normalise` is the one
place that decides, for both screens:

1. NFKC: compatibility forms become their plain form (fullwidth one U+FF11 -> ``1``, the no-break,
   thin and figure spaces -> a space, ligatures -> letters).
2. Format characters (Unicode category Cf: zero-width space and joiners, soft hyphen, BOM, bidi
   marks) and combining marks left over after NFKC (Mn, Me) are removed: they are invisible, so
   a digit run or a word they split is the same run or word to a reader.
3. Every decimal digit (category Nd, any script) becomes its ASCII digit.
4. Every separator becomes one of two: :data:`SPACE` for what separates words (Unicode spaces
   Z*, tab, line breaks and other control characters, ``_``), :data:`JOIN` for what joins the
   groups of one number (``. , /``, hyphen-minus and every dash, the minus sign, the Arabic
   decimal and thousands separators). A run of separators collapses to one: :data:`JOIN` if the
   run holds joiners only, else :data:`SPACE` (``". "`` ends a sentence, it does not join).

Why two separators, not one: a space stands between a BSN and the next number in prose ("BSN 111
222 333 2 kinderen" must be refused), while a dot or a comma makes digits one longer number
(1.111.222.333, an amount 111.222.333,50, a phone number 06-111-222-333, none of them a BSN). One
separator would have to give up one of the two; see :data:`workflow.privacy.NUMBER_JOINERS`.

The screens run on every field of every command, so the common case is kept cheap: the per
character decisions are a translation table filled on first use (bounded, see :class:`_Table`).
"""

from __future__ import annotations

import re
import unicodedata

SPACE = " "
"""What separates words (and may stand between a BSN and a number beside it)."""
JOIN = "."
"""What joins the digit groups of one number; also separates words."""

JOINER_CHARACTERS = frozenset(".,/\u2212\u066b\u066c")
"""Besides every dash (category Pd): the characters that join digit groups (dot, comma, slash,
minus sign, Arabic decimal and thousands separators)."""
SPACE_CHARACTERS = frozenset("_")
"""Besides Unicode spaces and control characters: ``_``, which separates words in identifiers."""

_REMOVED_CATEGORIES = frozenset({"Cf", "Mn", "Me"})
_RUNS = re.compile(r"[ .]{2,}")
_CACHE_LIMIT = 4096
"""Distinct characters remembered beyond ASCII; more are decided each time (a caller sending every
code point of Unicode must not grow the table without bound)."""


def _decide(ch: str, format_as_space: bool) -> str:
    """What one character (already NFKC) becomes."""
    category = unicodedata.category(ch)
    if category == "Cf":
        return SPACE if format_as_space else ""
    if category in _REMOVED_CATEGORIES:
        return ""
    if category == "Nd":
        return str(unicodedata.decimal(ch))
    if ch in JOINER_CHARACTERS or category == "Pd":
        return JOIN
    if ch in SPACE_CHARACTERS or ch.isspace() or category[0] == "Z" or category == "Cc":
        return SPACE
    return ch


class _Table(dict[int, str]):
    """A ``str.translate`` table that decides each character the first time it is seen."""

    def __init__(self, format_as_space: bool) -> None:
        super().__init__((c, _decide(chr(c), format_as_space)) for c in range(128))
        self.format_as_space = format_as_space

    def __missing__(self, code: int) -> str:
        value = _decide(chr(code), self.format_as_space)
        if len(self) < _CACHE_LIMIT:
            self[code] = value
        return value


_TABLES = {False: _Table(False), True: _Table(True)}


def _collapse(run: re.Match[str]) -> str:
    return SPACE if SPACE in run.group() else JOIN


def normalise(text: str, *, format_as_space: bool = False) -> str:
    """``text`` as the screens read it (see the module docstring). ``format_as_space`` reads a
    format character as a space instead of removing it: the name screen reads text both ways,
    since a zero-width space may hide inside a word ("Ber\\u200bg") or between two ("Anna\\u200bBerg")."""
    plain = text if text.isascii() else unicodedata.normalize("NFKC", text)
    mapped = plain.translate(_TABLES[format_as_space])
    return _RUNS.sub(_collapse, mapped) if len(mapped) > 1 else mapped


_ESCAPE = re.compile(r"\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|N\{[^}]{1,80}\}|[\\'\"abfnrtv0])")
_SIMPLE_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r",
                   "t": "\t", "v": "\v", "0": "\0"}  # fmt: skip


def _unescaped(escape: str) -> str:
    """The character a Python or JSON escape (as ``repr`` writes it) stands for; unknown names stay."""
    kind = escape[1]
    if kind in "xuU":
        return chr(int(escape[2:], 16)) if int(escape[2:], 16) <= 0x10FFFF else escape
    if kind == "N":
        try:
            return unicodedata.lookup(escape[3:-1])
        except KeyError:
            return escape
    return _SIMPLE_ESCAPES[kind]


def normalise_mapped(text: str) -> tuple[str, list[int]]:
    """:func:`normalise`, character by character, with where each character of the result came
    from in ``text`` (its index): what masking needs to cut a match out of the original. Slower
    than :func:`normalise`; used only on text already suspected to hold a match.

    Messages quote what was typed with ``repr`` (``'111\\t222\\t333'``), and the last masking runs
    on the message: so here an escape sequence is read as the character it stands for (a tab, a
    zero-width space), and maps back to the whole escape."""
    out: list[str] = []
    origin: list[int] = []
    i = 0
    while i < len(text):
        escape = _ESCAPE.match(text, i) if text[i] == "\\" else None
        ch = _unescaped(escape.group()) if escape else text[i]
        for piece in unicodedata.normalize("NFKC", ch).translate(_TABLES[False]):
            if piece in (SPACE, JOIN) and out and out[-1] in (SPACE, JOIN):
                out[-1] = SPACE if SPACE in (piece, out[-1]) else JOIN  # a run collapses to one
                continue
            out.append(piece)
            origin.append(i)
        i = escape.end() if escape else i + 1
    return "".join(out), origin
