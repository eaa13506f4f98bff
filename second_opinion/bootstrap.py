"""Wiring: a storage URL and a clock in, a ready :class:`~workflow.service.CaseService` out."""

from __future__ import annotations

import os
from collections.abc import Mapping

from storage import DEFAULT_URL, initialise, open_backend
from workflow.clock import Clock, FixedClock, SystemClock, parse_instant
from workflow.service import CaseService

ENV_DB = "SECOND_OPINION_DB"
ENV_CLOCK = "SECOND_OPINION_CLOCK"


def database_url(url: str | None = None, env: Mapping[str, str] = os.environ) -> str:
    """The explicit URL, else ``$SECOND_OPINION_DB``, else the SQLite file in the working directory."""
    return url or env.get(ENV_DB) or DEFAULT_URL


def clock_from_env(env: Mapping[str, str] = os.environ) -> Clock:
    """``SECOND_OPINION_CLOCK=<ISO datetime with offset>`` pins "now" for scripts and as-of runs."""
    pinned = env.get(ENV_CLOCK)
    return FixedClock(parse_instant(pinned, ENV_CLOCK)) if pinned else SystemClock()


def connect(url: str | None = None, *, clock: Clock | None = None) -> CaseService:
    """Open the case service on an initialised database (``memory://`` needs no init).

    >>> from second_opinion import connect
    >>> service = connect("memory://")
    """
    backend = open_backend(database_url(url))
    return CaseService(backend.unit_of_work, clock or clock_from_env(), on_close=backend.close)


def init(url: str | None = None) -> str:
    """Create or upgrade the schema; returns the schema revision now in place."""
    return initialise(database_url(url))
