"""Working-day calendars and the one counting rule every deadline uses.

The counting rule (:func:`due_moment`): day 0 is the date, in Europe/Amsterdam, of the event that
starts the clock, whatever its hour; the deadline is the end (23:59:59 Europe/Amsterdam) of the
Nth working day after day 0. :func:`add_working_days` and :func:`working_days_between` are its
two halves, and they agree: ``working_days_between(d, add_working_days(d, n).end) == n``.

Calendars say why a day is not a working day (:class:`DayOff`), so that every computed date can
be explained day by day to a patient or an auditor:

- ``nl-atw`` (the default): weekends, the Algemene termijnenwet's feestdagen and the decree days
  of :mod:`workflow.deadlines.calendar_data`; a year no decree covers gets a warning.
- ``nl-business``: weekends and the national holidays Dutch employers commonly observe
  (:data:`~workflow.deadlines.calendar_data.BUSINESS_DAYS`), for terms that are a service
  promise rather than a statutory term; no decree days, so no warnings.
- ``nl-holidays``: weekends and the ``holidays`` package's NL calendar.
- either of them with an organisation's own closures layered on top (:class:`WithClosures`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any, Protocol

from dateutil.easter import easter

from workflow.clock import AMSTERDAM, as_utc, utc_iso
from workflow.deadlines.calendar_data import (
    ATW_SOURCE,
    BUSINESS_DAYS,
    BUSINESS_SOURCE,
    DECREES,
    FIRST_YEAR,
    STATUTORY_DAYS,
    BusinessDay,
    StatutoryDay,
)
from workflow.errors import ValidationError

LAST_YEAR = 2199
_DECREE_YEARS = frozenset(year for decree in DECREES for year in decree.years)
MAX_WORKING_DAYS = 2000
WEEKDAYS_NL = ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag")


@dataclass(frozen=True)
class DayOff:
    """A day that does not count, and why: ``kind`` is weekend, holiday, decree or closure."""

    day: date
    kind: str
    name: str
    source: str

    def as_dict(self) -> dict[str, str]:
        return {"date": self.day.isoformat(), "kind": self.kind, "name": self.name, "source": self.source}


class Calendar(Protocol):
    name: str

    def __hash__(self) -> int:
        """Calendars are immutable and hashable: answers are cached per calendar."""
        ...

    def day_off(self, day: date) -> DayOff | None:
        """Why ``day`` is not a working day, or None when it is one."""
        ...

    def warnings(self, first: date, last: date) -> tuple[str, ...]:
        """Caveats for answers that depend on days between ``first`` and ``last``."""
        ...


def _weekend(day: date) -> DayOff | None:
    if day.weekday() < 5:
        return None
    return DayOff(day, "weekend", WEEKDAYS_NL[day.weekday()], "weekend")


def _date_of(rule: StatutoryDay | BusinessDay, year: int) -> date:
    """The date of a fixed or Easter-bound holiday in ``year`` (Koningsdag moves to the 26th
    when the 27th is a Sunday, in both calendars)."""
    if rule.month_day is not None:
        day = date(year, *rule.month_day)
        if rule.name == "Koningsdag" and day.weekday() == 6:
            day = day - timedelta(days=1)
        return day
    assert rule.after_easter is not None
    return easter(year) + timedelta(days=rule.after_easter)


@lru_cache(maxsize=256)
def atw_days(year: int) -> Mapping[date, DayOff]:
    """The ATW feestdagen and decree days of one year."""
    days: dict[date, DayOff] = {}
    for rule in STATUTORY_DAYS:
        day = _date_of(rule, year)
        days[day] = DayOff(day, "holiday", rule.name, f"{ATW_SOURCE}, {rule.article}")
    for decree in DECREES:
        for day in decree.days:
            if day.year == year:
                days[day] = DayOff(day, "decree", "gelijkgestelde dag", decree.title)
    return days


def _check_year(day: date) -> None:
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise ValidationError("date", f"{day.isoformat()} is outside the supported years {FIRST_YEAR}-{LAST_YEAR}")


class AtwCalendar:
    """The Algemene termijnenwet with the decrees known to this release."""

    name = "nl-atw"

    def day_off(self, day: date) -> DayOff | None:
        _check_year(day)
        return atw_days(day.year).get(day) or _weekend(day)

    def warnings(self, first: date, last: date) -> tuple[str, ...]:
        covered = _DECREE_YEARS
        return tuple(
            f"no Besluit gelijkstelling for {year} is known to this release: days the government makes equal to "
            "feestdagen for that year are not counted, so the result may change when the decree is published"
            for year in range(first.year, last.year + 1)
            if year not in covered
        )


@lru_cache(maxsize=256)
def business_days(year: int) -> Mapping[date, DayOff]:
    """The business calendar's holidays of one year."""
    days: dict[date, DayOff] = {}
    for rule in BUSINESS_DAYS:
        if year % rule.every_years == 0:
            day = _date_of(rule, year)
            days[day] = DayOff(day, "holiday", rule.name, f"{BUSINESS_SOURCE}, {rule.note}")
    return days


class BusinessCalendar:
    """The national holidays Dutch employers commonly observe: for a term that is a service
    promise, where Goede Vrijdag, 5 May outside lustrum years and decree days are working days."""

    name = "nl-business"

    def day_off(self, day: date) -> DayOff | None:
        _check_year(day)
        return business_days(day.year).get(day) or _weekend(day)

    def warnings(self, first: date, last: date) -> tuple[str, ...]:
        return ()


class HolidaysCalendar:
    """The ``holidays`` package's NL calendar, for organisations that count that way."""

    name = "nl-holidays"

    def __init__(self) -> None:
        self._years: dict[int, Mapping[date, str]] = {}

    def day_off(self, day: date) -> DayOff | None:
        _check_year(day)
        if day.year not in self._years:
            import holidays  # a large package: loaded by the calendar that uses it, not by every command

            self._years[day.year] = dict(holidays.country_holidays("NL", years=day.year, language="nl"))
        named = self._years[day.year].get(day)
        if named is not None:
            return DayOff(day, "holiday", named, "holidays package, NL")
        return _weekend(day)

    def warnings(self, first: date, last: date) -> tuple[str, ...]:
        return ()


@dataclass(frozen=True)
class Closure:
    """A day an organisation is closed, on top of its calendar (organisation data, not law)."""

    organisation: str
    day: date
    reason: str


class WithClosures:
    """A calendar plus one organisation's closure days."""

    def __init__(self, base: Calendar, organisation: str, closures: Mapping[date, Closure]) -> None:
        self.base = base
        self.organisation = organisation
        self.closures = closures
        self.name = f"{base.name}+{organisation}"

    def day_off(self, day: date) -> DayOff | None:
        off = self.base.day_off(day)
        closure = self.closures.get(day)
        if off is None and closure is not None:
            return DayOff(day, "closure", closure.reason, f"closures of {self.organisation}")
        return off

    def warnings(self, first: date, last: date) -> tuple[str, ...]:
        return self.base.warnings(first, last)


CALENDARS: Mapping[str, Callable[[], Calendar]] = {
    "nl-atw": AtwCalendar,
    "nl-business": BusinessCalendar,
    "nl-holidays": HolidaysCalendar,
}
DEFAULT_CALENDAR = "nl-atw"


def calendar_named(name: str, organisation: str | None = None, closures: Iterable[Closure] = ()) -> Calendar:
    """A calendar by name, with ``organisation``'s closures (from ``closures``) layered on."""
    if name not in CALENDARS:
        raise ValidationError("calendar", f"{name!r} is not a calendar; known: {', '.join(CALENDARS)}")
    base = CALENDARS[name]()
    if organisation is None:
        return base
    own = {c.day: c for c in closures if c.organisation == organisation}
    return WithClosures(base, organisation, own)


def base_name(stored: str) -> str:
    """The calendar name a stored deadline was computed on, without its organisation
    (``nl-atw+umcu-desk`` -> ``nl-atw``): base names never contain ``+``."""
    return stored.split("+", 1)[0]


class Calendars:
    """Calendars by name, built once (the holidays calendar caches its years), each with the
    deployment's own organisation closures layered on when one is configured."""

    def __init__(self, organisation: str | None = None, closures: Iterable[Closure] = ()) -> None:
        self._organisation = organisation
        self._closures = tuple(closures)
        self._built: dict[str, Calendar] = {}

    def __call__(self, name: str) -> Calendar:
        if name not in self._built:
            self._built[name] = calendar_named(name, self._organisation, self._closures)
        return self._built[name]


@dataclass(frozen=True)
class Count:
    """A working-day count with every day it skipped, so the answer explains itself."""

    calendar: str
    start: date
    end: date
    working_days: int
    skipped: tuple[DayOff, ...]
    warnings: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "calendar": self.calendar,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "working_days": self.working_days,
            "skipped": [d.as_dict() for d in self.skipped],
            "warnings": list(self.warnings),
        }

    def lines(self) -> list[str]:
        """The explanation as lines a person reads."""
        out = [f"day 0: {_dutch(self.start)} (not counted)"]
        out += [f"skipped {_dutch(d.day)}: {d.kind}, {d.name} ({d.source})" for d in self.skipped]
        out.append(f"working day {self.working_days}: {_dutch(self.end)} ({self.calendar})")
        out += [f"warning: {w}" for w in self.warnings]
        return out


def _dutch(day: date) -> str:
    return f"{WEEKDAYS_NL[day.weekday()]} {day.isoformat()}"


def _check_count(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_WORKING_DAYS:
        raise ValidationError("working days", f"{n!r} must be a whole number from 0 to {MAX_WORKING_DAYS}")


def _walk(calendar: Calendar, start: date, n: int | None = None, end: date | None = None) -> Count:
    """Step day by day after ``start`` until ``n`` working days are counted or ``end`` is reached,
    keeping every day skipped: the one loop behind both halves of the counting rule."""
    day, counted, skipped = start, 0, []
    while (counted < n) if n is not None else (day < (end or start)):
        day += timedelta(days=1)
        off = calendar.day_off(day)
        if off is None:
            counted += 1
        else:
            skipped.append(off)
    return Count(calendar.name, start, day, counted, tuple(skipped), calendar.warnings(start, day))


def add_working_days(calendar: Calendar, start: date, n: int) -> Count:
    """The Nth working day after ``start`` (``start`` itself is day 0 and never counts)."""
    _check_count(n)
    _check_year(start)
    return _added(calendar, start, n)


@lru_cache(maxsize=4096)
def _added(calendar: Calendar, start: date, n: int) -> Count:
    # a calendar never changes once built (new calendar data is a new release), so every
    # deadline that starts on one day with one length shares the count and its explanation
    return _walk(calendar, start, n=n)


def working_days_between(calendar: Calendar, start: date, end: date) -> Count:
    """How many working days lie after ``start`` up to and including ``end``."""
    _check_year(start)
    _check_year(end)
    if end < start:
        raise ValidationError("dates", f"{end.isoformat()} is before {start.isoformat()}; give FROM first")
    return _walk(calendar, start, end=end)


def local_date(at: datetime) -> date:
    return as_utc(at, "timestamp").astimezone(AMSTERDAM).date()


def end_of_day(day: date) -> datetime:
    """23:59:59 Europe/Amsterdam of ``day``, as UTC (DST handled by the zone database)."""
    return as_utc(datetime.combine(day, time(23, 59, 59), AMSTERDAM), "due")


@dataclass(frozen=True)
class Due:
    """A due moment and how it was computed."""

    started_at: datetime
    due_at: datetime
    count: Count

    def as_dict(self) -> dict[str, Any]:
        return {"started_at": utc_iso(self.started_at), "due_at": utc_iso(self.due_at), **self.count.as_dict()}


def due_moment(calendar: Calendar, started_at: datetime, n: int) -> Due:
    """The counting rule: end of the Nth working day after the Amsterdam date of ``started_at``."""
    count = add_working_days(calendar, local_date(started_at), n)
    return Due(as_utc(started_at, "start"), end_of_day(count.end), count)


def working_days_before(calendar: Calendar, day: date, n: int) -> date:
    """The working day ``n`` working days before ``day`` (``day`` itself when n is 0)."""
    _check_count(n)
    counted = 0
    while counted < n:
        day -= timedelta(days=1)
        if calendar.day_off(day) is None:
            counted += 1
    return day
