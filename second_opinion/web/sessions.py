"""Web sessions: who signed in with which token, kept in the database; the cookie holds a signed
random session id and nothing else.

- **The cookie** is ``<session id>.<signature>``: 32 random bytes, and an HMAC-SHA256 of them under
  the session key (:func:`session_key`). Neither the token nor anything about the caller is in
  it. A cookie whose signature does not hold is refused before the database is asked.
- **The store** is the database (:class:`workflow.ports.WebSessionStore`, table ``web_sessions``),
  so that every ``serve`` process behind a load balancer knows every session, and signing out or
  revoking the token ends it on all of them. A row is found by the SHA-256 of the id, which is never
  stored: a copy of the table signs no one in. The processes must share the session key
  (``SECOND_OPINION_SESSION_KEY`` or ``SECOND_OPINION_SECRET``); without one each process signs with
  a key of its own, and a session is known only to the process that made it. Every request reads the
  token again, so a revoked token ends its sessions at once.
- **Expiry** (:mod:`workflow.access.sessions`): after ``IDLE`` without a request, and ``ABSOLUTE``
  after sign-in whatever happens; at most ``PER_TOKEN`` per token and ``MAX_SESSIONS`` in all (the
  least recently seen go first). ``seen_at`` is written at most once a minute per session, so a page
  view stays a read.
- **CSRF**: each session's synchroniser token is an HMAC of its id under the session key (derived,
  never stored), compared in constant time with the one every form posts. The sign-in form, before
  any session, has one tied to a pre-session cookie (a signed random nonce) the same way.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from workflow.access import sessions as policy
from workflow.access.sessions import WebSession
from workflow.clock import Clock
from workflow.ports import UnitOfWorkFactory

ABSOLUTE = int(policy.ABSOLUTE.total_seconds())
"""Seconds a session lives at most after sign-in (the cookie's Max-Age)."""
SESSION_COOKIE = "so_session"
PRE_COOKIE = "so_signin"
LANG_COOKIE = "so_lang"
COOKIE_PATH = "/ui"
ENV_SESSION_KEY = "SECOND_OPINION_SESSION_KEY"
ENV_TLS_PROXY = "SECOND_OPINION_TLS_PROXY"
MIN_KEY_BYTES = 32
_LABEL = b"second-opinion web session v1"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def session_key(identity_key: bytes | None, configured_key: str | None) -> bytes:
    """The key sessions are signed with: ``$SECOND_OPINION_SESSION_KEY`` (at least 32 bytes), else
    one derived from the identity key (``$SECOND_OPINION_SECRET``, never used as it is: an HMAC of it
    under a label of its own), else a random one for this process (its sessions then work on this process only, and end
    with it)."""
    configured = (configured_key or "").encode()
    if configured:
        if len(configured) < MIN_KEY_BYTES:  # Settings refuses it first; a caller of its own is refused here
            from workflow.errors import ConfigurationError

            raise ConfigurationError(ENV_SESSION_KEY, f"the key must be at least {MIN_KEY_BYTES} bytes")
        return hmac.new(configured, _LABEL, hashlib.sha256).digest()
    if identity_key:
        return hmac.new(identity_key, _LABEL, hashlib.sha256).digest()
    return secrets.token_bytes(32)  # this process's own: its sessions are unknown to the others


@dataclass(frozen=True)
class Session:
    """A live session as a request sees it."""

    id: str
    token_id: str
    csrf: str
    stored: WebSession


class SessionStore:
    """Sessions in the database, through short units of work of their own (a page's reads are
    not held up by them, and a command's unit of work never includes them)."""

    def __init__(self, key: bytes, uow: UnitOfWorkFactory, clock: Clock, *, idle: timedelta = policy.IDLE,
                 absolute: timedelta = policy.ABSOLUTE, per_token: int = policy.PER_TOKEN,
                 max_sessions: int = policy.MAX_SESSIONS) -> None:  # fmt: skip
        self._key = key
        self._uow = uow
        self._clock = clock
        self.idle, self.absolute = idle, absolute
        self.per_token, self.max_sessions = per_token, max_sessions

    # --- signed values ----------------------------------------------------------------------

    def sign(self, value: str) -> str:
        return f"{value}.{_b64(hmac.new(self._key, value.encode(), hashlib.sha256).digest())}"

    def unsign(self, signed: str | None) -> str | None:
        """The value of a signed cookie, or None when it is absent, malformed or not ours."""
        if not signed or len(signed) > 200 or signed.count(".") != 1:
            return None
        value, _, _ = signed.partition(".")
        return value if hmac.compare_digest(self.sign(value), signed) else None

    # --- the sign-in form's token, before any session -------------------------------------------

    def pre_session(self) -> tuple[str, str]:
        """(cookie, form token) for a sign-in form."""
        nonce = _b64(secrets.token_bytes(24))
        return self.sign(nonce), self._derived(b"sign-in", nonce)

    def sign_in_token(self, cookie: str | None) -> str | None:
        """The form token that belongs to a pre-session cookie (None for no valid cookie)."""
        nonce = self.unsign(cookie)
        return None if nonce is None else self._derived(b"sign-in", nonce)

    def _derived(self, purpose: bytes, value: str) -> str:
        return _b64(hmac.new(self._key, purpose + b"\x1f" + value.encode(), hashlib.sha256).digest())

    # --- sessions ---------------------------------------------------------------------------

    def start(self, token_id: str) -> tuple[str, Session]:
        """A new session for ``token_id``: (cookie value, session). Expired sessions go first;
        past the bounds, the token's least recently seen one, then anyone's."""
        now = self._clock.now()
        sid = _b64(secrets.token_bytes(32))
        stored = WebSession(policy.session_key(sid), token_id, now, now)
        with self._uow(True) as uow:
            uow.sessions.remove_expired(now - self.idle, now - self.absolute)
            held = uow.sessions.of_token(token_id)  # least recently seen first
            for old in held[: max(0, len(held) - self.per_token + 1)]:
                uow.sessions.remove(old.key)
            for _ in range(max(0, uow.sessions.count() - self.max_sessions + 1)):
                uow.sessions.remove_least_recent()
            uow.sessions.add(stored)
            uow.commit()
        return self.sign(sid), self._session(sid, stored)

    def get(self, cookie: str | None) -> Session | None:
        """The live session a cookie names; None if there is none (an expired one is ended)."""
        sid = self.unsign(cookie)
        if sid is None:
            return None
        now = self._clock.now()
        with self._uow(False) as uow:
            stored = uow.sessions.get(policy.session_key(sid))
        if stored is None:
            return None
        if stored.expired(now, self.idle, self.absolute):
            self._write(lambda uow: uow.sessions.remove(stored.key))
            return None
        if stored.stale(now):
            stored = replace(stored, seen_at=now)
            self._write(lambda uow: uow.sessions.save(stored))
        return self._session(sid, stored)

    def end(self, session: Session) -> None:
        self._write(lambda uow: uow.sessions.remove(session.stored.key))

    def end_token(self, token_id: str) -> None:
        """End every session of a token (it was revoked, or is no longer known)."""
        self._write(lambda uow: uow.sessions.remove_token(token_id))

    def count(self) -> int:
        with self._uow(False) as uow:
            return uow.sessions.count()

    # --- messages for the next page ----------------------------------------------------------

    def notify(self, session: Session, message: str, values: Mapping[str, Any]) -> None:
        """Keep a message (of the catalogue) for the next page this session is shown."""
        def add(uow: Any) -> None:
            current = uow.sessions.get(session.stored.key)
            if current is not None:
                notices = [*(current.notices or []), [message, dict(values)]][-policy.MAX_NOTICES:]
                uow.sessions.save(replace(current, notices=notices))

        self._write(add)

    def take_notices(self, session: Session) -> list[tuple[str, dict[str, Any]]]:
        """The messages kept for this page, removed from the session (shown once)."""
        if not session.stored.notices:  # what the request read: nothing to take, no write
            return []
        taken: list[tuple[str, dict[str, Any]]] = []

        def take(uow: Any) -> None:
            current = uow.sessions.get(session.stored.key)
            if current is not None and current.notices:
                taken.extend((str(m), dict(v)) for m, v in current.notices)
                uow.sessions.save(replace(current, notices=None))

        self._write(take)
        return taken

    # --- internals --------------------------------------------------------------------------

    def _session(self, sid: str, stored: WebSession) -> Session:
        return Session(sid, stored.token_id, self._derived(b"csrf", sid), stored)

    def _write(self, change: Any) -> None:
        with self._uow(True) as uow:
            change(uow)
            uow.commit()


def csrf_ok(expected: str | None, given: str | None) -> bool:
    """A form's CSRF token against the expected one, in constant time; absent is wrong."""
    if not expected or not given or len(given) > 200:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())
