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
from typing import Any, NoReturn

from workflow.errors import ValidationError

PATIENT_REF_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{2,63}")
_DIGIT_RUNS = re.compile(r"(?<!\d)\d{8,9}(?!\d)")
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
BSN_SEPARATORS = (" ", "\u00a0", "\u202f", "\u2009", "\u2007", ".", "-")
"""One of these between every two groups, the same one throughout: a space, the no-break, thin
and figure spaces a word processor puts there, a dot or a hyphen."""
NUMBER_JOINERS = frozenset({".", "-"})
"""Separators that also join the groups of longer numbers (1.111.222.333, 06-111-222-333): a run
with a digit group beside it across one of these is part of that number, not a BSN. Spaces are
not among them: in prose a number may stand next to a BSN ("BSN 111 222 333 2 kinderen"), and a
BSN missed is kept for ever in an append-only trail, while a number refused is typed again."""


def _grouped(separator: str) -> re.Pattern[str]:
    """The groupings with ``separator``, not part of a longer number: no digit on either side, no
    digit group joined on by a :data:`NUMBER_JOINERS` separator, and no decimal part after
    (111.222.333,50 is an amount)."""
    sep = re.escape(separator)
    shapes = "|".join(sep.join(rf"\d{{{n}}}" for n in groups) for groups in BSN_GROUPINGS)
    joins = separator in NUMBER_JOINERS
    before, after = (rf"(?<!\d{sep})", rf"(?!{sep}\d)") if joins else ("", "")
    return re.compile(rf"(?<!\d){before}(?<!\d[.,])(?:{shapes})(?!\d){after}(?![.,]\d)")


_GROUPED = tuple(_grouped(separator) for separator in BSN_SEPARATORS)
_NOT_DIGIT = re.compile(r"\D")


def _is_bsn_match(match: re.Match[str]) -> bool:
    return is_bsn(_NOT_DIGIT.sub("", match.group()))


_CANDIDATE = re.compile(r"\d(?:[" + re.escape("".join(BSN_SEPARATORS)) + r"]?\d){7}")
"""Eight digits with at most one separator between each two: every form above contains this, and most
text does not, so one scan usually settles it (the screens run on every field of every command)."""


def contains_bsn(text: str) -> bool:
    """Nine digits passing the elfproef, in a row or in one of :data:`BSN_GROUPINGS`."""
    if not _CANDIDATE.search(text):
        return False
    return any(_is_bsn_match(m) for pattern in (_DIGIT_RUNS, *_GROUPED) for m in pattern.finditer(text))


def redact(text: str) -> str:
    """Mask anything BSN-like: the last line of defence for messages that quote user input."""
    if not _CANDIDATE.search(text):
        return text
    for pattern in (_DIGIT_RUNS, *_GROUPED):
        text = pattern.sub(lambda m: "[BSN removed]" if _is_bsn_match(m) else m.group(), text)
    return text


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
_NAME_DOMAIN = b"patient-name-word:"  # keeps a word's hash apart from any other use of the key


def name_words(text: str) -> list[str]:
    """The words of ``text`` as the name screen compares them: casefolded, decomposed (NFKD) with
    combining marks removed (Müller -> muller), runs of letters only (digits, punctuation and
    underscores separate words), at least :data:`MIN_NAME_WORD` letters, particles dropped."""
    plain = "".join(ch for ch in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(ch))
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


def check_names(fields: Mapping[str, Any], key: bytes, hashes: Collection[str]) -> None:
    """Refuse the first field whose text holds a word of the registered name (``hashes``, from
    :func:`name_hashes` with the same ``key``). ``fields`` maps a field's name to its value: a
    string, or JSON-like data whose keys and string values are screened at any depth. A word
    matches only whole (a name "Bakker" does not refuse "bakkerij"). Without hashes, nothing to do."""
    if not hashes:
        return
    seen: dict[str, bool] = {}

    def named(text: str) -> bool:
        for word in name_words(text):
            if word not in seen:
                seen[word] = _word_hash(word, key) in hashes
            if seen[word]:
                return True
        return False

    def refuse(where: str) -> NoReturn:
        raise ValidationError(
            where, "contains a word of the patient's registered name; refer to the patient by the pseudonymous "
            "reference (the value is not repeated here)"
        )  # fmt: skip

    todo = deque((field, value) for field, value in fields.items() if value is not None)
    while todo:  # without recursion: data may nest as deep as the service allows
        where, value = todo.popleft()
        if isinstance(value, str):
            if named(value):
                refuse(where)
        elif isinstance(value, Mapping):
            for k, v in value.items():
                if named(str(k)):
                    refuse(f"{where} key")
                todo.append((f"{where}.{redact(str(k))}", v))
        elif isinstance(value, list | tuple):
            todo.extend((f"{where}[{i}]", v) for i, v in enumerate(value))
