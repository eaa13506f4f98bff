"""Wiring: a storage URL and a clock in, a ready :class:`~workflow.service.cases.CaseService` out."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from storage import DEFAULT_URL, Backend, Timeouts, initialise, open_backend
from workflow.cases.definitions import DEFINITION
from workflow.cases.engine import Engine
from workflow.cases.providers import ProviderVersion, contact_problems
from workflow.clock import DEFAULT_TOLERANCE, Clock, FixedClock, SystemClock, parse_instant
from workflow.deadlines.calendars import Calendars, Closure
from workflow.deadlines.policies import POLICIES, DeadlinePolicy
from workflow.errors import ConfigurationError, ValidationError
from workflow.privacy import contains_bsn
from workflow.service import inputs
from workflow.service.cases import CaseService
from workflow.service.deadlines import Channel, DeadlineService
from workflow.service.runtime import Runtime

from .limits import Limits, Monotonic, Rate

if TYPE_CHECKING:
    from fastapi import FastAPI

ENV_DB = "SECOND_OPINION_DB"
ENV_CLOCK = "SECOND_OPINION_CLOCK"
ENV_CLOCK_TOLERANCE = "SECOND_OPINION_CLOCK_TOLERANCE"
MAX_CLOCK_TOLERANCE = 3600.0
ENV_SECRET = "SECOND_OPINION_SECRET"
ENV_SECRET_FILE = "SECOND_OPINION_SECRET_FILE"
ENV_RATE_TOKEN = "SECOND_OPINION_RATE_TOKEN"
ENV_RATE_CASE = "SECOND_OPINION_RATE_CASE"
ENV_RATE_AUTH_FAILURES = "SECOND_OPINION_RATE_AUTH_FAILURES"
ENV_RATE_READ = "SECOND_OPINION_RATE_READ"
ENV_RATE_CASE_TOKEN = "SECOND_OPINION_RATE_CASE_TOKEN"
RATE_DEFAULTS = {ENV_RATE_TOKEN: "120/60", ENV_RATE_CASE: "30/60", ENV_RATE_AUTH_FAILURES: "20/60",
                 ENV_RATE_READ: "600/60", ENV_RATE_CASE_TOKEN: "10/60"}  # fmt: skip
"""Writes per token (an integration may open a case every half second, in bursts of 120), writes
per case (a case's whole life is some twenty commands over weeks: no one fires thirty in a minute),
writes per token on one case (a third of the case's: one flooder, a patient on their own case say,
cannot hold the case's other parties off it), failed authentications per client address (a
misconfigured client retries a few times; a guesser is slowed to one a few seconds), reads per
token (a dashboard polling every few seconds). Each ``COUNT/SECONDS``, or ``0``/``off``; see docs/api.md."""
ENV_WEBHOOK = "SECOND_OPINION_WEBHOOK_URL"
ENV_CLOSURES = "SECOND_OPINION_CLOSURES"
ENV_ORGANISATION = "SECOND_OPINION_ORGANISATION"
ENV_SEND_TIMEOUT = "SECOND_OPINION_SEND_TIMEOUT"
ENV_WEBHOOK_LOCAL_HTTP = "SECOND_OPINION_WEBHOOK_ALLOW_LOCAL_HTTP"
MAX_SEND_TIMEOUT = 60.0
ENV_DB_LOCK_TIMEOUT = "SECOND_OPINION_DB_LOCK_TIMEOUT"
ENV_DB_STATEMENT_TIMEOUT = "SECOND_OPINION_DB_STATEMENT_TIMEOUT"
ENV_DB_IDLE_TIMEOUT = "SECOND_OPINION_DB_IDLE_TIMEOUT"
ENV_DB_POOL_TIMEOUT = "SECOND_OPINION_DB_POOL_TIMEOUT"
ENV_PROVIDER_CONTACTS = "SECOND_OPINION_PROVIDER_CONTACTS"
MAX_CONTACTS_BYTES = 64 * 1024
"""A contacts file holds a few lines per provider: a few KiB. Past this it is refused unread."""
MIN_SECRET_BYTES = 32
MAX_TIMEOUT_SECONDS = 3600


def database_url(url: str | None = None, env: Mapping[str, str] = os.environ) -> str:
    """The explicit URL, else ``$SECOND_OPINION_DB``, else the SQLite file in the working directory."""
    return url or env.get(ENV_DB) or DEFAULT_URL


def timeouts_from_env(env: Mapping[str, str] = os.environ) -> Timeouts:
    """The database's time bounds (:class:`storage.db.Timeouts`, where the defaults are argued),
    in seconds, each overridable: ``$SECOND_OPINION_DB_LOCK_TIMEOUT`` (a lock wait, on SQLite its
    busy timeout), ``_STATEMENT_TIMEOUT``, ``_IDLE_TIMEOUT`` (idle in a transaction) and
    ``_POOL_TIMEOUT`` (waiting for a pooled connection). Zero turns a PostgreSQL timeout off; the
    pool's must be above zero."""
    default = Timeouts()
    return Timeouts(
        lock=_seconds(env, ENV_DB_LOCK_TIMEOUT, default.lock),
        statement=_seconds(env, ENV_DB_STATEMENT_TIMEOUT, default.statement),
        idle_in_transaction=_seconds(env, ENV_DB_IDLE_TIMEOUT, default.idle_in_transaction),
        pool=_seconds(env, ENV_DB_POOL_TIMEOUT, default.pool, positive=True),
        connect=default.connect,
    )


def _seconds(env: Mapping[str, str], name: str, default: float, positive: bool = False) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    lowest = "above 0" if positive else "from 0"
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or (positive and value == 0) or value > MAX_TIMEOUT_SECONDS:
        problem = f"must be a number of seconds {lowest} to {MAX_TIMEOUT_SECONDS}, such as {default:g} (got {text!r})"
        raise ConfigurationError(name, problem)
    return value


def clock_from_env(env: Mapping[str, str] = os.environ) -> Clock:
    """``SECOND_OPINION_CLOCK=<ISO datetime with offset>`` pins "now" for scripts and as-of runs."""
    pinned = env.get(ENV_CLOCK)
    return FixedClock(parse_instant(pinned, ENV_CLOCK)) if pinned else SystemClock()


def clock_tolerance_from_env(env: Mapping[str, str] = os.environ) -> timedelta:
    """``SECOND_OPINION_CLOCK_TOLERANCE=<seconds>``: how far behind the last record the clock may
    read (the record then takes the last record's time) before writes are refused as
    ``ClockBehind``. Default 2 s: a few servers' NTP-synchronised clocks differ by milliseconds."""
    text = env.get(ENV_CLOCK_TOLERANCE, "").strip()
    if not text:
        return DEFAULT_TOLERANCE
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds <= MAX_CLOCK_TOLERANCE:  # also NaN
        problem = f"{text!r} is not a number of seconds from 0 to {MAX_CLOCK_TOLERANCE:g}"
        raise ConfigurationError(ENV_CLOCK_TOLERANCE, problem)
    return timedelta(seconds=seconds)


def identity_key_from_env(env: Mapping[str, str] = os.environ) -> bytes | None:
    """The key for BSN hashes: ``$SECOND_OPINION_SECRET``, or the bytes of the file named by
    ``$SECOND_OPINION_SECRET_FILE``. It lives outside the database on purpose: a stolen
    database then holds no way to test a guessed BSN against the stored hashes."""
    if env.get(ENV_SECRET):
        try:
            key = env[ENV_SECRET].encode()
        except UnicodeEncodeError:  # bytes that are not UTF-8 arrive as lone surrogates
            problem = f"is not UTF-8 text; put a key of raw bytes in a file named by ${ENV_SECRET_FILE}"
            raise ConfigurationError(ENV_SECRET, problem) from None
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


def limits_from_env(env: Mapping[str, str] = os.environ, monotonic: Monotonic | None = None) -> Limits:
    """The API's rate limits: ``$SECOND_OPINION_RATE_TOKEN``, ``_CASE``, ``_CASE_TOKEN``, ``_AUTH_FAILURES``
    and ``_READ``,
    each ``COUNT/SECONDS`` (or ``0``/``off``), defaults in :data:`RATE_DEFAULTS`. Per process."""
    rates = {name: Rate.parse(name, env.get(name) or default) for name, default in RATE_DEFAULTS.items()}
    return Limits.of(rates[ENV_RATE_TOKEN], rates[ENV_RATE_CASE], rates[ENV_RATE_AUTH_FAILURES], rates[ENV_RATE_READ],
                     rates[ENV_RATE_CASE_TOKEN], monotonic=monotonic or time.monotonic)  # fmt: skip


def load_closures(path: str | Path, source: str | None = None) -> list[Closure]:
    """Organisation closure days from a JSON file: a list of objects with ``organisation``,
    ``date`` (YYYY-MM-DD) and ``reason``. Any malformed entry refuses the whole file. Errors name
    the file, and ``source`` (the option or variable that named it) when given."""
    where = f"closures file {str(path)!r}"  # quoted: a typed path may hold a line break or undecodable bytes
    where += f" ({source})" if source else ""
    try:
        entries = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(where, f"cannot be read ({exc.strerror})") from None
    except ValueError as exc:
        raise ConfigurationError(where, f"is not JSON ({exc})") from None
    except RecursionError:
        raise ConfigurationError(where, "nests too deeply to be read") from None
    if not isinstance(entries, list):
        raise ConfigurationError(where, "must hold a JSON list of {organisation, date, reason} objects")
    closures = []
    for number, entry in enumerate(entries, start=1):
        try:
            day = date.fromisoformat(entry["date"])
            closures.append(Closure(str(entry["organisation"]), day, str(entry["reason"])))
        except (KeyError, TypeError, ValueError) as exc:
            problem = f"entry {number} needs organisation, date (YYYY-MM-DD) and reason ({exc})"
            raise ConfigurationError(where, problem) from None
    return closures


ProviderContacts = Mapping[str, Mapping[str, str]]
"""An operator's contact values, ``{provider id: {contact field: text}}``; the fields a provider
declares (:class:`~workflow.cases.providers.ContactField`) and it leaves out keep the seed's value."""


def load_provider_contacts(
    path: str | Path, providers: Sequence[ProviderVersion] = DEFINITION.providers, source: str | None = None
) -> ProviderContacts:
    """The operator's contact values from a JSON file shaped ``{"provider-id": {"field": "text"}}``,
    checked against the provider table (:func:`~workflow.cases.providers.contact_problems`). Any
    problem refuses the whole file, naming the file (and ``source``, the variable that named it);
    a file over :data:`MAX_CONTACTS_BYTES` is refused before it is parsed."""
    where = f"provider contacts file {str(path)!r}" + (f" ({source})" if source else "")
    try:
        with open(path, "rb") as file:
            raw = file.read(MAX_CONTACTS_BYTES + 1)
    except OSError as exc:
        raise ConfigurationError(where, f"cannot be read ({exc.strerror})") from None
    if len(raw) > MAX_CONTACTS_BYTES:
        raise ConfigurationError(where, f"is over {MAX_CONTACTS_BYTES // 1024} KiB")
    try:
        contacts = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError:
        raise ConfigurationError(where, "is not UTF-8 text") from None
    except ValueError as exc:
        raise ConfigurationError(where, f"is not JSON ({exc})") from None
    except RecursionError:
        raise ConfigurationError(where, "nests too deeply to be read") from None
    if not isinstance(contacts, dict):
        raise ConfigurationError(where, 'must hold a JSON object such as {"umc-utrecht": {"costs_team_phone": "..."}}')
    problems = contact_problems(tuple(providers), contacts)
    if problems:
        raise ConfigurationError(where, "; ".join(problems))
    return contacts


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    keys = [key for key, _ in pairs]
    twice = sorted({key for key in keys if keys.count(key) > 1})
    if twice:  # json.loads would keep the last silently: which value the operator meant is unknown
        raise ValueError(f"{', '.join(map(repr, twice))} given twice")
    return dict(pairs)


def provider_contacts_from_env(
    env: Mapping[str, str] = os.environ, providers: Sequence[ProviderVersion] = DEFINITION.providers
) -> ProviderContacts:
    """``$SECOND_OPINION_PROVIDER_CONTACTS`` names the operator's contacts file; none: the seeds' values."""
    path = env.get(ENV_PROVIDER_CONTACTS)
    return load_provider_contacts(path, providers, ENV_PROVIDER_CONTACTS) if path else {}


def check_organisation(organisation: str, setting: str) -> None:
    """The organisation whose closures apply is checked as a case's (``--org``) is: it is part of
    every calendar's name (``nl-atw+<organisation>``), so it is echoed in answers and stored."""
    try:
        inputs.check_id("organisation", organisation)
    except ValidationError as exc:
        raise ConfigurationError(setting, exc.problem) from None


def calendars_from_env(env: Mapping[str, str] = os.environ) -> Calendars:
    """``$SECOND_OPINION_ORGANISATION`` with ``$SECOND_OPINION_CLOSURES`` layers that
    organisation's closure days on every calendar deadlines use."""
    organisation = env.get(ENV_ORGANISATION) or None
    if organisation is not None:
        check_organisation(organisation, ENV_ORGANISATION)
    closures = load_closures(env[ENV_CLOSURES], ENV_CLOSURES) if env.get(ENV_CLOSURES) else []
    if closures and organisation is None:
        raise ConfigurationError(ENV_ORGANISATION, f"name the organisation whose closures {ENV_CLOSURES} applies")
    return Calendars(organisation, closures)


def channels_from_env(env: Mapping[str, str] = os.environ) -> list[Channel]:
    """Notifications always go to the log; ``$SECOND_OPINION_WEBHOOK_URL`` adds a webhook."""
    channels = [Channel("log")]
    url = env.get(ENV_WEBHOOK)
    if url:
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError(ENV_WEBHOOK, f"{url!r} is not an http(s) URL")
        channels.append(Channel("webhook", url))
    return channels


def send_timeout_from_env(env: Mapping[str, str] = os.environ) -> float | None:
    """``$SECOND_OPINION_SEND_TIMEOUT``: seconds a webhook call may take in all (None: the
    worker's default). Bounded, so a call always fits in a delivery lease."""
    raw = env.get(ENV_SEND_TIMEOUT)
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds <= MAX_SEND_TIMEOUT:  # also false for nan
        raise ConfigurationError(ENV_SEND_TIMEOUT, f"{raw!r} is not a number of seconds above 0, at most "
                                                   f"{MAX_SEND_TIMEOUT:g}")  # fmt: skip
    return seconds


def local_http_from_env(env: Mapping[str, str] = os.environ) -> bool:
    """``$SECOND_OPINION_WEBHOOK_ALLOW_LOCAL_HTTP``: ``1`` lets a subscription use plain http to
    localhost / 127.0.0.1 (a receiver on this machine); anything else than 1/0/empty is refused."""
    raw = env.get(ENV_WEBHOOK_LOCAL_HTTP, "").strip().lower()
    if raw not in ("", "0", "1", "true", "false"):
        raise ConfigurationError(ENV_WEBHOOK_LOCAL_HTTP, f"{raw[:20]!r} is not 1 or 0")
    return raw in ("1", "true")


def connect_deadlines(service: CaseService, env: Mapping[str, str] = os.environ) -> DeadlineService:
    """The deadline side of the service layer, on the same storage as ``service``."""
    return DeadlineService(service.runtime, channels_from_env(env))


def connect(
    url: str | None = None,
    *,
    clock: Clock | None = None,
    identity_key: bytes | None = None,
    policies: Sequence[DeadlinePolicy] = POLICIES,
    channel: str | None = None,
) -> CaseService:
    """Open the case service on an initialised database (``memory://`` needs no init).

    ``channel`` is what the audit records of commands without one of their own say they came
    through: an embedding program declares ``"embedded:<its label>"`` (default ``"embedded"``).

    >>> from second_opinion import connect
    >>> service = connect("memory://", channel="embedded:ward-planner")
    """
    checked = check_channel("embedded" if channel is None else channel)
    backend = open_backend(database_url(url), timeouts=timeouts_from_env())
    return CaseService.on(replace(runtime_for(backend, clock, identity_key, policies), channel=checked))


def check_channel(channel: str) -> str:
    """A channel as records keep it: at most 200 printable characters, no BSN."""
    if not 0 < len(channel) <= 200 or not channel.isprintable() or contains_bsn(channel):
        raise ValidationError("channel", "must be 1 to 200 printable characters, without a BSN")
    return channel


def runtime_for(
    backend: Backend, clock: Clock | None, identity_key: bytes | None, policies: Sequence[DeadlinePolicy]
) -> Runtime:
    """The one runtime every service of a process shares: storage, clock, definition and engine,
    policies, calendars and identity key, each read from the environment unless given."""
    try:
        key = identity_key if identity_key is not None else identity_key_from_env()
        calendars = calendars_from_env()
        tolerance = clock_tolerance_from_env()
    except ConfigurationError:
        backend.close()
        raise
    return Runtime(
        backend.unit_of_work, clock or clock_from_env(), Engine(), tuple(policies), calendars, key,
        on_close=backend.close, clock_tolerance=tolerance,
    )  # fmt: skip


def build_app(url: str | None = None, *, clock: Clock | None = None, body_timeout: float | None = None) -> FastAPI:
    """The HTTP app on the database at ``url``; its readiness probe re-checks that database; the
    rate limits (:func:`limits_from_env`) and the providers' contact values
    (:func:`provider_contacts_from_env`) are read from the environment."""
    from .api import create_app  # the web stack loads only for those who serve

    contacts = provider_contacts_from_env()  # once, before the database is opened: a bad file opens nothing
    backend = open_backend(database_url(url), timeouts=timeouts_from_env())
    service = CaseService.on(runtime_for(backend, clock, None, POLICIES))
    return create_app(service, ready=backend.check, limits=limits_from_env(), body_timeout=body_timeout,
                      contacts=contacts, allow_local_http=local_http_from_env())  # fmt: skip


def init(url: str | None = None) -> str:
    """Create or upgrade the schema; returns the schema revision now in place."""
    # StorageNotReady (nothing was changed), or StorageUnavailable: "try again"
    return initialise(database_url(url), timeouts_from_env())
