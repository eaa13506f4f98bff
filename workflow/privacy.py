"""Keeping patient identity out of the record.

The audit trail is read by auditors and exported to files; it must identify a patient only by
a pseudonymous reference that the caller's own system can resolve. These checks refuse the
obvious leaks before anything is written: a Dutch citizen service number (BSN, recognised by
its 9 digits and the "elfproef" checksum), and data keys that announce a name, a BSN or a date
of birth. They cannot prove a free-text field holds no name; they stop the common mistakes.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any

from .errors import ValidationError

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


def contains_bsn(text: str) -> bool:
    return any(is_bsn(run) for run in _DIGIT_RUNS.findall(text))


def redact(text: str) -> str:
    """Mask anything BSN-like: the last line of defence for messages that quote user input."""
    return _DIGIT_RUNS.sub(lambda m: "[BSN removed]" if is_bsn(m.group()) else m.group(), text)


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
