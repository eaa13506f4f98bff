"""RFC 8785 (JCS) canonical JSON, written by Python's C ``json`` encoder wherever that gives the same bytes.

Why not ``rfc8785.dumps`` alone: it is pure Python and made the hashing part of ``audit verify``
50 times SHA-256 over the same bytes (docs/benchmarks.md). Why not ``json.dumps`` alone: it sorts
keys by code point where JCS sorts by UTF-16 code unit, writes floats as Python's ``repr`` where
JCS writes them as ECMAScript does, and writes integers JCS cannot carry. Inside one domain the two
agree byte for byte: strings (the C encoder's escapes, ``ensure_ascii=False``, are exactly JCS's:
``\\b \\t \\n \\f \\r \\" \\\\`` and ``\\u00xx`` in lower case for the other controls, nothing else
escaped), booleans, ``null``, integers within ±(2^53-1), lists and dicts whose keys are strings
with no character beyond U+FFFF (there code point and UTF-16 order are the same). :func:`plain`
decides that domain; everything outside it (a float, a key beyond the BMP, a huge integer, a
subclass) goes to ``rfc8785``, which stays the reference: ``tests/unit/test_jcs.py`` checks the
two against each other on generated values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import rfc8785

__all__ = ["SAFE_INTEGER", "dumps", "mapping", "plain", "same", "string"]

_NUMBERS = (int, float)
SAFE_INTEGER = 2**53 - 1
"""The largest integer an IEEE 754 double (and so JCS) carries exactly."""

_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_STRING = json.encoder.encode_basestring  # the C function when the accelerator is present (CPython)
_MAKE = getattr(json.encoder, "c_make_encoder", None)  # the C accelerator (CPython); not in typeshed
_C_ENCODE = None if _MAKE is None else _MAKE(None, None, _STRING, None, ":", ",", True, False, False)
"""The C encoder itself, built once: ``JSONEncoder.encode`` builds a new one on every call, which for
the small payloads of audit records costs more than the encoding (no circular-reference markers:
:func:`plain` has bounded the depth already)."""


def _encode(value: Any) -> str:
    return _ENCODER.encode(value) if _C_ENCODE is None else "".join(_C_ENCODE(value, 0))


def plain(value: object, depth: int = 0) -> bool:
    """Whether the C encoder writes ``value`` exactly as JCS does (see the module docstring)."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return -SAFE_INTEGER <= value <= SAFE_INTEGER  # type: ignore[operator]
    if depth > 64:
        return False  # let the reference implementation decide what to do with it
    if kind is dict:
        for key, item in value.items():  # type: ignore[attr-defined]
            if type(key) is not str or not (key.isascii() or max(key) <= "\uffff"):
                return False
            if not plain(item, depth + 1):
                return False
        return True
    if kind is list:
        return all(plain(item, depth + 1) for item in value)  # type: ignore[attr-defined]
    return False


def dumps(value: Any) -> bytes:
    """The JCS bytes of ``value``: the C encoder inside :func:`plain`'s domain, ``rfc8785`` outside it."""
    if plain(value):
        try:
            return _encode(value).encode()
        except UnicodeEncodeError:  # a lone surrogate: not UTF-8; the reference names the problem
            pass
    return rfc8785.dumps(value)


def string(value: str | None) -> str:
    """One JSON string (or ``null``) as JCS writes it; the caller has checked the type."""
    return "null" if value is None else _STRING(value)


def mapping(value: Mapping[str, Any]) -> str:
    """A mapping as JCS text, for building a larger document by hand (:mod:`workflow.audit.chain`)."""
    if not value:
        return "{}"
    as_dict = value if type(value) is dict else dict(value)
    if plain(as_dict):
        return _encode(as_dict)
    return rfc8785.dumps(as_dict).decode()


def same(stored: Any, value: Any) -> bool:
    """Whether ``stored`` (decoded JSON) is ``value`` as JCS sees it: of the same kind all the way
    down, since Python holds ``True == 1``; numbers as the doubles JCS writes (``1.0`` as ``1``,
    ``3.472033853606171e16`` as ``34720338536061710``), except that an integer ``value`` beyond
    ±(2^53 - 1), which JCS refuses, is never the same; a tuple counts as the list it is written as,
    a mapping as the object. Used to check columns against the body their hash covers."""
    if type(stored) in _NUMBERS and type(value) in _NUMBERS:  # not bool: type(True) is bool
        if type(value) is int and not -SAFE_INTEGER <= value <= SAFE_INTEGER:
            return False  # JCS refuses such an integer: no sealed record holds one (10**21 + 12345 is no 1e+21)
        if type(stored) is int and type(value) is int:
            return bool(stored == value)
        try:  # as the doubles JSON numbers are: JCS writes 3.472033853606171e16 as 34720338536061710
            return float(stored) == float(value)
        except OverflowError:
            return False
    if type(value) is tuple:  # built in memory; stored, it reads back as a list
        value = list(value)
    elif type(value) is not dict and isinstance(value, Mapping):
        value = dict(value)
    if type(stored) is not type(value):
        return False
    if type(stored) is dict:
        return stored.keys() == value.keys() and all(same(v, value[k]) for k, v in stored.items())
    if type(stored) is list:
        return len(stored) == len(value) and all(map(same, stored, value))
    return bool(stored == value)
