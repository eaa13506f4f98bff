"""The report's figures on small samples worked out by hand (rules: docs/reports.md)."""

from __future__ import annotations

import statistics
from datetime import UTC, date, datetime, timedelta

import pytest

from workflow.deadlines.calendars import Calendars, working_days_between
from workflow.deadlines.policies import BREACHED, CANCELLED, LATE, MET, PAUSED, RUNNING, Deadline
from workflow.errors import ValidationError
from workflow.service.report_figures import (
    Spread,
    WorkingDayIndex,
    breaches_by_month,
    calendar_days,
    counted_working_days,
    month_of,
    outcome,
    percentile,
)
from workflow.service.reports import MAX_PERIOD_DAYS, Period, period

NOW = datetime(2026, 12, 21, 10, 0, tzinfo=UTC)


# --- percentiles: linear interpolation (type 7) -----------------------------------------------------


@pytest.mark.parametrize(
    ("values", "median", "p90"),
    [
        ([7.0], 7.0, 7.0),
        ([3.0, 1.0], 2.0, 2.8),  # sorted 1, 3: h = 0.9 -> 1 + 0.9 * 2
        ([4.0, 1.0, 3.0, 2.0], 2.5, 3.7),  # h(50) = 1.5 -> 2.5; h(90) = 2.7 -> 3 + 0.7 * 1
        ([10.0, 11.0, 28.0], 11.0, 24.6),  # h(90) = 1.8 -> 11 + 0.8 * 17
        ([float(v) for v in range(1, 11)], 5.5, 9.1),  # h(90) = 8.1 -> 9 + 0.1
        ([5.0, 5.0, 5.0, 100.0], 5.0, 71.5),  # h(90) = 2.7 -> 5 + 0.7 * 95
    ],
)
def test_percentiles_interpolate_between_closest_ranks(values: list[float], median: float, p90: float) -> None:
    assert percentile(values, 50) == pytest.approx(median)
    assert percentile(values, 90) == pytest.approx(p90)
    if len(values) > 1:  # the same method as the standard library's "inclusive" quantiles
        assert statistics.quantiles(values, n=10, method="inclusive")[8] == pytest.approx(p90)


def test_no_values_no_percentile_and_bounds_are_checked() -> None:
    assert percentile([], 50) is None
    assert Spread.of([]).as_dict() == {"n": 0, "median": None, "p90": None}
    assert percentile([1.0, 2.0], 0) == 1.0 and percentile([1.0, 2.0], 100) == 2.0
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile([1.0], 101)


def test_spread_rounds_to_one_decimal() -> None:
    assert Spread.of([1.0, 2.0, 4.0]).as_dict() == {"n": 3, "median": 2.0, "p90": 3.6}


# --- days ------------------------------------------------------------------------------------------


def test_working_day_index_counts_like_the_deadline_rule() -> None:
    business = Calendars()("nl-business")
    index = WorkingDayIndex(business)
    # by hand: after Mon 23 Nov up to Thu 17 Dec 2026 are 18 working days (Royal Doctors' term)
    assert index.between(date(2026, 11, 23), date(2026, 12, 17)) == 18
    # Thu 24 Dec to Mon 28 Dec: Christmas (Fri 25) and the weekend are off, Monday 28 counts
    assert index.between(date(2026, 12, 24), date(2026, 12, 28)) == 1
    assert index.between(date(2026, 12, 24), date(2026, 12, 24)) == 0
    # and it agrees with the calendar's own count everywhere, after growing both ways
    atw = WorkingDayIndex(Calendars()("nl-atw"))
    start = date(2026, 4, 20)
    for offset in range(0, 60, 7):
        for length in (0, 1, 5, 18, 40):
            a = start + timedelta(days=offset)
            b = a + timedelta(days=length)
            assert atw.between(a, b) == working_days_between(atw.calendar, a, b).working_days
    # grown backwards: Fri 2 Jan 2026 is a decree day (gelijkgestelde dag) under the Algemene
    # termijnenwet, so only Mon 5 Jan counts there; on the business calendar both count
    assert atw.between(date(2026, 1, 1), date(2026, 1, 5)) == 1
    assert index.between(date(2026, 1, 1), date(2026, 1, 5)) == 2
    with pytest.raises(ValueError):
        atw.between(date(2026, 1, 5), date(2026, 1, 1))


def test_calendar_days_are_amsterdam_dates() -> None:
    # 22:30 UTC on 31 Mar 2026 is already 1 April in Amsterdam (summer time, UTC+2)
    assert calendar_days(datetime(2026, 3, 31, 21, 0, tzinfo=UTC), datetime(2026, 3, 31, 22, 30, tzinfo=UTC)) == 1
    assert calendar_days(datetime(2026, 11, 23, 9, tzinfo=UTC), datetime(2026, 12, 3, 9, tzinfo=UTC)) == 10


# --- deadlines -------------------------------------------------------------------------------------


def deadline(state: str, due: datetime | None, stopped: datetime | None = None, started: datetime | None = None,
             history: list[dict[str, object]] | None = None) -> Deadline:  # fmt: skip
    start = started or datetime(2026, 11, 23, 9, tzinfo=UTC)
    return Deadline("so-x", "royal-doctors-report", state, "nl-business", 18, start, due, None, 0,
                    {"history": history or []}, stopped, start)  # fmt: skip


def test_outcome_of_each_state() -> None:
    due = datetime(2026, 12, 17, 22, 59, 59, tzinfo=UTC)
    stop = datetime(2026, 12, 3, 9, tzinfo=UTC)
    assert outcome(deadline(MET, due, stop), NOW) == (MET, stop)
    assert outcome(deadline(LATE, due, due + timedelta(days=1)), NOW) == (BREACHED, due)
    assert outcome(deadline(BREACHED, due, NOW), NOW) == (BREACHED, due)  # breached, then stopped: still breached
    assert outcome(deadline(RUNNING, due), NOW) == (BREACHED, due)  # overdue, the sweep has not run
    assert outcome(deadline(RUNNING, NOW + timedelta(days=1)), NOW) is None  # not due yet
    assert outcome(deadline(PAUSED, None), NOW) is None
    assert outcome(deadline(CANCELLED, due, stop), NOW) is None


def test_breaches_per_month_across_dst_and_month_ends() -> None:
    """Months are Europe/Amsterdam's: a moment late on the last day in UTC may be next month there."""
    dues = [
        datetime(2026, 3, 29, 1, 30, tzinfo=UTC),  # during the switch to summer time: 03:30 CEST, March
        datetime(2026, 3, 31, 21, 30, tzinfo=UTC),  # 23:30 CEST, still March
        datetime(2026, 3, 31, 22, 30, tzinfo=UTC),  # 00:30 CEST on 1 April: April
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),  # 02:30 CEST, the first of the night's two 02:30s: October
        datetime(2026, 10, 31, 22, 30, tzinfo=UTC),  # 23:30 CET (winter time, UTC+1): October
        datetime(2026, 10, 31, 23, 30, tzinfo=UTC),  # 00:30 CET on 1 November: November
    ]
    assert [month_of(d) for d in dues] == ["2026-03", "2026-03", "2026-04", "2026-10", "2026-10", "2026-11"]
    found = [deadline(BREACHED, d) for d in dues] + [deadline(MET, dues[0], dues[0])]
    months = ["2026-03", "2026-04", "2026-05", "2026-10", "2026-11"]
    assert breaches_by_month(found, NOW, months) == {"2026-03": 2, "2026-04": 1, "2026-05": 0, "2026-10": 2,
                                                     "2026-11": 1}  # fmt: skip


def test_counted_working_days_leave_pauses_out() -> None:
    business = WorkingDayIndex(Calendars()("nl-business"))
    # started Tue 24 Nov; paused Wed 25 Nov (1 day used); resumed Mon 30 Nov; stopped Fri 4 Dec: 1 + 4
    resumed = datetime(2026, 11, 30, 10, tzinfo=UTC)
    history = [{"event": "request_information", "at": "2026-11-25T10:00:00Z", "working_days_used": 1,
                "working_days_left": 17}, {"event": "receive_information", "at": "2026-11-30T10:00:00Z"},
               {"event": "return_advice", "at": "2026-12-04T10:00:00Z"}]  # fmt: skip
    stopped = datetime(2026, 12, 4, 10, tzinfo=UTC)
    assert counted_working_days(deadline(MET, None, stopped, resumed, history), business) == 5
    # stopped while paused: only the days used before the pause
    paused = [history[0], {"event": "return_advice", "at": "2026-12-04T10:00:00Z"}]
    started = datetime(2026, 11, 24, 10, tzinfo=UTC)
    assert counted_working_days(deadline(MET, None, stopped, started, paused), business) == 1
    # never paused: every working day from the start to the stop
    assert counted_working_days(deadline(MET, None, stopped, started, [history[2]]), business) == 8
    assert counted_working_days(deadline(RUNNING, NOW), business) is None


# --- the period ------------------------------------------------------------------------------------


def test_period_defaults_to_twelve_months_up_to_today() -> None:
    p = period(None, None, NOW)
    assert (p.first, p.last) == (date(2026, 1, 1), date(2026, 12, 21))
    assert len(p.months) == 12 and p.months[0] == "2026-01" and p.months[-1] == "2026-12"
    assert period(None, "2027-02-10", NOW).first == date(2026, 3, 1)


def test_period_bounds_are_amsterdam_midnights_across_dst() -> None:
    day = Period(date(2026, 3, 29), date(2026, 3, 29))  # the day summer time starts: 23 hours long
    assert day.since == datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    assert day.until == datetime(2026, 3, 29, 22, 0, tzinfo=UTC)
    assert day.holds(datetime(2026, 3, 29, 21, 59, tzinfo=UTC)) and not day.holds(day.until)


@pytest.mark.parametrize(
    ("first", "last", "message"),
    [
        ("2026-13-01", None, "not a date in the calendar"),
        ("2026-02-30", None, "not a date in the calendar"),
        ("1-1-2026", None, "not a date written YYYY-MM-DD"),
        ("2026-12-01", "2026-11-30", "is after to"),
        ("2020-01-01", "2026-01-01", f"at most {MAX_PERIOD_DAYS}"),
        ("1999-01-01", None, "outside the supported years"),
        (None, "=1+1", "not a date written YYYY-MM-DD"),
    ],
)
def test_bad_periods_are_refused_naming_the_problem(first: str | None, last: str | None, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        period(first, last, NOW)


def test_five_years_is_the_longest_period() -> None:
    assert period("2021-12-22", "2026-12-21", NOW).first == date(2021, 12, 22)  # 1826 days
