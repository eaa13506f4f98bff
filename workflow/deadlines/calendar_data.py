"""The Dutch calendars as data: the Algemene termijnenwet (ATW) with its decrees, and the
business calendar of the national holidays Dutch employers commonly observe.

ATW art. 3 lid 1 names the "algemeen erkende feestdagen": Nieuwjaarsdag, tweede Paas- en
Pinksterdag, beide Kerstdagen, Hemelvaartsdag, the day the King's birthday is celebrated
(Koningsdag: 27 April, or 26 April when the 27th is a Sunday) and 5 May, every year. Lid 2 adds
Goede Vrijdag. Lid 3 lets the government make further days equal to them; it does so by a
decree for three years at a time (Besluit gelijkstelling), published in the Staatscourant.
Weekends never count as working days (ATW art. 1). Easter Sunday and Whit Sunday are Sundays.

Where this differs from the ``holidays`` package's NL calendar: 5 May counts every year (the
package only in lustrum years), and the decree days (such as the Friday after Ascension Day)
are not in the package at all.

The business calendar (:data:`BUSINESS_DAYS`) is for terms that are a service promise, not a
statutory term (the ATW applies only to terms set by law): Goede Vrijdag, 5 May outside lustrum
years and the decree days are working days for most employers, so it leaves them out. 5 May is a
day off only in lustrum years (2025, 2030, ...), the years most collective agreements give it.

A new decree is one row in :data:`DECREES`. Years that no decree row covers are answered with
a warning that the result may change (:mod:`workflow.deadlines.calendars`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

ATW_SOURCE = "Algemene termijnenwet (Stb. 1964, 314)"


@dataclass(frozen=True)
class StatutoryDay:
    """One ATW feestdag, as a fixed date or as days after Easter Sunday."""

    name: str
    month_day: tuple[int, int] | None = None
    after_easter: int | None = None
    article: str = "art. 3 lid 1"


STATUTORY_DAYS = (
    StatutoryDay("Nieuwjaarsdag", month_day=(1, 1)),
    StatutoryDay("Goede Vrijdag", after_easter=-2, article="art. 3 lid 2"),
    StatutoryDay("Tweede Paasdag", after_easter=1),
    StatutoryDay("Koningsdag", month_day=(4, 27)),  # the 26th when the 27th is a Sunday: see calendars.py
    StatutoryDay("Bevrijdingsdag (5 mei)", month_day=(5, 5)),
    StatutoryDay("Hemelvaartsdag", after_easter=39),
    StatutoryDay("Tweede Pinksterdag", after_easter=50),
    StatutoryDay("Eerste Kerstdag", month_day=(12, 25)),
    StatutoryDay("Tweede Kerstdag", month_day=(12, 26)),
)

BUSINESS_SOURCE = "Dutch employers' national holidays (custom, not statute)"


@dataclass(frozen=True)
class BusinessDay:
    """One holiday of the business calendar; ``every_years`` > 1 means only in years divisible by it."""

    name: str
    month_day: tuple[int, int] | None = None
    after_easter: int | None = None
    every_years: int = 1
    note: str = "every year"


BUSINESS_DAYS = (
    BusinessDay("Nieuwjaarsdag", month_day=(1, 1)),
    BusinessDay("Tweede Paasdag", after_easter=1),
    BusinessDay("Koningsdag", month_day=(4, 27)),  # the 26th when the 27th is a Sunday, as under the ATW
    BusinessDay("Bevrijdingsdag (lustrum)", month_day=(5, 5), every_years=5,
                note="lustrum years only (2025, 2030, ...), as most collective agreements give it"),
    BusinessDay("Hemelvaartsdag", after_easter=39),
    BusinessDay("Tweede Pinksterdag", after_easter=50),
    BusinessDay("Eerste Kerstdag", month_day=(12, 25)),
    BusinessDay("Tweede Kerstdag", month_day=(12, 26)),
)  # fmt: skip
"""Not here, on purpose: Goede Vrijdag, 5 May outside lustrum years, and the ATW decree days."""

FIRST_YEAR = 2014
"""Koningsdag replaced Koninginnedag (30 April) in 2014; earlier years are refused, not guessed."""


@dataclass(frozen=True)
class Decree:
    """A Besluit gelijkstelling (ATW art. 3 lid 3): the days it makes equal to feestdagen."""

    title: str
    years: tuple[int, ...]
    days: tuple[date, ...]
    source: str


DECREES = (
    Decree(
        "Besluit gelijkstelling van 28 april en 26 mei 2017, 11 mei en 24 en 31 december 2018 en 31 mei en "
        "27 december 2019 met een algemeen erkende feestdag (Besluit van 24 oktober 2016, nr. 2016001827)",
        years=(2017, 2018, 2019),
        days=(date(2017, 4, 28), date(2017, 5, 26), date(2018, 5, 11), date(2018, 12, 24), date(2018, 12, 31),
              date(2019, 5, 31), date(2019, 12, 27)),
        source="text read on wetten.overheid.nl, BWBR0038666",
    ),
    Decree(
        "Besluit gelijkstelling van 28 april 2023, 19 mei 2023, 10 mei 2024, 27 december 2024 en 30 mei 2025 "
        "met een algemeen erkende feestdag",
        years=(2023, 2024, 2025),
        days=(date(2023, 4, 28), date(2023, 5, 19), date(2024, 5, 10), date(2024, 12, 27), date(2025, 5, 30)),
        source="citation title as quoted by sterfgeval.nl (question 70745, 4 October 2025); the Staatscourant "
        "text itself was not reachable",
    ),
    Decree(
        "Besluit gelijkstelling van 2 januari 2026, 15 mei 2026, 7 mei 2027, 28 april 2028 en 26 mei 2028 "
        "met een algemeen erkende feestdag",
        years=(2026, 2027, 2028),
        days=(date(2026, 1, 2), date(2026, 5, 15), date(2027, 5, 7), date(2028, 4, 28), date(2028, 5, 26)),
        source="citation title as quoted by sterfgeval.nl (question 70745, 4 October 2025); the Staatscourant "
        "text itself was not reachable",
    ),
)  # fmt: skip
