"""The C-encoder fast path of RFC 8785 (JCS) against the reference implementation, ``rfc8785``.

``workflow.audit.jcs.dumps`` and the record template in ``workflow.audit.chain`` write JCS with
Python's C ``json`` encoder wherever that is byte-identical; these tests hold them to
``rfc8785.dumps`` on generated values, including the places where the two encoders differ
(UTF-16 key order, floats, integers beyond 2^53, lone surrogates), which must fall back.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from workflow.audit import jcs
from workflow.audit.chain import ENCODING_VERSION, AuditRecord, hash_input, hashed_fields

TEXT = st.text(st.characters(codec="utf-8"), max_size=12) | st.text(max_size=6)  # the second may hold surrogates
SCALARS = (
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.integers(-jcs.SAFE_INTEGER, jcs.SAFE_INTEGER)
    | st.floats(allow_nan=False, allow_infinity=False) | TEXT
)  # fmt: skip
JSON = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4), max_leaves=12
)


def reference(value: object) -> bytes | type[Exception]:
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as error:
        return type(error)


def ours(value: object) -> bytes | type[Exception]:
    try:
        return jcs.dumps(value)
    except rfc8785.CanonicalizationError as error:
        return type(error)


@settings(max_examples=400)
@given(JSON)
def test_dumps_is_byte_identical_to_rfc8785_or_refuses_alike(value: object) -> None:
    assert ours(value) == reference(value)


@pytest.mark.parametrize(
    "value",
    [
        {"\ue000": 1, "\U0001f600": 2},  # code point order puts U+E000 first, UTF-16 order the emoji
        {"a": 1.0},  # Python writes 1.0, JCS 1
        {"a": 1e16},  # Python 1e+16, JCS 10000000000000000
        [2**53],  # beyond what JCS carries: refused by both
        {"a": "\ud800"},  # a lone surrogate: not UTF-8
        {"a": '\x00\x1f\x7f\u2028"\\'},  # control characters, DEL and the line separator
    ],
)
def test_the_places_the_encoders_differ_go_to_the_reference(value: object) -> None:
    assert ours(value) == reference(value)


def test_plain_marks_exactly_the_values_the_c_encoder_writes_alike() -> None:
    assert jcs.plain({"a": [1, "x", None, True, {"b": -jcs.SAFE_INTEGER}]})
    assert not jcs.plain({"\U0001f600": 1})
    assert not jcs.plain([0.5])
    assert not jcs.plain(jcs.SAFE_INTEGER + 1)
    assert not jcs.plain((1, 2))  # a tuple: the reference decides
    # inside the domain the C encoder and the reference agree (the premise of the fast path)
    value = {"z": "é\n", "a": [1, {"é": None}], "\uffff": False}
    assert json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() == rfc8785.dumps(value)


OPTIONAL = st.none() | TEXT
INSTANTS = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))


@settings(max_examples=300)
@given(
    texts=st.lists(OPTIONAL, min_size=9, max_size=9),
    required=st.lists(TEXT, min_size=4, max_size=4),
    seq=st.integers(1, 10**6),
    occurred=INSTANTS,
    later=st.none() | st.timedeltas(timedelta(0), timedelta(days=3)),
    payload=st.dictionaries(TEXT, JSON, max_size=4),
)
def test_a_record_is_written_as_rfc8785_writes_its_fields(
    texts: list[str | None], required: list[str], seq: int, occurred: datetime,
    later: timedelta | None, payload: dict[str, object],
) -> None:  # fmt: skip
    from_state, to_state, on_behalf_of, idempotency_key, reason, refusal, channel, prev_hash, _ = texts
    case_id, event, actor_id, actor_role = required
    record = AuditRecord(
        case_id=case_id, seq=seq, event=event, outcome="accepted", from_state=from_state, to_state=to_state,
        actor_id=actor_id, actor_role=actor_role, on_behalf_of=on_behalf_of, occurred_at=occurred,
        recorded_at=occurred if later is None else occurred + later, idempotency_key=idempotency_key,
        payload=payload, reason=reason, refusal=refusal, prev_hash=prev_hash or "0" * 64, hash="",
        channel=channel, encoding=ENCODING_VERSION,
    )  # fmt: skip
    expected = reference(hashed_fields(record))
    try:
        actual: bytes | type[Exception] = hash_input(record)
    except rfc8785.CanonicalizationError as error:
        actual = type(error)
    assert actual == expected
