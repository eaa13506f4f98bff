"""The one source of "now".

Deadlines and audit timestamps must be reproducible: a test, a replayed script or a deadline
job run "as of" a chosen moment all need the same answer to "what time is it". So nothing in
the library calls ``datetime.now()`` except :class:`SystemClock`; everything else is handed a
:class:`Clock`. Times are always timezone-aware UTC; conversion to Europe/Amsterdam happens
only where a person reads them (:func:`local`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from workflow.errors import ClockBehind, ValidationError

UTC = UTC
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
DEFAULT_TOLERANCE = timedelta(seconds=2)
"""How far behind the last record the clock may read and still be trusted (see :func:`forward`)."""


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    """Wall-clock time (freezegun can freeze it in tests)."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that stands still until told to move: for tests, scripts and "as of" runs."""

    def __init__(self, at: datetime) -> None:
        self._at = as_utc(at, "clock time")

    def now(self) -> datetime:
        return self._at

    def advance(self, delta: timedelta) -> datetime:
        self._at = self._at + delta
        return self._at

    def set(self, at: datetime) -> None:
        self._at = as_utc(at, "clock time")


def forward(now: datetime, last: datetime | None, tolerance: timedelta, what: str = "record") -> datetime:
    """The time a new record may carry after one recorded at ``last``: never earlier.

    Records are exported and read "from a moment on", so their ``recorded_at`` must only move
    forward in the order they are stored. Two servers whose clocks differ by a few milliseconds
    (or one clock stepped back by NTP) read slightly behind the last record: within ``tolerance``
    the record takes the last record's time, which keeps the order. Further behind, the clock
    itself is wrong, and :class:`~workflow.errors.ClockBehind` refuses before anything is written.
    """
    if last is None or now >= last:
        return now
    behind = last - now
    if behind > tolerance:
        raise ClockBehind(utc_iso(now), utc_iso(last), behind.total_seconds(), what)
    return last


def as_utc(value: datetime, what: str) -> datetime:
    """Normalise an aware datetime to UTC; a naive one is ambiguous and refused."""
    if value.tzinfo is UTC:  # the common case (every stored and computed instant): nothing to do
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(what, f"{value.isoformat()} has no timezone; give an offset such as +01:00 or Z")
    return value.astimezone(UTC)


def parse_instant(text: str, what: str) -> datetime:
    """Parse an ISO 8601 timestamp with an explicit offset, as users type it."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValidationError(
            what, f"{text!r} is not an ISO 8601 timestamp such as 2026-11-23T09:30:00+01:00"
        ) from None
    try:
        return as_utc(value, what)
    except OverflowError:
        raise ValidationError(what, f"{text!r} is out of the range of representable times") from None


def utc_iso(value: datetime) -> str:
    """UTC, microsecond precision, 'Z' suffix: one spelling per instant, whatever the backend.

    The audit hash is computed over this text, so it must not vary with how a backend hands a
    timestamp back (offset, precision, tz object).
    """
    # isoformat with fixed microseconds equals strftime("%Y-%m-%dT%H:%M:%S.%fZ"), several times faster;
    # an instant already in UTC ends in "+00:00", which is cut rather than converted away
    if value.tzinfo is UTC:
        return value.isoformat(timespec="microseconds")[:-6] + "Z"
    return as_utc(value, "timestamp").replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def local(value: datetime) -> datetime:
    """The same instant as a Dutch reader sees it."""
    return value.astimezone(AMSTERDAM)
