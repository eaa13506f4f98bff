"""Patient identity stays out of the record: the BSN check and the payload screen."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workflow import ValidationError
from workflow.privacy import check_patient_ref, check_payload, contains_bsn, is_bsn, redact


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


# --- a BSN as it is written on letters and cards --------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["1112.22.333", "111 222 333", "111-222-333", "111.222.333", "11.12.22.333", "11 12 22 333",
     "BSN: 1112 22 333.", "bsn 111-222-333, graag", "2026-11-23 111-222-333", "nr 111222333"],
)  # fmt: skip
def test_a_bsn_in_the_usual_groupings_is_recognised_and_masked(text):
    assert contains_bsn(text)
    assert "[BSN removed]" in redact(text) and "333" not in redact(text)


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-23",  # ISO dates and times
        "2026-11-23T10:00:00Z",
        "2026-11-23T10:00:00+01:00",
        "23-11-2026 10:00",
        "06-12345678",  # phone numbers
        "020 123 4567",
        "+31 6 1234 5678",
        "020-1234567",
        "1234 AB",  # a postcode
        "1234AB 12",
        "€ 1.234.567,89",  # amounts
        "EUR 111.222.333,50",
        "1.111.222.333",
        "111-222-334",  # the grouping, but not the elfproef
        "111.222.333.444",  # part of a longer number (dots and hyphens join numbers)
        "06-111-222-333",
        "1112.22.3334",
    ],
)
def test_dates_phone_numbers_postcodes_and_amounts_are_not_a_bsn(text):
    assert not contains_bsn(text)
    assert redact(text) == text
    check_payload({"note": text})


@pytest.mark.parametrize(
    "text",
    ["BSN 111 222 333 2 kinderen", "op 3 111 222 333", "111 222 333 444", "111\u00a0222\u00a0333",
     "1112\u202f22\u202f333", "111\u2009222\u2009333", "111\u2007222\u2007333"],
)
def test_a_bsn_between_other_numbers_or_with_typographic_spaces_is_recognised(text):
    """Spaces separate words as well as groups, so a space-grouped BSN is screened whatever number
    stands beside it: a long number written in spaced groups is refused when nine of its digits
    pass the elfproef (about 1 in 11), the price of never keeping a BSN next to a number in prose."""
    assert contains_bsn(text)
    assert "[BSN removed]" in redact(text) and "222" not in redact(text)


def test_a_bsn_as_a_key_is_refused_without_repeating_it():
    with pytest.raises(ValidationError) as caught:
        check_payload({"nested": {"111222333": True}})
    assert caught.value.field == "data.nested key" and "111222333" not in str(caught.value)
    with pytest.raises(ValidationError):
        check_payload({"1112.22.333": 1})


@pytest.mark.parametrize("number", [111222333.0, 1.11222333e8])
def test_a_bsn_as_an_integral_float_is_refused(number):
    with pytest.raises(ValidationError) as caught:
        check_payload({"n": number})
    assert caught.value.field == "data.n"


def test_fractions_are_not_read_as_a_bsn():
    check_payload({"n": 111222333.5, "m": 1.5})


# --- one normaliser: however the digits and separators are written (issue 14) -----------------------

SPELLINGS = {
    "tab": "111\t222\t333",
    "newline": "BSN\n111\n222\n333",
    "crlf": "111\r\n222\r\n333",
    "mixed": "111 - 222.333",
    "repeated": "111  222...333",
    "underscore": "bsn_111_222_333",
    "slash": "111/222/333",
    "comma": "111,222,333",
    "zero-width": "111\u200b222\u200b333",
    "zero-width-joiner": "1112\u200d22\u2060333",
    "soft-hyphen": "111\u00ad222\u00ad333",
    "bom": "\ufeff111222\ufeff333",
    "bidi": "\u202e111\u200e222\u200f333\u202c",
    "ideographic-space": "111\u3000222\u3000333",
    "em-space": "111\u2003222\u2003333",
    "line-separator": "111\u2028222\u2029333",
    "dashes": "111\u2013222\u2014333",
    "minus": "111\u2212222\u2212333",
    "fullwidth": "\uff11\uff11\uff11\uff12\uff12\uff12\uff13\uff13\uff13",
    "arabic-indic": "\u0661\u0661\u0661\u0662\u0662\u0662\u0663\u0663\u0663",
    "devanagari": "\u0967\u0967\u0967 \u0968\u0968\u0968 \u0969\u0969\u0969",
    "combining": "1\u03011\u03011\u0301222333",
    "every-digit-apart": "1\u200b1\u200b1\u200b2\u200b2\u200b2\u200b3\u200b3\u200b3",
    "superscript": "\u00b9\u00b9\u00b9\u00b2\u00b2\u00b2\u00b3\u00b3\u00b3",  # not \d; NFKC makes them digits
    "circled": "\u2460\u2460\u2460\u2461\u2461\u2461\u2462\u2462\u2462",
    "overlapping": "444 111 222 333",  # 444 111 222 fails the elfproef, 111 222 333 passes
}
"""A BSN (111222333 passes the elfproef) as it slipped through before the one normaliser."""


@pytest.mark.parametrize("text", SPELLINGS.values(), ids=SPELLINGS.keys())
def test_a_bsn_however_spelled_is_recognised_and_masked(text: str) -> None:
    assert contains_bsn(text)
    masked = redact(text)
    assert "[BSN removed]" in masked and not contains_bsn(masked)
    with pytest.raises(ValidationError):
        check_payload({"note": text})


@pytest.mark.parametrize(
    "text",
    ["06/111/222/333", "1,111,222,333", "111,222,333.50", "EUR 111\u202f222\u202f333,50",
     "111\u2013222\u2013333\u20134", "23/11/2026", "2026\u201311\u201323",
     "\uff10\uff16-\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18",
     "+31\u00a06\u00a01234\u00a05678", "tel. 020\t123\t4567"],
)  # fmt: skip
def test_numbers_joined_by_dots_commas_slashes_or_dashes_stay_numbers(text: str) -> None:
    """The joiner rule holds for the new separators too: a grouping joined to a digit group by one
    of them is part of a longer number (NUMBER_JOINERS), whatever script its digits are in."""
    assert not contains_bsn(text)
    assert redact(text) == text


def test_redaction_keeps_the_text_around_the_number() -> None:
    assert redact("bsn_111_222_333 en verder") == "bsn_[BSN removed] en verder"
    assert redact("nr\t\uff11\uff11\uff11\uff12\uff12\uff12\uff13\uff13\uff13.") == "nr\t[BSN removed]."
