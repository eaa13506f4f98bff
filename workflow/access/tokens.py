"""API tokens: who a caller is (actor, role, organisation), proven by a bearer secret; how long
that proof lasts (expiry) and what it may be used for (scopes).

The secret is shown once, when the token is created, and stored only as its SHA-256: a copy of
the database lets nobody call the API. SHA-256 without a salt is enough here because the secret
is 256 random bits, not a password a person chose. Revoking a token keeps its row, so an
auditor can still see who held it.

Scopes are data (:data:`SCOPES`), and they only *narrow*: the token's role still bounds what it
can do (the role table's ``sees`` and ``reads`` columns). A scope the role can never use is refused
when the token is created (:func:`role_scopes`), so a token never appears to hold more than it has.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from workflow.cases.definitions import ORGANISATION, Definition
from workflow.clock import AMSTERDAM, as_utc, utc_iso
from workflow.errors import ValidationError

PREFIX = "sotk_"
NOT_FOR_TOKENS = ("system",)
"""Roles no token may carry: the library's own jobs act as ``system``, nobody calls in as it."""

DEFAULT_LIFETIME = timedelta(days=90)
"""A token created without ``--expires-in``/``--expires-at`` lasts 90 days: long enough for an
integration's rotation cycle, short enough that a forgotten token stops working by itself."""
MAX_LIFETIME = timedelta(days=366)
"""No token is created to last longer than a year (and a day, for a yearly rotation on the same date)."""
LAST_USE_EVERY = timedelta(minutes=1)
"""``last_used_at`` is written at most once a minute per token: "was this token used lately" needs
no finer grain, and a write per request would double the writes of every read (and contend on the
token's row under load)."""


@dataclass(frozen=True)
class Scope:
    name: str
    meaning: str
    reads: tuple[str, ...] = ()
    """Reads of the role table (any of them) a role needs to use the scope; empty: none needed."""
    staff: bool = False
    """Only for roles that see their organisation's cases (not a patient's own-case token)."""


SCOPE_TABLE = (
    Scope("cases:read", "read cases: a case, its history and deadlines, next steps, work lists, FHIR views, "
          "fire --check"),
    Scope("cases:write", "open cases and fire events (the role table still says which role may fire which event)"),
    Scope("audit:read", "verify and export the audit trail; read the access log", reads=("audit", "access-log")),
    Scope("reports:read", "read reports (figures over the organisation's cases)", reads=("reports",)),
    Scope("webhooks:admin", "manage webhook subscriptions of the organisation", reads=("webhooks",), staff=True),
)  # fmt: skip
"""Every scope a token can hold; the docs print this table."""
SCOPES = {s.name: s for s in SCOPE_TABLE}
ALL_SCOPES = tuple(SCOPES)
CAPABILITY_SCOPES = {"audit": "audit:read", "access-log": "audit:read", "reports": "reports:read",
                     "changes": "cases:read", "webhooks": "webhooks:admin"}  # fmt: skip
"""The scope each read of the role table (:data:`workflow.cases.definitions.READS`) needs."""


def role_scopes(definition: Definition, role: str) -> tuple[str, ...]:
    """The scopes a token of ``role`` can use: its role bounds them (a role that sees no case, none)."""
    found = next((r for r in definition.roles if r.name == role), None)
    if found is None or found.sees is None:
        return ()
    return tuple(
        s.name for s in SCOPE_TABLE
        if (not s.reads or set(s.reads) & set(found.reads)) and (not s.staff or found.sees == ORGANISATION)
    )  # fmt: skip


def check_scopes(definition: Definition, role: str, asked: Iterable[str] | None) -> tuple[str, ...]:
    """The scopes a new token gets: ``asked`` (None: every scope its role can use), each known and
    usable by the role, in table order; otherwise a :class:`ValidationError` naming the scope."""
    usable = role_scopes(definition, role)
    if asked is None:
        return usable
    wanted = set(asked)
    for name in sorted(wanted):
        if name not in SCOPES:
            raise ValidationError("scopes", f"{name!r} is not a scope; one of: {', '.join(ALL_SCOPES)}")
        if name not in usable:
            raise ValidationError("scopes", f"role {role!r} cannot use {name!r}; it can use: {', '.join(usable)}")
    if not wanted:
        raise ValidationError("scopes", "give at least one scope (or none at all for every scope of the role)")
    return tuple(s for s in usable if s in wanted)


_LIFETIME = re.compile(r"^\s*(\d{1,4})\s*([hdw])\s*$")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def expiry(now: datetime, expires_in: str | None = None, expires_at: str | None = None) -> datetime:
    """When a token created ``now`` expires: ``expires_in`` such as ``90d``, ``12h``, ``4w``, or
    ``expires_at`` (an ISO instant; a date or a time without offset is Europe/Amsterdam, a date
    meaning its first moment); neither: :data:`DEFAULT_LIFETIME`. Refused: both, a moment not in
    the future, or one past :data:`MAX_LIFETIME`."""
    if expires_in is not None and expires_at is not None:
        raise ValidationError("expiry", "give --expires-in or --expires-at, not both")
    if expires_at is not None:
        at = _moment(expires_at)
    elif expires_in is not None:
        found = _LIFETIME.match(expires_in)
        if not found:
            raise ValidationError("expires-in", f"{expires_in!r} is not a lifetime such as 90d, 12h or 4w")
        at = now + int(found.group(1)) * _UNITS[found.group(2)]
    else:
        at = now + DEFAULT_LIFETIME
    if at <= now:
        raise ValidationError("expiry", f"{utc_iso(at)} is not in the future")
    if at - now > MAX_LIFETIME:
        raise ValidationError("expiry", f"a token lasts at most {MAX_LIFETIME.days} days; rotate it instead")
    return at


def _moment(text: str) -> datetime:
    try:
        if len(text.strip()) == 10:
            value = datetime.combine(date.fromisoformat(text.strip()), time(), AMSTERDAM)
        else:
            value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError("expires-at", f"{text!r} is not a date or an ISO 8601 time such as 2027-03-01") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=AMSTERDAM)
    try:
        return as_utc(value, "expires-at")
    except OverflowError:
        raise ValidationError("expires-at", f"{text!r} is out of range") from None


@dataclass(frozen=True)
class ApiToken:
    id: str
    token_hash: str
    actor: str
    role: str
    organisation: str
    created_at: datetime
    revoked_at: datetime | None = None
    expires_at: datetime | None = None
    """None: never (tokens created before expiry existed, revision 0015)."""
    scopes: tuple[str, ...] = ALL_SCOPES
    """What the token may be used for, within what its role allows (:func:`role_scopes`)."""
    last_used_at: datetime | None = None
    """The last authenticated use, to the minute (:data:`LAST_USE_EVERY`); None: never used."""

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def allows(self, scope: str) -> bool:
        return scope in self.scopes

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "actor": self.actor, "role": self.role, "organisation": self.organisation,
            "created_at": utc_iso(self.created_at),
            "revoked_at": None if self.revoked_at is None else utc_iso(self.revoked_at),
            "expires_at": None if self.expires_at is None else utc_iso(self.expires_at),
            "scopes": list(self.scopes),
            "last_used_at": None if self.last_used_at is None else utc_iso(self.last_used_at),
        }  # fmt: skip


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_token_id() -> str:
    return "tok-" + base64.b32encode(secrets.token_bytes(5)).decode().lower()
