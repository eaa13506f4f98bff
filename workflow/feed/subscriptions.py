"""Webhook subscriptions: one organisation's URL, secret, event filter and active flag.

**URLs.** ``https`` only, at most :data:`MAX_URL` characters, no credentials in the URL (they would
be stored and listed in clear), no fragment. Plain ``http`` is allowed only to ``localhost`` /
``127.0.0.1`` / ``::1``, and only where the operator's setting allows it (a receiver on the same
machine, tests): anywhere else, the secret-signed body of a delivery would cross a network in clear.

**Secrets.** Standard Webhooks' ``whsec_`` + base64 of 24 random bytes, generated here (a caller
never chooses one), shown once when made or rotated. The worker needs the secret itself to sign,
so it cannot be stored as a hash like an API token: it is stored *sealed*, AES-256-GCM under a key
derived (HKDF-SHA256) from the identity key (``SECOND_OPINION_SECRET``, which never enters the
database), with the subscription's id as associated data (a sealed secret copied to another row
does not open). A stolen database alone therefore yields no webhook secret. Changing the identity
key makes stored secrets unreadable: rotate every subscription's secret after changing it.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from workflow.errors import ConfigurationError, ValidationError
from workflow.feed.events import DEADLINE_PREFIX, EVENT_TYPES

MAX_URL = 2000
MAX_FILTER = 16
MAX_PER_ORGANISATION = 20
SECRET_PREFIX = "whsec_"
_SEALED_PREFIX = "v1:"
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
FAMILIES = {"case.*": "case.", "deadline.*": DEADLINE_PREFIX}
"""Filter entries naming a family of types."""


@dataclass(frozen=True)
class Subscription:
    """A subscription as stored: ``secret`` is the sealed form (see the module's text), never the secret."""

    id: str
    organisation: str
    url: str
    secret: str
    event_types: tuple[str, ...]
    active: bool
    created_at: datetime
    rotated_at: datetime | None = None

    def wants(self, event_type: str) -> bool:
        """An empty filter takes every type."""
        if not self.event_types:
            return True
        return any(t == event_type or (t in FAMILIES and event_type.startswith(FAMILIES[t])) for t in self.event_types)

    def as_dict(self) -> dict[str, Any]:
        """What may be shown: everything but the secret, sealed or not."""
        shown = asdict(self)
        del shown["secret"]
        shown["event_types"] = list(self.event_types)
        return shown


def new_id() -> str:
    return "sub_" + secrets.token_hex(8)


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def checked_url(url: str, *, allow_local_http: bool = False) -> str:
    """``url`` if a subscription may have it, else a :class:`ValidationError` naming the problem."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        raise ValidationError("url", f"must be an https URL of at most {MAX_URL} characters")
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise ValidationError("url", "must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # a ValueError when the port is not a number from 0 to 65535
    except ValueError:
        raise ValidationError("url", "is not a URL") from None
    if parts.scheme not in ("https", "http") or not host:
        raise ValidationError("url", "must be an https URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ValidationError("url", "must not carry credentials (they would be stored and listed in clear)")
    if parts.fragment:
        raise ValidationError("url", "must not have a fragment")
    if parts.scheme == "http":
        if host not in _LOCAL_HOSTS:
            raise ValidationError("url", "must be https (plain http only to localhost or 127.0.0.1)")
        if not allow_local_http:
            raise ValidationError(
                "url", "plain http to localhost is off (set SECOND_OPINION_WEBHOOK_ALLOW_LOCAL_HTTP=1 to allow it)"
            )
    return url


def checked_types(types: list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """The filter as stored: known types or families, each once, in order; empty takes every type."""
    if types is None:
        return ()
    if not isinstance(types, list | tuple) or len(types) > MAX_FILTER:
        raise ValidationError("event_types", f"must be a list of at most {MAX_FILTER} event types")
    known = [*EVENT_TYPES, *FAMILIES]
    kept: list[str] = []
    for t in types:
        if not isinstance(t, str) or t not in known:
            shown = t[:40] if isinstance(t, str) else type(t).__name__
            raise ValidationError("event_types", f"{shown!r} is not one of {', '.join(known)}")
        if t not in kept:
            kept.append(t)
    return tuple(kept)


class SecretBox:
    """Seals and opens subscription secrets under a key derived from the identity key."""

    def __init__(self, identity_key: bytes | None) -> None:
        self._aead = None if identity_key is None else AESGCM(_derive(identity_key))

    def _box(self) -> AESGCM:
        if self._aead is None:
            raise ConfigurationError(
                "identity key", "webhook secrets are stored sealed under SECOND_OPINION_SECRET (or "
                "SECOND_OPINION_SECRET_FILE): set it for the CLI, the API and the worker alike"
            )  # fmt: skip
        return self._aead

    def seal(self, subscription_id: str, secret: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._box().encrypt(nonce, secret.encode(), subscription_id.encode())
        return _SEALED_PREFIX + base64.b64encode(nonce + sealed).decode()

    def open(self, subscription: Subscription) -> str:
        """The secret of ``subscription``; a ConfigurationError if the key cannot open it (a changed
        identity key, a row copied from another subscription), which names no secret."""
        box = self._box()
        problem = f"the secret of subscription {subscription.id} cannot be opened (identity key changed?)"
        if not subscription.secret.startswith(_SEALED_PREFIX):
            raise ConfigurationError("webhook secret", problem)
        try:
            raw = base64.b64decode(subscription.secret[len(_SEALED_PREFIX) :], validate=True)
            return box.decrypt(raw[:12], raw[12:], subscription.id.encode()).decode()
        except (ValueError, InvalidTag):
            raise ConfigurationError("webhook secret", problem) from None


def _derive(identity_key: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"second-opinion webhook secrets").derive(
        identity_key
    )
