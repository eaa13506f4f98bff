"""Patient identity stays out of the record: the BSN check and the payload screen."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workflow import ValidationError
from workflow.privacy import check_patient_ref, check_payload, contains_bsn, is_bsn


@pytest.mark.parametrize("number", ["111222333", "123456782", "999999990"])
def test_valid_bsns_are_recognised(number):
    assert is_bsn(number)


@pytest.mark.parametrize("number", ["123456789", "000000000", "12345678a", "1234567890"])
def test_non_bsns_are_not(number):
    assert not is_bsn(number)


@given(st.integers(min_value=0, max_value=99_999_999))
def test_elfproef_completes_exactly_one_check_digit_or_none(prefix):
    """For any 8-digit prefix, at most one final digit makes a BSN (the checksum is mod 11)."""
    digits = f"{prefix:08d}"
    assert sum(is_bsn(digits + str(d)) for d in range(10)) <= 1


def test_bsn_inside_text_is_found_but_longer_numbers_are_not():
    assert contains_bsn("call about 111222333 please")
    assert not contains_bsn("order 1112223334")


def test_patient_ref_error_does_not_echo_the_value():
    with pytest.raises(ValidationError) as caught:
        check_patient_ref("Jan Jansen")
    assert "Jan" not in str(caught.value)


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ({"Name": "x"}, "data.Name"),
        ({"nested": {"geboortedatum": "1970-01-01"}}, "data.nested.geboortedatum"),
        ({"items": ["ok", "111222333"]}, "data.items[1]"),
        ({"n": 111222333}, "data.n"),
    ],
)
def test_payload_screen_names_the_field(payload, where):
    with pytest.raises(ValidationError) as caught:
        check_payload(payload)
    assert caught.value.field == where


def test_clean_payload_passes():
    check_payload({"items": 4, "letter": "received", "flags": [True, None, 1.5]})
