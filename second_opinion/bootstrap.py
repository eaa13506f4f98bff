"""Wiring: a storage URL and a clock in, a ready :class:`~workflow.service.cases.CaseService` out."""

from __future__ import annotations

import json
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
from workflow.clock import Clock, FixedClock, SystemClock
from workflow.deadlines.calendars import Calendars, Closure
from workflow.deadlines.policies import POLICIES, DeadlinePolicy
from workflow.errors import ConfigurationError, ValidationError
from workflow.privacy import contains_bsn
from workflow.service.cases import CaseService
from workflow.service.deadlines import Channel, DeadlineService
from workflow.service.progress import Progress
from workflow.service.runtime import Runtime

from . import settings
from .limits import Limits, Monotonic, Rate
from .settings import MIN_SECRET_BYTES, Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from .observability import Observability

ENV_DB = "SECOND_OPINION_DB"
ENV_CLOCK = "SECOND_OPINION_CLOCK"
ENV_CLOCK_TOLERANCE = "SECOND_OPINION_CLOCK_TOLERANCE"
ENV_SECRET = "SECOND_OPINION_SECRET"
ENV_SECRET_FILE = "SECOND_OPINION_SECRET_FILE"
ENV_RATE_TOKEN = "SECOND_OPINION_RATE_TOKEN"
ENV_RATE_CASE = "SECOND_OPINION_RATE_CASE"
ENV_RATE_AUTH_FAILURES = "SECOND_OPINION_RATE_AUTH_FAILURES"
ENV_RATE_READ = "SECOND_OPINION_RATE_READ"
ENV_RATE_CASE_TOKEN = "SECOND_OPINION_RATE_CASE_TOKEN"
ENV_WEBHOOK = "SECOND_OPINION_WEBHOOK_URL"
ENV_CLOSURES = "SECOND_OPINION_CLOSURES"
ENV_ORGANISATION = "SECOND_OPINION_ORGANISATION"
ENV_SEND_TIMEOUT = "SECOND_OPINION_SEND_TIMEOUT"
ENV_DB_LOCK_TIMEOUT = "SECOND_OPINION_DB_LOCK_TIMEOUT"
ENV_DB_STATEMENT_TIMEOUT = "SECOND_OPINION_DB_STATEMENT_TIMEOUT"
ENV_DB_IDLE_TIMEOUT = "SECOND_OPINION_DB_IDLE_TIMEOUT"
ENV_DB_POOL_TIMEOUT = "SECOND_OPINION_DB_POOL_TIMEOUT"
ENV_PROVIDER_CONTACTS = "SECOND_OPINION_PROVIDER_CONTACTS"
"""The variables' names, as callers and tests quote them; each is a field of
:class:`~second_opinion.settings.Settings` (docs/operations.md lists them all), where the rate
limits' defaults are argued: writes per token (an integration may open a case every half second,
in bursts of 120), writes per case (a case's whole life is some twenty commands over weeks),
writes per token on one case (a third of the case's: one flooder cannot hold the case's other
parties off it), failed authentications per client address (a guesser is slowed to one a few
seconds), reads per token (a dashboard polling every few seconds)."""
MAX_CONTACTS_BYTES = 64 * 1024
"""A contacts file holds a few lines per provider: a few KiB. Past this it is refused unread."""


def database_url(url: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The explicit URL, else ``$SECOND_OPINION_DB``, else the SQLite file in the working directory."""
    return url or settings.env_text("db", env) or DEFAULT_URL


def timeouts_from_env(env: Mapping[str, str] | None = None) -> Timeouts:
    """The database's time bounds (:class:`storage.db.Timeouts`, where the defaults are argued),
    in seconds, each overridable: ``$SECOND_OPINION_DB_LOCK_TIMEOUT`` (a lock wait, on SQLite its
    busy timeout), ``_STATEMENT_TIMEOUT``, ``_IDLE_TIMEOUT`` (idle in a transaction) and
    ``_POOL_TIMEOUT`` (waiting for a pooled connection). Zero turns a PostgreSQL timeout off; the
    pool's must be above zero."""
    return settings.load(env).timeouts()


def clock_from_env(env: Mapping[str, str] | None = None) -> Clock:
    """``SECOND_OPINION_CLOCK=<ISO datetime with offset>`` pins "now" for scripts and as-of runs."""
    return clock_of(settings.load(env))


def clock_of(config: Settings) -> Clock:
    """The pinned clock ``SECOND_OPINION_CLOCK`` names, else the system's."""
    return SystemClock() if config.clock is None else FixedClock(config.clock)


def clock_tolerance_from_env(env: Mapping[str, str] | None = None) -> timedelta:
    """``SECOND_OPINION_CLOCK_TOLERANCE=<seconds>``: how far behind the last record the clock may
    read (the record then takes the last record's time) before writes are refused as
    ``ClockBehind``. Default 2 s: a few servers' NTP-synchronised clocks differ by milliseconds."""
    return timedelta(seconds=settings.load(env).clock_tolerance)


def identity_key_from_env(env: Mapping[str, str] | None = None) -> bytes | None:
    """The key for BSN hashes (:func:`identity_key`) as the environment configures it."""
    return identity_key(settings.load(env))


def identity_key(config: Settings) -> bytes | None:
    """The key for BSN hashes: ``$SECOND_OPINION_SECRET``, or the bytes of the file named by
    ``$SECOND_OPINION_SECRET_FILE``. It lives outside the database on purpose: a stolen
    database then holds no way to test a guessed BSN against the stored hashes."""
    if config.secret is not None:
        return config.secret.get_secret_value().encode()  # its length and encoding checked by Settings
    if config.secret_file is None:
        return None
    try:
        key = config.secret_file.read_bytes().strip()
    except OSError as exc:
        raise ConfigurationError(ENV_SECRET_FILE, f"cannot read the key file ({exc.strerror})") from None
    if len(key) < MIN_SECRET_BYTES:
        raise ConfigurationError(ENV_SECRET_FILE, f"the key must be at least {MIN_SECRET_BYTES} bytes (got {len(key)})")
    return key


def limits_from_env(env: Mapping[str, str] | None = None, monotonic: Monotonic | None = None) -> Limits:
    """The API's rate limits (:func:`limits_of`) as the environment configures them."""
    return limits_of(settings.load(env), monotonic)


def limits_of(config: Settings, monotonic: Monotonic | None = None) -> Limits:
    """The API's rate limits: ``$SECOND_OPINION_RATE_TOKEN``, ``_CASE``, ``_CASE_TOKEN``,
    ``_AUTH_FAILURES`` and ``_READ``, each ``COUNT/SECONDS`` (or ``0``/``off``). Per process."""
    return Limits.of(
        Rate.parse(ENV_RATE_TOKEN, config.rate_token), Rate.parse(ENV_RATE_CASE, config.rate_case),
        Rate.parse(ENV_RATE_AUTH_FAILURES, config.rate_auth_failures), Rate.parse(ENV_RATE_READ, config.rate_read),
        Rate.parse(ENV_RATE_CASE_TOKEN, config.rate_case_token), monotonic=monotonic or time.monotonic,
    )  # fmt: skip


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
    env: Mapping[str, str] | None = None, providers: Sequence[ProviderVersion] = DEFINITION.providers
) -> ProviderContacts:
    """``$SECOND_OPINION_PROVIDER_CONTACTS`` names the operator's contacts file; none: the seeds' values."""
    path = settings.load(env).provider_contacts
    return load_provider_contacts(path, providers, ENV_PROVIDER_CONTACTS) if path else {}


def calendars_from_env(env: Mapping[str, str] | None = None) -> Calendars:
    """The calendars (:func:`calendars_of`) as the environment configures them."""
    return calendars_of(settings.load(env))


def calendars_of(config: Settings) -> Calendars:
    """``$SECOND_OPINION_ORGANISATION`` with ``$SECOND_OPINION_CLOSURES`` layers that
    organisation's closure days on every calendar deadlines use."""
    closures = load_closures(config.closures, ENV_CLOSURES) if config.closures else []
    if closures and config.organisation is None:
        raise ConfigurationError(ENV_ORGANISATION, f"name the organisation whose closures {ENV_CLOSURES} applies")
    return Calendars(config.organisation, closures)


def channels_from_env(env: Mapping[str, str] | None = None) -> list[Channel]:
    """Notifications always go to the log; ``$SECOND_OPINION_WEBHOOK_URL`` adds a webhook."""
    url = settings.load(env).webhook_url
    return [Channel("log")] + ([Channel("webhook", url)] if url else [])


def send_timeout_from_env(env: Mapping[str, str] | None = None) -> float | None:
    """``$SECOND_OPINION_SEND_TIMEOUT``: seconds a webhook call may take in all (None: the
    worker's default). Bounded, so a call always fits in a delivery lease."""
    return settings.load(env).send_timeout


def local_http_from_env(env: Mapping[str, str] | None = None) -> bool:
    """``$SECOND_OPINION_WEBHOOK_ALLOW_LOCAL_HTTP``: subscriptions may use plain http to localhost /
    127.0.0.1 (a receiver on this machine); read by the settings object, a bad word refused."""
    return settings.load(env).webhook_allow_local_http


def connect_deadlines(service: CaseService, env: Mapping[str, str] | None = None) -> DeadlineService:
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
    config = settings.load()  # once: a bad value anywhere refuses before the database is opened
    backend = open_backend(database_url(url), timeouts=config.timeouts())
    return CaseService.on(replace(runtime_for(backend, clock, identity_key, policies, config), channel=checked))


def check_channel(channel: str) -> str:
    """A channel as records keep it: at most 200 printable characters, no BSN."""
    if not 0 < len(channel) <= 200 or not channel.isprintable() or contains_bsn(channel):
        raise ValidationError("channel", "must be 1 to 200 printable characters, without a BSN")
    return channel


def runtime_for(
    backend: Backend,
    clock: Clock | None,
    key: bytes | None,
    policies: Sequence[DeadlinePolicy],
    config: Settings | None = None,
) -> Runtime:
    """The one runtime every service of a process shares: storage, clock, definition and engine,
    policies, calendars and identity key, each from ``config`` (default: the environment's) unless
    given. A bad setting closes ``backend`` before it is raised."""
    try:
        config = config or settings.load()
        key = key if key is not None else identity_key(config)
        calendars = calendars_of(config)
    except ConfigurationError:
        backend.close()
        raise
    return Runtime(
        backend.unit_of_work, clock or clock_of(config), Engine(), tuple(policies), calendars, key,
        on_close=backend.close, clock_tolerance=timedelta(seconds=config.clock_tolerance),
    )  # fmt: skip


def build_app(
    url: str | None = None, *, clock: Clock | None = None, body_timeout: float | None = None,
    observability: Observability | None = None,
) -> FastAPI:  # fmt: skip
    """The HTTP app on the database at ``url``; its readiness probe re-checks that database; the
    rate limits (:func:`limits_from_env`) and the providers' contact values
    (:func:`provider_contacts_from_env`) are read from the environment; ``observability``: the
    metrics and spans ``serve`` observes with (:mod:`second_opinion.observability`)."""
    from .api import create_app  # the web stack loads only for those who serve
    from .oidc import Jwks, OidcVerifier, oidc_from_env

    config = settings.load()
    contacts = provider_contacts_from_env()  # once, before the database is opened: a bad file opens nothing
    oidc_settings = oidc_from_env()
    jwks = None if oidc_settings is None else Jwks(oidc_settings.jwks)  # a missing or garbled file: a startup error
    backend = open_backend(database_url(url), timeouts=config.timeouts())
    runtime = runtime_for(backend, clock, None, POLICIES, config)
    service = CaseService.on(observability.on(runtime) if observability else runtime)
    oidc = None if oidc_settings is None else OidcVerifier(oidc_settings, service.runtime.definition,
                                                           service.runtime.clock, jwks)  # fmt: skip
    return create_app(service, ready=backend.check, limits=limits_of(config), body_timeout=body_timeout,
                      contacts=contacts, settings=config, observability=observability, oidc=oidc,
                      allow_local_http=config.webhook_allow_local_http)  # fmt: skip


def init(url: str | None = None, progress: Progress | None = None) -> str:
    """Create or upgrade the schema; returns the schema revision now in place. ``progress`` hears
    the migrations applied (:mod:`workflow.service.progress`)."""
    # StorageNotReady (nothing was changed), or StorageUnavailable: "try again"
    return initialise(database_url(url), settings.load().timeouts(), progress)
