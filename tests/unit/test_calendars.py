"""The calendars against the official lists, and the counting rule at its edges.

The expected days below are written out by hand from the Algemene termijnenwet art. 3 and the
decree titles cited in workflow/calendar_data.py, not computed by the code under test.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from dateutil.easter import easter
from hypothesis import given
from hypothesis import strategies as st

from workflow.deadlines.calendars import (
    AtwCalendar,
    Calendars,
    Closure,
    HolidaysCalendar,
    add_working_days,
    calendar_named,
    due_moment,
    working_days_before,
    working_days_between,
)
from workflow.errors import ValidationError

ATW = AtwCalendar()
HOLIDAYS = HolidaysCalendar()

# Every ATW feestdag (art. 3 lid 1-2) and decree day (lid 3), weekends included.
OFFICIAL = {
    2024: {"01-01", "03-29", "04-01", "04-27", "05-05", "05-09", "05-10", "05-20", "12-25", "12-26", "12-27"},
    2025: {"01-01", "04-18", "04-21", "04-26", "05-05", "05-29", "05-30", "06-09", "12-25", "12-26"},
    2026: {"01-01", "01-02", "04-03", "04-06", "04-27", "05-05", "05-14", "05-15", "05-25", "12-25", "12-26"},
    2027: {"01-01", "03-26", "03-29", "04-27", "05-05", "05-06", "05-07", "05-17", "12-25", "12-26"},
    2028: {"01-01", "04-14", "04-17", "04-27", "04-28", "05-05", "05-25", "05-26", "06-05", "12-25", "12-26"},
}
DECREE_DAYS = {"2024-05-10", "2024-12-27", "2025-05-30", "2026-01-02", "2026-05-15", "2027-05-07", "2028-04-28",
               "2028-05-26"}  # fmt: skip


def _year(year: int) -> list[date]:
    day = date(year, 1, 1)
    return [day + timedelta(days=i) for i in range((date(year + 1, 1, 1) - day).days)]


@pytest.mark.parametrize("year", sorted(OFFICIAL))
def test_atw_days_off_are_the_official_list(year: int) -> None:
    named = {d.strftime("%m-%d") for d in _year(year) if (off := ATW.day_off(d)) and off.kind != "weekend"}
    assert named == OFFICIAL[year]
    for day in _year(year):
        off = ATW.day_off(day)
        if day.isoformat() in DECREE_DAYS:
            assert off is not None and off.kind == "decree" and "Besluit gelijkstelling" in off.source
        elif day.weekday() >= 5:
            assert off is not None  # weekends never count
        elif day.strftime("%m-%d") not in OFFICIAL[year]:
            assert off is None, day


def test_koningsdag_moves_to_saturday_when_the_27th_is_a_sunday() -> None:
    off = ATW.day_off(date(2025, 4, 26))
    assert off is not None and off.name == "Koningsdag"
    assert ATW.day_off(date(2025, 4, 27)).kind == "weekend"  # type: ignore[union-attr]


def test_differs_from_the_holidays_package_where_the_law_does() -> None:
    # 5 May counts every year under the ATW; the package has it only in lustrum years.
    assert ATW.day_off(date(2026, 5, 5)) is not None and HOLIDAYS.day_off(date(2026, 5, 5)) is None
    # decree days are not in the package at all
    assert ATW.day_off(date(2026, 5, 15)) is not None and HOLIDAYS.day_off(date(2026, 5, 15)) is None
    assert add_working_days(ATW, date(2026, 5, 13), 1).end == date(2026, 5, 18)
    assert add_working_days(HOLIDAYS, date(2026, 5, 13), 1).end == date(2026, 5, 15)


@pytest.mark.parametrize(
    ("year", "sunday"), [(2024, "03-31"), (2025, "04-20"), (2026, "04-05"), (2027, "03-28"), (2038, "04-25")]
)
def test_easter_monday_and_good_friday_follow_easter(year: int, sunday: str) -> None:
    """Easter comes from dateutil (the Gregorian computation); the movable days are counted from it."""
    easter_day = date.fromisoformat(f"{year}-{sunday}")
    assert easter(year) == easter_day
    assert ATW.day_off(easter_day + timedelta(days=1)).name == "Tweede Paasdag"
    assert ATW.day_off(easter_day - timedelta(days=2)).name == "Goede Vrijdag"


@pytest.mark.parametrize(
    ("start", "n", "end"),
    [
        ("2026-04-24", 18, "2026-05-27"),  # the example: Koningsdag, 5 May, Ascension + decree, Whit Monday
        ("2026-11-20", 1, "2026-11-23"),  # Friday: the weekend does not count
        ("2026-04-02", 1, "2026-04-07"),  # before Easter: Good Friday and Easter Monday skipped
        ("2026-04-06", 1, "2026-04-07"),  # starting on Easter Monday itself
        ("2026-12-24", 3, "2026-12-30"),  # Christmas
        ("2026-12-30", 2, "2027-01-04"),  # Christmas to New Year
        ("2025-12-31", 1, "2026-01-05"),  # New Year and the decree day 2 January 2026
        ("2026-05-13", 1, "2026-05-18"),  # Ascension and the decree day after it
        ("2026-05-16", 0, "2026-05-16"),  # 0 days: day 0 itself, even a Saturday
    ],
)
def test_add_working_days_edges(start: str, n: int, end: str) -> None:
    count = add_working_days(ATW, date.fromisoformat(start), n)
    assert count.end == date.fromisoformat(end)
    assert working_days_between(ATW, date.fromisoformat(start), count.end).working_days == n


def test_explanation_names_every_skipped_day() -> None:
    count = add_working_days(ATW, date(2026, 4, 24), 18)
    kinds = {d.day.isoformat(): (d.kind, d.name) for d in count.skipped}
    assert kinds["2026-04-27"] == ("holiday", "Koningsdag")
    assert kinds["2026-05-05"] == ("holiday", "Bevrijdingsdag (5 mei)")
    assert kinds["2026-05-15"] == ("decree", "gelijkgestelde dag")
    assert kinds["2026-05-25"] == ("holiday", "Tweede Pinksterdag")
    assert sum(kind == "weekend" for kind, _ in kinds.values()) == 10
    assert len(count.skipped) + 18 == (count.end - count.start).days
    assert count.lines()[0] == "day 0: vrijdag 2026-04-24 (not counted)"
    assert count.lines()[-1] == "working day 18: woensdag 2026-05-27 (nl-atw)"


def test_a_friday_evening_event_counts_from_friday_and_a_saturday_night_one_from_saturday() -> None:
    friday_late = datetime(2026, 11, 20, 22, 30, tzinfo=UTC)  # 23:30 in Amsterdam, still Friday
    assert due_moment(ATW, friday_late, 1).count.start == date(2026, 11, 20)
    saturday_early = datetime(2026, 11, 20, 23, 30, tzinfo=UTC)  # 00:30 Saturday in Amsterdam
    due = due_moment(ATW, saturday_early, 1)
    assert due.count.start == date(2026, 11, 21) and due.count.end == date(2026, 11, 23)


def test_due_is_the_end_of_the_day_in_amsterdam_in_winter_and_in_summer() -> None:
    winter = due_moment(ATW, datetime(2026, 11, 23, 9, tzinfo=UTC), 1)
    assert winter.due_at == datetime(2026, 11, 24, 22, 59, 59, tzinfo=UTC)
    summer = due_moment(ATW, datetime(2026, 6, 1, 9, tzinfo=UTC), 1)
    assert summer.due_at == datetime(2026, 6, 2, 21, 59, 59, tzinfo=UTC)


def test_years_without_a_known_decree_warn() -> None:
    assert add_working_days(ATW, date(2026, 6, 1), 10).warnings == ()
    warned = add_working_days(ATW, date(2028, 12, 20), 10)
    assert len(warned.warnings) == 1 and "2029" in warned.warnings[0]
    assert any("2021" in w for w in add_working_days(ATW, date(2021, 3, 1), 5).warnings)
    assert add_working_days(HOLIDAYS, date(2030, 1, 1), 5).warnings == ()


@pytest.mark.parametrize("n", [-1, 2001, 1.5, True])
def test_bad_counts_are_refused(n: object) -> None:
    with pytest.raises(ValidationError, match="working days"):
        add_working_days(ATW, date(2026, 1, 1), n)  # type: ignore[arg-type]


def test_unsupported_years_and_reversed_ranges_are_refused() -> None:
    with pytest.raises(ValidationError, match="outside the supported years"):
        add_working_days(ATW, date(2013, 12, 31), 1)
    with pytest.raises(ValidationError, match="before"):
        working_days_between(ATW, date(2026, 2, 1), date(2026, 1, 1))
    with pytest.raises(ValidationError, match="not a calendar"):
        calendar_named("nl-bank")


def test_closures_layer_on_either_calendar() -> None:
    closures = [Closure("umcu", date(2026, 12, 31), "year-end closure"), Closure("other", date(2026, 12, 29), "x")]
    for name in ("nl-atw", "nl-holidays"):
        cal = calendar_named(name, "umcu", closures)
        off = cal.day_off(date(2026, 12, 31))
        assert off is not None and (off.kind, off.name) == ("closure", "year-end closure")
        assert cal.day_off(date(2026, 12, 29)) is None  # another organisation's closure
        assert cal.day_off(date(2026, 12, 25)).kind == "holiday"  # type: ignore[union-attr]
        assert add_working_days(cal, date(2026, 12, 30), 1).end == date(2027, 1, 4)


def test_calendars_are_built_once() -> None:
    calendars = Calendars()
    assert calendars("nl-holidays") is calendars("nl-holidays")


@given(st.dates(date(2014, 1, 1), date(2190, 1, 1)), st.integers(0, 300))
def test_counting_and_adding_agree(start: date, n: int) -> None:
    count = add_working_days(ATW, start, n)
    assert working_days_between(ATW, start, count.end).working_days == n
    if n:
        assert ATW.day_off(count.end) is None
        back = working_days_before(ATW, count.end, n)
        assert back == start if ATW.day_off(start) is None else back < start


# --- nl-business (issue 15): the 18-day Royal Doctors term is a service promise (seed 004) ---

BUSINESS = calendar_named("nl-business")


@pytest.mark.parametrize(
    ("day", "off"),
    [
        ("2026-04-03", False),  # Goede Vrijdag: a working day for most employers
        ("2026-05-05", False),  # 5 May outside a lustrum year
        ("2026-05-15", False),  # an ATW decree day (Besluit gelijkstelling 2026-2028)
        ("2026-01-02", False),  # another decree day
        ("2026-04-06", True),  # Tweede Paasdag
        ("2026-04-27", True),  # Koningsdag
        ("2026-05-14", True),  # Hemelvaartsdag
        ("2026-05-25", True),  # Tweede Pinksterdag
        ("2026-12-25", True),
        ("2025-05-05", True),  # 5 May in the lustrum year 2025
        ("2030-05-06", False),  # the Monday after the lustrum 5 May 2030 (a Sunday): no moving
        ("2025-04-26", True),  # Koningsdag on the 26th when the 27th is a Sunday
    ],
)
def test_business_calendar_days(day: str, off: bool) -> None:
    found = BUSINESS.day_off(date.fromisoformat(day))
    assert (found is not None and found.kind == "holiday") is off, found


# The weekdays on which the two calendars disagree, written out by hand: Goede Vrijdag, 5 May
# when it is a weekday outside a lustrum year, and the decree days.
ATW_ONLY = {
    2024: {"03-29", "05-10", "12-27"},  # 5 May 2024 is a Sunday
    2025: {"04-18", "05-30"},  # 5 May 2025 is a lustrum: off on both
    2026: {"01-02", "04-03", "05-05", "05-15"},
    2027: {"03-26", "05-05", "05-07"},
    2028: {"04-14", "04-28", "05-05", "05-26"},
}


@pytest.mark.parametrize("year", sorted(ATW_ONLY))
def test_business_calendar_differs_from_atw_exactly_on_good_friday_5_may_and_decree_days(year: int) -> None:
    differ = {d.strftime("%m-%d") for d in _year(year) if (ATW.day_off(d) is None) != (BUSINESS.day_off(d) is None)}
    assert differ == ATW_ONLY[year]
    assert all(BUSINESS.day_off(date.fromisoformat(f"{year}-{d}")) is None for d in differ)


def test_business_explanation_names_every_skipped_day_and_no_warning() -> None:
    count = add_working_days(BUSINESS, date(2026, 4, 24), 18)
    kinds = {d.day.isoformat(): (d.kind, d.name) for d in count.skipped}
    assert kinds["2026-04-27"] == ("holiday", "Koningsdag")
    assert kinds["2026-05-14"] == ("holiday", "Hemelvaartsdag")
    assert "2026-05-05" not in kinds and "2026-05-15" not in kinds
    assert len(count.skipped) + 18 == (count.end - count.start).days
    assert count.warnings == () and BUSINESS.warnings(date(2031, 1, 1), date(2032, 1, 1)) == ()
    assert count.lines()[-1] == "working day 18: vrijdag 2026-05-22 (nl-business)"
    assert any("Koningsdag" in line and "not statute" in line for line in count.lines())


def test_closures_layer_on_the_business_calendar_too() -> None:
    cal = calendar_named("nl-business", "umcu", [Closure("umcu", date(2026, 5, 5), "bevrijdingsdag: closed")])
    off = cal.day_off(date(2026, 5, 5))
    assert off is not None and off.kind == "closure" and cal.name == "nl-business+umcu"


def test_each_shipped_policy_names_its_calendar() -> None:
    from workflow.deadlines.calendars import CALENDARS
    from workflow.deadlines.policies import POLICIES, policy_named

    assert policy_named("royal-doctors-report").calendar == "nl-business"  # type: ignore[union-attr]
    assert policy_named("domestic-dossier").calendar == "nl-atw"  # type: ignore[union-attr]
    assert all(p.calendar in CALENDARS for p in POLICIES)


def _rd_event(event: str, at: datetime, existing: dict[str, object], calendars: object) -> object:
    from workflow.deadlines.policies import POLICIES, on_event

    (row,) = on_event(POLICIES, calendars, case_id="c1", route="royal-doctors", event=event, terminal=False,  # type: ignore[arg-type]
                      at=at, now=at, existing=existing)  # type: ignore[arg-type]  # fmt: skip
    return row


def test_a_running_deadline_keeps_the_calendar_it_started_on() -> None:
    """A Royal Doctors deadline started on nl-atw (before the switch) is paused and resumed after
    it: it stays on nl-atw, and so does its rebuild from the audit trail."""
    from dataclasses import replace

    from workflow.deadlines.policies import POLICIES, Deadline, calendar_of, policy_named, replay_deadlines

    calendars = Calendars("umcu", [Closure("umcu", date(2026, 5, 20), "study day")])
    received = datetime(2026, 4, 24, 10, tzinfo=UTC)
    new = _rd_event("receive_dossier", received, {}, calendars)
    assert isinstance(new, Deadline) and new.calendar == "nl-business+umcu"
    # as the old release wrote it
    old = replace(new, calendar="nl-atw+umcu",
                  due_at=due_moment(calendars("nl-atw"), received, 18).due_at)  # fmt: skip
    assert calendar_of(old, calendars) is calendars("nl-atw")

    paused = _rd_event("request_information", datetime(2026, 4, 30, 9, tzinfo=UTC), {old.policy: old}, calendars)
    resumed_at = datetime(2026, 5, 4, 9, tzinfo=UTC)
    resumed = _rd_event("receive_information", resumed_at, {old.policy: paused}, calendars)  # type: ignore[dict-item]
    assert isinstance(resumed, Deadline) and resumed.calendar == "nl-atw+umcu"
    # 2026-04-27 (Koningsdag) is off on both: 3 working days used by 30 April, 15 left from 4 May
    assert resumed.working_days == 15
    assert resumed.due_at == due_moment(calendars("nl-atw"), resumed_at, 15).due_at
    assert resumed.due_at != due_moment(calendars("nl-business"), resumed_at, 15).due_at

    class Record:
        def __init__(self, event: str, at: datetime) -> None:
            self.case_id, self.outcome, self.event, self.to_state = "c1", "accepted", event, "x"
            self.occurred_at = self.recorded_at = at
            self.payload: dict[str, str] = {}

    records = [Record("receive_dossier", received), Record("request_information", datetime(2026, 4, 30, 9, tzinfo=UTC)),
               Record("receive_information", resumed_at)]  # fmt: skip
    rebuilt = replay_deadlines(records, "royal-doctors", POLICIES, calendars, (), {old.policy: old.calendar})
    assert rebuilt[old.policy].calendar == "nl-atw+umcu" and rebuilt[old.policy].due_at == resumed.due_at
    fresh = replay_deadlines(records, "royal-doctors", POLICIES, calendars, ())
    assert fresh[old.policy].calendar == "nl-business+umcu"
    assert policy_named(old.policy) is not None
