"""One injectable clock: fixed, system (freezable) or pinned by SECOND_OPINION_CLOCK."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from freezegun import freeze_time

from second_opinion.bootstrap import clock_from_env, database_url
from storage import DEFAULT_URL
from workflow import FixedClock, SystemClock, ValidationError
from workflow.clock import local, parse_instant, utc_iso


def test_fixed_clock_moves_only_when_told():
    clock = FixedClock(datetime(2026, 11, 23, 10, 0, tzinfo=timezone(timedelta(hours=1))))
    assert clock.now() == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    assert clock.now().tzinfo == UTC
    clock.advance(timedelta(days=2))
    assert clock.now().day == 25


def test_naive_times_are_refused():
    with pytest.raises(ValidationError, match="no timezone"):
        FixedClock(datetime(2026, 11, 23, 9, 0))


@freeze_time("2026-07-01 12:00:00")
def test_system_clock_is_utc_and_freezable():
    assert SystemClock().now() == datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert local(SystemClock().now()).strftime("%H:%M %Z") == "14:00 CEST"


def test_clock_from_env():
    pinned = clock_from_env({"SECOND_OPINION_CLOCK": "2026-12-24T18:00:00+01:00"})
    assert utc_iso(pinned.now()) == "2026-12-24T17:00:00.000000Z"
    assert isinstance(clock_from_env({}), SystemClock)
    with pytest.raises(ValidationError, match="SECOND_OPINION_CLOCK"):
        clock_from_env({"SECOND_OPINION_CLOCK": "next tuesday"})


@pytest.mark.parametrize("text", ["2026-11-23T09:00:00Z", "2026-11-23T10:00:00+01:00", "2026-11-23 09:00:00z"])
def test_parse_instant_spellings(text):
    assert parse_instant(text, "t") == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_database_url_precedence():
    assert database_url("sqlite:///a.db", {"SECOND_OPINION_DB": "sqlite:///b.db"}) == "sqlite:///a.db"
    assert database_url(None, {"SECOND_OPINION_DB": "sqlite:///b.db"}) == "sqlite:///b.db"
    assert database_url(None, {}) == DEFAULT_URL
