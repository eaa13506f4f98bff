"""Every environment variable second-opinion reads, in one typed object (issue 18).

:class:`Settings` is the single list: a field named ``xyz`` is the variable ``SECOND_OPINION_XYZ``,
its type and default are the field's, and its ``description`` is what docs/operations.md says of
it (the table there is generated from this class: :func:`settings_table`). Adding a setting is
adding one field with a description; a setting that a command-line flag mirrors says which in
``json_schema_extra={"flag": ...}``.

The values are read by pydantic-settings (an environment source; a test may hand in a mapping of
its own instead of ``os.environ``), checked by the validators below, and a bad one is one
:class:`~workflow.errors.ConfigurationError` naming the variable: the command prints one
``error:`` line and exits 1 before it opens anything. A blank value is an unset one (as before
issue 18: ``SECOND_OPINION_X=`` in a unit file means "the default"). Key *material* (the identity
key, the session key) is a :class:`~pydantic.SecretStr`, shown as ``********``; paths to keys are not.

Nothing else in the product reads the process environment (``tests/unit/test_settings.py``
fails the build when something does); the CLI's per-user defaults that click reads itself
(``envvar=`` on ``--role`` and ``--org``) are fields here too, so the table lists them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, PrivateAttr, SecretStr, ValidationInfo, field_validator
from pydantic import ValidationError as PydanticError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.sources.utils import parse_env_vars

from storage import DEFAULT_URL, Timeouts
from workflow.clock import DEFAULT_TOLERANCE, parse_instant
from workflow.errors import ConfigurationError, ValidationError
from workflow.service import inputs

from .limits import Rate

PREFIX = "SECOND_OPINION_"
MAX_CLOCK_TOLERANCE = 3600.0
MAX_SEND_TIMEOUT = 60.0
MAX_TIMEOUT_SECONDS = 3600
MIN_SECRET_BYTES = 32
MASK = "********"
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")
Source = Literal["default", "environment", "flag"]
CHOICES: dict[str, tuple[str, ...]] = {"log_format": ("json", "console", "auto"), "tracing": ("off", "console", "otlp")}
"""The settings that take one of a few words (the first: what each word means is in its description)."""

_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("second_opinion_environ", default=None)
_DB_DEFAULTS = Timeouts()


def env_name(field: str) -> str:
    """The variable a field is read from: ``clock_tolerance`` -> ``SECOND_OPINION_CLOCK_TOLERANCE``."""
    return PREFIX + field.upper()


def _flag(flag: str) -> dict[str, Any]:
    return {"flag": flag}


class Settings(BaseSettings):
    """The effective configuration of one process: environment over defaults, flags over both."""

    model_config = SettingsConfigDict(
        env_prefix=PREFIX, case_sensitive=False, env_ignore_empty=True, extra="ignore", frozen=True
    )

    db: str = Field(DEFAULT_URL, description="Database URL: `sqlite:///FILE`, `postgresql+psycopg://...` or "
                    "`memory://`.", json_schema_extra=_flag("--db"))  # fmt: skip
    db_lock_timeout: float = Field(_DB_DEFAULTS.lock, description="Seconds a lock wait may take (SQLite: the "
                                   "busy timeout); 0: fail at once.")  # fmt: skip
    db_statement_timeout: float = Field(_DB_DEFAULTS.statement, description="Seconds a PostgreSQL statement "
                                        "may take; 0: no limit.")  # fmt: skip
    db_idle_timeout: float = Field(_DB_DEFAULTS.idle_in_transaction, description="Seconds a PostgreSQL session "
                                   "may sit idle in a transaction; 0: no limit.")  # fmt: skip
    db_pool_timeout: float = Field(_DB_DEFAULTS.pool, description="Seconds to wait for a pooled connection "
                                   "(above 0).")  # fmt: skip
    clock: datetime | None = Field(
        None,
        description='Pins "now" (ISO 8601 with offset) for scripts, tests and '
        "as-of runs. `serve` and `worker` refuse it without `--allow-clock-override`.",
    )
    clock_tolerance: float = Field(DEFAULT_TOLERANCE.total_seconds(), description="Seconds the clock may read "
                                   "behind the last record before writes are refused (0 to 3600).")  # fmt: skip
    secret: SecretStr | None = Field(None, description="Identity key for BSN hashes (at least 32 bytes). "
                                     "Prefer `SECRET_FILE`.")  # fmt: skip
    secret_file: Path | None = Field(None, description="File holding the identity key (used when `SECRET` is "
                                     "unset).")  # fmt: skip
    session_key: SecretStr | None = Field(
        None,
        description="Key web-desk sessions are signed with (at least 32 "
        "bytes); unset: derived from the identity key, else one per process.",
    )
    tls_proxy: bool = Field(False, description="A proxy ends TLS in front of `serve`: desk cookies are always "
                            "Secure (`1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off`).")  # fmt: skip
    webhook_allow_local_http: bool = Field(False, description="Webhook subscriptions may use plain http to "
                                           "localhost (a receiver on this machine; tests).")  # fmt: skip
    rate_token: str = Field("120/60", description="API writes per token, `COUNT/SECONDS` or `0`/`off`.")
    rate_case: str = Field("30/60", description="API writes per case, `COUNT/SECONDS` or `0`/`off`.")
    rate_case_token: str = Field("10/60", description="API writes per token on one case, `COUNT/SECONDS` or "
                                 "`0`/`off`.")  # fmt: skip
    rate_auth_failures: str = Field("20/60", description="Failed authentications per client address, "
                                    "`COUNT/SECONDS` or `0`/`off`.")  # fmt: skip
    rate_read: str = Field("600/60", description="API reads per token, `COUNT/SECONDS` or `0`/`off`.")
    webhook_url: str | None = Field(None, description="http(s) URL the worker posts notifications to (besides "
                                    "the log).")  # fmt: skip
    send_timeout: float | None = Field(
        None,
        description="Seconds a webhook call may take in all (above 0, at most 60); unset: 5.",
        json_schema_extra=_flag("worker --send-timeout"),
    )
    organisation: str | None = Field(None, description="The organisation whose closure days (`CLOSURES`) "
                                     "apply.")  # fmt: skip
    closures: Path | None = Field(None, description="JSON file of the organisation's closure days.")
    provider_contacts: Path | None = Field(None, description="JSON file of the providers' contact values "
                                           "(at most 64 KiB).")  # fmt: skip
    lang: str | None = Field(None, description="Language of the CLI's human output (`en`, `nl`, `nl_NL.UTF-8`...).",
                             json_schema_extra=_flag("--lang"))  # fmt: skip
    actor: str | None = Field(None, description="Who acts on the command line; unset: `user:<login>`.",
                              json_schema_extra=_flag("--actor"))  # fmt: skip
    role: str | None = Field(None, description="Role of the actor on the command line.",
                             json_schema_extra=_flag("--role"))  # fmt: skip
    org: str | None = Field(None, description="Organisation owning a case opened on the command line.",
                            json_schema_extra=_flag("--org"))  # fmt: skip

    log_format: str = Field("auto", description="`json`, `console` or `auto` (the console format when standard "
                            "error is a terminal, JSON lines otherwise); [Observability](#observability).")  # fmt: skip
    tracing: str = Field("off", description="OpenTelemetry traces: `off`, `console` or `otlp` (needs the "
                         "`otel` extra).")  # fmt: skip

    oidc_issuer: str | None = Field(None, description="The identity provider whose JWTs the API accepts "
                                    "(`iss`); unset: API tokens only. docs/integrations.md, Identity.")  # fmt: skip
    oidc_audience: str | None = Field(None, description="The `aud` a JWT must name (needed with `OIDC_ISSUER`).")
    oidc_jwks: str | None = Field(None, description="The issuer's keys: a JWKS file, or an https URL (fetched "
                                  "with a 5 s timeout, 256 KiB, cached 5 min).")  # fmt: skip
    oidc_organisations: str | None = Field(None, description="Comma-separated organisations a JWT may name "
                                           "(needed with `OIDC_ISSUER`).")  # fmt: skip
    oidc_claims: str | None = Field(None, description="Claim names, `subject=sub,role=...,organisation=...`; "
                                    "unset: `sub`, `second_opinion_role`, `second_opinion_org`.")  # fmt: skip
    oidc_algorithms: str | None = Field(None, description="Comma-separated signature algorithms accepted "
                                        "(of RS256, ES256, EdDSA; unset: all three).")  # fmt: skip
    oidc_leeway: str | None = Field(None, description="Seconds of clock skew allowed on `exp`/`iat`/`nbf` "
                                    "(0 to 300; unset: 60).")  # fmt: skip

    _sources: dict[str, Source] = PrivateAttr(default_factory=dict)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags (passed as keywords) over the environment; no dotenv or secrets directory: a
        file read silently from the working directory would be a second, hidden list."""
        return init_settings, MappingEnvSource(settings_cls)

    @field_validator("db_lock_timeout", "db_statement_timeout", "db_idle_timeout", "db_pool_timeout", mode="before")
    @classmethod
    def _timeout(cls, value: object, info: ValidationInfo) -> object:
        name, default = _name(info), _default(info)
        text = _text(value)
        if text is None:
            return value
        if not text:
            return default
        positive = info.field_name == "db_pool_timeout"
        seconds = _number(text)
        if not math.isfinite(seconds) or seconds < 0 or (positive and seconds == 0) or seconds > MAX_TIMEOUT_SECONDS:
            lowest = "above 0" if positive else "from 0"
            problem = f"must be a number of seconds {lowest} to {MAX_TIMEOUT_SECONDS}, such as {default:g}"
            problem += f" (got {text!r})"
            raise ConfigurationError(name, problem)
        return seconds

    @field_validator("clock", mode="before")
    @classmethod
    def _clock(cls, value: object) -> object:
        text = _text(value)
        if text is None:
            return value
        return parse_instant(text, env_name("clock")) if text else None

    @field_validator("clock_tolerance", mode="before")
    @classmethod
    def _tolerance(cls, value: object, info: ValidationInfo) -> object:
        text = _text(value)
        if text is None:
            return value
        if not text:
            return _default(info)
        if not 0 <= _number(text) <= MAX_CLOCK_TOLERANCE:  # also NaN
            problem = f"{text!r} is not a number of seconds from 0 to {MAX_CLOCK_TOLERANCE:g}"
            raise ConfigurationError(_name(info), problem)
        return _number(text)

    @field_validator("secret", "session_key", mode="before")
    @classmethod
    def _key(cls, value: object, info: ValidationInfo) -> object:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not isinstance(text, str) or not text:
            return value or None
        try:
            size = len(text.encode())
        except UnicodeEncodeError:  # bytes that are not UTF-8 arrive as lone surrogates
            problem = f"is not UTF-8 text; put a key of raw bytes in a file named by ${env_name('secret_file')}"
            raise ConfigurationError(_name(info), problem) from None
        if size < MIN_SECRET_BYTES:
            got = f" (got {size})" if info.field_name == "secret" else ""
            raise ConfigurationError(_name(info), f"the key must be at least {MIN_SECRET_BYTES} bytes{got}")
        return value

    @field_validator("tls_proxy", "webhook_allow_local_http", mode="before")
    @classmethod
    def _switch(cls, value: object, info: ValidationInfo) -> object:
        text = _text(value)
        if text is None:
            return value
        word = text.strip().lower()
        if word in TRUE_WORDS or word in FALSE_WORDS or not word:
            return word in TRUE_WORDS
        choices = "/".join(TRUE_WORDS) + " or " + "/".join(FALSE_WORDS)
        raise ConfigurationError(_name(info), f"{text!r} is not one of {choices}")

    @field_validator("rate_token", "rate_case", "rate_case_token", "rate_auth_failures", "rate_read", mode="before")
    @classmethod
    def _rate(cls, value: object, info: ValidationInfo) -> object:
        if isinstance(value, str):
            Rate.parse(_name(info), value)  # a ConfigurationError naming the variable
        return value

    @field_validator("webhook_url", mode="before")
    @classmethod
    def _webhook(cls, value: object, info: ValidationInfo) -> object:
        if isinstance(value, str) and value and not value.startswith(("http://", "https://")):
            raise ConfigurationError(_name(info), f"{masked_url(value)!r} is not an http(s) URL")
        return value or None

    @field_validator("send_timeout", mode="before")
    @classmethod
    def _send_timeout(cls, value: object, info: ValidationInfo) -> object:
        text = _text(value)
        if text is None:
            return value
        seconds = _number(text)
        if not 0 < seconds <= MAX_SEND_TIMEOUT:  # also false for nan
            problem = f"{text!r} is not a number of seconds above 0, at most {MAX_SEND_TIMEOUT:g}"
            raise ConfigurationError(_name(info), problem)
        return seconds

    @field_validator(*CHOICES, mode="before")
    @classmethod
    def _choice(cls, value: object, info: ValidationInfo) -> object:
        text = _text(value)
        if text is None:
            return value
        word, words = text.strip().lower(), CHOICES[str(info.field_name)]
        if word not in words:
            raise ConfigurationError(_name(info), f"must be {', '.join(words[:-1])} or {words[-1]} (got {word[:40]!r})")
        return word

    @field_validator("organisation", mode="before")
    @classmethod
    def _organisation(cls, value: object, info: ValidationInfo) -> object:
        if isinstance(value, str) and value:
            check_organisation(value, _name(info))
        return value or None

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """A password in a URL is masked in ``repr``/``str`` too: a settings object that reaches a
        log or a traceback shows no credential (SecretStr masks the keys themselves)."""
        for name, value in super().__repr_args__():
            yield name, masked_url(value) if name in URL_FIELDS and isinstance(value, str) else value

    def source(self, field: str) -> Source:
        """Where the value of ``field`` came from."""
        return self._sources.get(field, "default")

    def timeouts(self) -> Timeouts:
        """The database's time bounds (:class:`storage.db.Timeouts`)."""
        return Timeouts(self.db_lock_timeout, self.db_statement_timeout, self.db_idle_timeout, self.db_pool_timeout,
                        _DB_DEFAULTS.connect)  # fmt: skip


URL_FIELDS = ("db", "webhook_url", "oidc_jwks")
"""Settings that are URLs and may carry a password (``postgresql://user:PASSWORD@host/db``) or a
secret in the query (``https://host/hook?token=...``, libpq's ``?password=``)."""


def masked_url(url: str) -> str:
    """``url`` with the password of its user part as :data:`MASK`, and for an http(s) URL (a
    webhook, a JWKS) its whole query too: a token travels there as often as in the user part."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # a malformed user part: show none of it
        return MASK
    if parts.query and parts.scheme in ("http", "https"):
        url = url.split("?", 1)[0] + "?" + MASK
    if password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(urlsplit(url)._replace(netloc=f"{parts.username or ''}:{MASK}@{host}"))


def check_organisation(organisation: str, setting: str) -> None:
    """The organisation whose closures apply is checked as a case's (``--org``) is: it is part of
    every calendar's name (``nl-atw+<organisation>``), so it is echoed in answers and stored."""
    try:
        inputs.check_id("organisation", organisation)
    except ValidationError as exc:
        raise ConfigurationError(setting, exc.problem) from None


class MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' environment source over :func:`load`'s mapping (``os.environ`` unless a
    caller, a test, hands in its own)."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        env = _ENVIRON.get()
        return parse_env_vars(os.environ if env is None else env, self.case_sensitive, self.env_ignore_empty,
                              self.env_parse_none_str)  # fmt: skip


def load(env: Mapping[str, str] | None = None, **flags: Any) -> Settings:
    """The settings from ``env`` (default ``os.environ``), with ``flags`` (field name -> the value a
    command-line flag gave; None: not given) over them. A bad value raises one
    :class:`ConfigurationError` naming the variable (or the flag)."""
    given = {name: value for name, value in flags.items() if value is not None}
    with _environ(env):
        try:
            settings = Settings(**given)
        except PydanticError as exc:
            raise _configuration_error(exc, given) from None
    source = os.environ if env is None else env
    for name in Settings.model_fields:
        if name in given:
            settings._sources[name] = "flag"
        elif source.get(env_name(name), ""):
            settings._sources[name] = "environment"
    return settings


def env_text(field: str, env: Mapping[str, str] | None = None) -> str:
    """The raw text of one variable, for a command-line default that click's callback checks itself
    (``--lang``, ``--actor``): reading it must not fail on another variable's bad value. ``""``: unset."""
    if field not in Settings.model_fields:
        raise KeyError(field)
    return (os.environ if env is None else env).get(env_name(field), "")


@contextmanager
def _environ(env: Mapping[str, str] | None) -> Iterator[None]:
    token = _ENVIRON.set(env)
    try:
        yield
    finally:
        _ENVIRON.reset(token)


def _configuration_error(exc: PydanticError, flags: Mapping[str, Any]) -> ConfigurationError:
    error = exc.errors(include_url=False)[0]
    field = str(error["loc"][0]) if error["loc"] else "settings"
    where = (flag_of(field) if field in flags else None) or env_name(field)
    secret = field in Settings.model_fields and "SecretStr" in str(Settings.model_fields[field].annotation)
    got = "" if secret else f" (got {str(error.get('input'))[:80]!r})"  # never a key's value in an error
    return ConfigurationError(where, f"{error['msg']}{got}")


def flag_of(field: str) -> str | None:
    """The command-line flag that mirrors a setting, if one does."""
    extra = Settings.model_fields[field].json_schema_extra
    return str(extra["flag"]) if isinstance(extra, dict) and "flag" in extra else None


def _name(info: ValidationInfo) -> str:
    return env_name(str(info.field_name))


def _default(info: ValidationInfo) -> Any:
    field: FieldInfo = Settings.model_fields[str(info.field_name)]
    return field.default


def _text(value: object) -> str | None:
    """The stripped text of a value read from the environment; None when it is not text (a flag's
    value, already typed)."""
    return value.strip() if isinstance(value, str) else None


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan
