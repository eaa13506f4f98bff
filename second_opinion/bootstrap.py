"""Wiring: a storage URL and a clock in, a ready :class:`~workflow.service.CaseService` out."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from storage import DEFAULT_URL, initialise, open_backend
from workflow.clock import Clock, FixedClock, SystemClock, parse_instant
from workflow.errors import ConfigurationError
from workflow.service import CaseService

ENV_DB = "SECOND_OPINION_DB"
ENV_CLOCK = "SECOND_OPINION_CLOCK"
ENV_SECRET = "SECOND_OPINION_SECRET"
ENV_SECRET_FILE = "SECOND_OPINION_SECRET_FILE"
MIN_SECRET_BYTES = 32


def database_url(url: str | None = None, env: Mapping[str, str] = os.environ) -> str:
    """The explicit URL, else ``$SECOND_OPINION_DB``, else the SQLite file in the working directory."""
    return url or env.get(ENV_DB) or DEFAULT_URL


def clock_from_env(env: Mapping[str, str] = os.environ) -> Clock:
    """``SECOND_OPINION_CLOCK=<ISO datetime with offset>`` pins "now" for scripts and as-of runs."""
    pinned = env.get(ENV_CLOCK)
    return FixedClock(parse_instant(pinned, ENV_CLOCK)) if pinned else SystemClock()


def identity_key_from_env(env: Mapping[str, str] = os.environ) -> bytes | None:
    """The key for BSN hashes: ``$SECOND_OPINION_SECRET``, or the bytes of the file named by
    ``$SECOND_OPINION_SECRET_FILE``. It lives outside the database on purpose: a stolen
    database then holds no way to test a guessed BSN against the stored hashes."""
    if env.get(ENV_SECRET):
        key = env[ENV_SECRET].encode()
        source = ENV_SECRET
    elif env.get(ENV_SECRET_FILE):
        try:
            key = Path(env[ENV_SECRET_FILE]).read_bytes().strip()
        except OSError as exc:
            raise ConfigurationError(ENV_SECRET_FILE, f"cannot read the key file ({exc.strerror})") from None
        source = ENV_SECRET_FILE
    else:
        return None
    if len(key) < MIN_SECRET_BYTES:
        raise ConfigurationError(source, f"the key must be at least {MIN_SECRET_BYTES} bytes (got {len(key)})")
    return key


def connect(url: str | None = None, *, clock: Clock | None = None, identity_key: bytes | None = None) -> CaseService:
    """Open the case service on an initialised database (``memory://`` needs no init).

    >>> from second_opinion import connect
    >>> service = connect("memory://")
    """
    key = identity_key if identity_key is not None else identity_key_from_env()
    backend = open_backend(database_url(url))
    return CaseService(backend.unit_of_work, clock or clock_from_env(), on_close=backend.close, identity_key=key)


def init(url: str | None = None) -> str:
    """Create or upgrade the schema; returns the schema revision now in place."""
    return initialise(database_url(url))
