"""Keeping patient identity out of the record.

The audit trail is read by auditors and exported to files; it must identify a patient only by
a pseudonymous reference that the caller's own system can resolve. These checks refuse the
obvious leaks before anything is written: a Dutch citizen service number (BSN, recognised by
its 9 digits and the "elfproef" checksum, in a row or written in its usual groups), data keys
that announce a name, a BSN or a date of birth, and, for a case whose patient's name was given at
opening, any word of that name (kept only as keyed hashes of its words, see :func:`check_names`).
They cannot prove a free-text field holds no name: a name the system was never given cannot be
recognised. They stop the common mistakes.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections import deque
from collections.abc import Collection, Mapping
from typing import Any

from anyascii import anyascii

from workflow.errors import ValidationError
from workflow.normalise import JOIN, JOINER_CHARACTERS, SPACE, normalise, normalise_mapped

PATIENT_REF_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{2,63}")
_FORBIDDEN_KEYS = frozenset(
    {
        "bsn",
        "burgerservicenummer",
        "name",
        "naam",
        "patient_name",
        "first_name",
        "last_name",
        "surname",
        "achternaam",
        "voornaam",
        "birth_date",
        "date_of_birth",
        "geboortedatum",
        "dob",
    }
)


def is_bsn(digits: str) -> bool:
    """The elfproef: 9*d1 + 8*d2 + ... + 2*d8 - 1*d9 is a non-zero multiple of 11."""
    digits = digits.zfill(9)
    if len(digits) != 9 or not digits.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(digits[:8], range(9, 1, -1), strict=True)) - int(digits[8])
    return total != 0 and total % 11 == 0


_NINE_DIGITS = re.compile(r"[0-9]{9}")


def validate_bsn(text: str) -> str:
    """A BSN as given at the desk: exactly nine digits that pass the elfproef. The number itself
    is never repeated in an error, since errors end up in logs and terminals."""
    digits = text.strip()
    if not _NINE_DIGITS.fullmatch(digits):
        raise ValidationError("BSN", f"must be exactly 9 digits (got {len(digits)} characters)")
    if digits == "000000000":
        raise ValidationError("BSN", "all zeros is not a BSN")
    if not is_bsn(digits):
        raise ValidationError("BSN", "fails the eleven-test (elfproef); check for a typing error")
    return digits


def bsn_hash(bsn: str, key: bytes) -> str:
    """Keyed hash (HMAC-SHA256) of a validated BSN: findable with the key, useless without it.
    A plain hash would not do: nine digits are a space small enough to try exhaustively."""
    return hmac.new(key, validate_bsn(bsn).encode(), hashlib.sha256).hexdigest()


BSN_GROUPINGS: tuple[tuple[int, ...], ...] = ((4, 2, 3), (3, 3, 3), (2, 2, 2, 3))
"""How a BSN is written when it is written in groups (letters, cards, forms): 1234.56.789,
123 456 789, 12.34.56.789. Besides these, nine (or eight, a leading zero dropped) digits in a row."""
NUMBER_JOINERS = frozenset(JOINER_CHARACTERS | {"-"})
"""Separators (besides every dash) that also join the groups of longer numbers (1.111.222.333,
06-111-222-333, 111.222.333,50): a grouping with a digit group beside it across one of these alone
is part of that number, not a BSN. Spaces (and anything that reads as one, see
:mod:`workflow.normalise`) are not among them: in prose a number may stand next to a BSN ("BSN 111
222 333 2 kinderen"), and a BSN missed is kept for ever in an append-only trail, while a number
refused is typed again. Between the groups of one BSN any separators may stand, mixed and repeated
(111 - 222.333, 111\t222\t333): they are read through :func:`~workflow.normalise.normalise`.

Changed with the one normaliser: before it, the groups had to be separated by the same one of
space, no-break/thin/figure space, dot or hyphen throughout; tab, line breaks, ``_ / ,``, zero-width
and soft-hyphen characters and non-ASCII digits went through."""

_SEP = f"[{re.escape(SPACE + JOIN)}]"
_SHAPES = "|".join(_SEP.join(rf"\d{{{n}}}" for n in groups) for groups in BSN_GROUPINGS)
_JOINED = re.escape(JOIN)
_BSN_LIKE = re.compile(
    rf"(?<!\d)(?=((?<!\d{_JOINED})(?:{_SHAPES})(?!\d)(?!{_JOINED}\d)|\d{{8,9}}(?!\d)))"
)
"""On normalised text: a grouping not joined to a digit group on either side, or 8-9 digits in a
row (whatever stands beside them, as before). A lookahead, so that overlapping candidates are all
tried ("111 222 333 444": 222 333 444 may be the BSN)."""
_CANDIDATE = re.compile(rf"\d(?:{_SEP}?\d){{7}}")
"""Eight digits with at most one separator between each two: every form above contains this in
normalised text, and most text does not, so one scan usually settles it."""
_ANY_DIGIT = re.compile(r"\d")  # any script's digits: what normalising would make ASCII


def _few_digits(text: str) -> bool:
    r"""Fewer than eight digits of any script or form: no BSN, whatever else the text holds (the
    cheap first test: the screens run on every field of every command). Besides decimal digits
    (``\d``), any character with a digit value counts: superscript, circled, parenthesised
    digits (¹, ①, ⑴) are not ``\d``, but NFKC makes each of them a digit."""
    if not all(count < BSN_MIN_DIGITS for count, _ in enumerate(_ANY_DIGIT.finditer(text), 1)):
        return False
    return text.isascii() or not many_digits(text)


BSN_MIN_DIGITS = 8
"""Digits a BSN has at least: nine, or eight with its leading zero dropped."""


def many_digits(text: str) -> bool:
    """Whether ``text`` holds :data:`BSN_MIN_DIGITS` or more characters with a digit value (any
    script or form), however they are spaced: too many for a name such as an event's, which may
    then hold a BSN the prose screen cannot tell from other numbers (``x_1_1_1_2_2_2_3_3_3``)."""
    return sum(1 for ch in text if unicodedata.digit(ch, None) is not None) >= BSN_MIN_DIGITS


def _bsn_spans(plain: str) -> list[tuple[int, int]]:
    """Where in normalised text a BSN stands (start, end), overlapping candidates included."""
    if not _CANDIDATE.search(plain):
        return []
    spans = []
    for match in _BSN_LIKE.finditer(plain):
        digits = _NOT_DIGIT.sub("", match.group(1))
        if is_bsn(digits):
            spans.append(match.span(1))
    return spans


_NOT_DIGIT = re.compile(r"\D")


def contains_bsn(text: str) -> bool:
    """Nine digits passing the elfproef, in a row or in one of :data:`BSN_GROUPINGS`, however
    the digits and separators are written (:func:`~workflow.normalise.normalise`)."""
    if _few_digits(text):
        return False
    return bool(_bsn_spans(normalise(text)))


REDACTED = "[BSN removed]"
WITHHELD = "[withheld]"
"""What a stored record holds instead of a value that failed a screen (or that no screen may be
run on without telling the caller something): a refusal record's event name, idempotency key or
actor, an access record's ``on_behalf_of``. Fixed, so that it says nothing about the value."""


def redact(text: str) -> str:
    """Mask anything BSN-like: the last line of defence for messages that quote user input. The
    match is found in normalised text and cut out of the original, separators, invisible
    characters and all; escape sequences (a message quotes with ``repr``: ``'111\\t222\\t333'``)
    are read as what they stand for. Should the mapping ever find less than
    :func:`contains_bsn`, the whole text is masked rather than let a number through."""
    if _few_digits(text):
        return text
    suspect = contains_bsn(text)
    if not suspect and "\\" not in text:
        return text
    plain, origin = normalise_mapped(text)
    spans = _bsn_spans(plain)
    if not spans:
        return REDACTED if suspect else text
    out, last = [], 0
    for start, end in spans:
        first, stop = max(origin[start], last), origin[end - 1] + 1
        out.append(text[last:first] + (REDACTED if first < stop else ""))
        last = max(last, stop)
    out.append(text[last:])
    masked = "".join(out)
    return masked if not contains_bsn(masked) else REDACTED


EVENT_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


def check_patient_ref(ref: str) -> str:
    if not PATIENT_REF_PATTERN.fullmatch(ref):
        raise ValidationError(
            "patient reference",
            "must be 3-64 characters of letters, digits and . _ : - "
            "(a pseudonym from your own system, never a name); the value is not repeated here",
        )
    if contains_bsn(ref):
        raise ValidationError("patient reference", "looks like a BSN; use a pseudonymous reference")
    return ref


def check_text(field: str, text: str) -> str:
    if contains_bsn(text):
        raise ValidationError(field, "contains what looks like a BSN; refer to the patient by pseudonym")
    return text


def check_payload(data: Mapping[str, Any], path: str = "data") -> None:
    """Refuse identity-bearing keys and BSN-like values anywhere in a JSON-like payload."""
    for key, value in data.items():
        if contains_bsn(str(key)):  # named by its parent only: the key itself is what must not be repeated
            raise ValidationError(f"{path} key", "contains what looks like a BSN; refer to the patient by pseudonym")
        where = f"{path}.{key}"
        if str(key).lower() in _FORBIDDEN_KEYS:
            raise ValidationError(where, "patient identity may not be stored; use the pseudonymous patient reference")
        _check_value(where, value)


def _check_value(where: str, value: Any) -> None:
    if isinstance(value, Mapping):
        check_payload(value, where)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_value(f"{where}[{i}]", item)
    elif isinstance(value, str):
        check_text(where, value)
    elif isinstance(value, int) and not isinstance(value, bool):
        check_text(where, str(value))
    elif isinstance(value, float) and value.is_integer():  # 111222333.0 is the same number as 111222333
        check_text(where, str(int(value)))


# --- the patient's name: registered as keyed hashes of its words, then refused wherever it is typed ---

NAME_PARTICLES = frozenset(
    {"van", "de", "der", "den", "het", "'t", "ter", "ten", "te", "in", "op", "la", "le", "du", "d", "von", "y"}
)
"""Words of a surname that are not the name (van der Berg is screened as "berg"): Dutch and a few
other particles. They are also ordinary words, so screening them would refuse most sentences."""
MIN_NAME_WORD = 2
"""Shorter letter runs (an initial, the t of 't) say nothing about who the patient is."""
MAX_NAME_CHARS = 200
_LETTER_RUNS = re.compile(r"[^\W\d_]+")
_ASCII_LETTER_RUNS = re.compile(r"[a-z]+")
_NAME_DOMAIN = b"patient-name-word:"  # keeps a word's hash apart from any other use of the key


def name_words(text: str, *, format_as_space: bool = False) -> list[str]:
    """The words of ``text`` as the name screen compares them: read through the one normaliser
    (:func:`~workflow.normalise.normalise`), casefolded and transliterated to ASCII by ``anyascii``
    (Müller -> muller, Sørensen -> sorensen, Łukasz -> lukasz, Øster -> oster), runs of letters
    only (digits, punctuation, separators and underscores separate words), at least
    :data:`MIN_NAME_WORD` letters, particles dropped.

    Changed with the normaliser: before it, words were decomposed (NFKD) with combining marks
    removed, which leaves letters such as ø, ł, æ, đ as they are, so a name registered as
    "Sørensen" did not refuse "Sorensen". Hashes stored under that rule are still matched: see
    :func:`legacy_name_words` and :func:`check_names`."""
    return _words(normalise(text, format_as_space=format_as_space).casefold())


_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


def _words(folded: str) -> list[str]:
    """:func:`name_words` of normalised, casefolded text. Only the non-ASCII stretches go through
    ``anyascii`` (a lookup per character in Python; the result is the same, as it works character
    by character), so plain text costs a regular expression or two."""
    plain = _NON_ASCII.sub(lambda m: anyascii(m.group()), folded).lower() if not folded.isascii() else folded
    return [w for w in _ASCII_LETTER_RUNS.findall(plain) if len(w) >= MIN_NAME_WORD and w not in NAME_PARTICLES]


def legacy_name_words(text: str) -> list[str]:
    """The words of ``text`` by the rule name hashes were made with before the normaliser (NFKD,
    combining marks removed, no transliteration), read after the normaliser's first steps so that
    invisible characters and Unicode spaces cannot split or hide a word from it either. Kept only
    so that a case opened before the change keeps refusing its name: a word this rule gives
    differs from :func:`name_words`'s only for letters NFKD leaves (ø -> ø, not o)."""
    normal = unicodedata.normalize("NFKD", normalise(text).casefold())
    plain = "".join(ch for ch in normal if not unicodedata.combining(ch))
    return [w for w in _LETTER_RUNS.findall(plain) if len(w) >= MIN_NAME_WORD and w not in NAME_PARTICLES]


def _word_hash(word: str, key: bytes) -> str:
    return hmac.new(key, _NAME_DOMAIN + word.encode(), hashlib.sha256).hexdigest()


def check_name(name: str) -> list[str]:
    """The words of a patient's name as given at opening, refused if there is nothing to screen
    for. The name itself is never repeated in an error."""
    if not name.strip() or len(name) > MAX_NAME_CHARS or not name.isprintable():
        raise ValidationError("patient name", f"must be 1-{MAX_NAME_CHARS} printable characters")
    words = name_words(name)
    if not words:
        problem = f"has no word of {MIN_NAME_WORD} or more letters besides particles, so nothing to screen for"
        raise ValidationError("patient name", problem)
    return words


def name_hashes(name: str, key: bytes) -> tuple[str, ...]:
    """Keyed hashes (HMAC-SHA256) of the words of the patient's name, sorted and unique: what is
    kept of a name given at opening, so that it can be recognised and refused, never shown."""
    return tuple(sorted({_word_hash(w, key) for w in check_name(name)}))


def _screened_words(text: str) -> set[str]:
    """Every word of ``text`` the screen hashes: by the current rule, read with invisible
    characters removed and (if that differs) read as spaces, and by the legacy rule
    (:func:`legacy_name_words`) for its words that are not plain ASCII (for ASCII words the two
    rules agree). O(words): nothing here depends on the name or on the number of cases."""
    folded = normalise(text).casefold()
    words = set(_words(folded))
    if text.isascii():
        return words
    spaced = normalise(text, format_as_space=True).casefold()
    if spaced != folded:
        words.update(_words(spaced))
    for run in _LETTER_RUNS.findall(folded):
        if not run.isascii():
            words.update(legacy_name_words(run))
    return words


NAME_REFUSAL = (
    "contains a word of the patient's registered name; refer to the patient by the pseudonymous reference (the "
    "value is not repeated here)"
)
FIELDS_JOINER = " or "
"""Between the fields a name refusal names: "invalid reason or actor id: ..." (see :func:`check_names`)."""


def check_names(fields: Mapping[str, Any], key: bytes, hashes: Collection[str]) -> None:
    """Refuse the request if any text in ``fields`` holds a word of the registered name (``hashes``,
    from :func:`name_hashes` with the same ``key``). ``fields`` maps a field's name to its value: a
    string, or JSON-like data whose keys and string values are screened at any depth. A word
    matches only whole (a name "Bakker" does not refuse "bakkerij"). Without hashes, nothing to do.

    The answer is the same whichever word matched, and wherever: every word of every field is
    hashed, none skipped after a match, and the refusal names all the fields that were given (in
    their given order, joined by :data:`FIELDS_JOINER`), not the one that matched, nor a key or a
    position. Before, it named the first matching field down to its key or list index, so a
    caller could put one guess in each of many places and learn from one refusal which guess was
    a word of the name."""
    if not hashes:
        return
    given = [field for field, value in fields.items() if value is not None and value != {} and value != ""]
    words: set[str] = set()
    todo = deque(fields[field] for field in given)
    while todo:  # without recursion: data may nest as deep as the service allows
        value = todo.popleft()
        if isinstance(value, str):
            words |= _screened_words(value)
        elif isinstance(value, Mapping):
            for k, v in value.items():
                words |= _screened_words(str(k))
                todo.append(v)
        elif isinstance(value, list | tuple):
            todo.extend(value)
    matched = sum(_word_hash(word, key) in hashes for word in words)  # all of them: no early exit
    if matched:
        raise ValidationError(FIELDS_JOINER.join(given), NAME_REFUSAL)
