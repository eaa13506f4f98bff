"""Web sessions: who signed in with which token, kept on the server; the cookie holds a signed
random session id and nothing else.

- **The cookie** is ``<session id>.<signature>``: 32 random bytes, and an HMAC-SHA256 of them under
  the session key (:func:`session_key`). Neither the token nor anything about the caller is in
  it. A cookie whose signature does not hold is refused before the store is looked at.
- **The store** is this process's memory (like the rate limits, :mod:`second_opinion.limits`):
  signing out or a restart ends a session for good; behind several ``serve`` processes a
  session lives on the process that made it (route a client to one process, or sign in again).
  It holds the token's id, never its secret; every request reads the token again, so a revoked
  token ends its sessions at once.
- **Expiry**: after :data:`IDLE` seconds without a request, and :data:`ABSOLUTE` after sign-in
  whatever happens; at most :data:`MAX_SESSIONS` at once (the oldest go first).
- **CSRF**: each session has a synchroniser token, a random value compared in constant time with
  the one every form posts. The sign-in form, before any session, has one tied to a pre-session
  cookie (a signed random nonce) the same way.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

IDLE = 30 * 60
"""Seconds a session lives without a request."""
ABSOLUTE = 10 * 60 * 60
"""Seconds a session lives at most after sign-in: a working day, then sign in again."""
MAX_SESSIONS = 10_000
"""Sessions kept at once; past it the least recently used is ended."""
SESSION_COOKIE = "so_session"
PRE_COOKIE = "so_signin"
LANG_COOKIE = "so_lang"
COOKIE_PATH = "/ui"
ENV_SESSION_KEY = "SECOND_OPINION_SESSION_KEY"
ENV_TLS_PROXY = "SECOND_OPINION_TLS_PROXY"
MIN_KEY_BYTES = 32
_LABEL = b"second-opinion web session v1"

Monotonic = Callable[[], float]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def session_key(identity_key: bytes | None, env: Mapping[str, str]) -> bytes:
    """The key sessions are signed with: ``$SECOND_OPINION_SESSION_KEY`` (at least 32 bytes), else
    one derived from the identity key (``$SECOND_OPINION_SECRET``, never used as it is: an HMAC of it
    under a label of its own), else a random one for this process (sessions end with it anyway)."""
    configured = env.get(ENV_SESSION_KEY, "").encode()
    if configured:
        if len(configured) < MIN_KEY_BYTES:
            from workflow.errors import ConfigurationError

            raise ConfigurationError(ENV_SESSION_KEY, f"the key must be at least {MIN_KEY_BYTES} bytes")
        return hmac.new(configured, _LABEL, hashlib.sha256).digest()
    if identity_key:
        return hmac.new(identity_key, _LABEL, hashlib.sha256).digest()
    return secrets.token_bytes(32)


def behind_tls(env: Mapping[str, str]) -> bool:
    """``$SECOND_OPINION_TLS_PROXY=1``: a proxy ends TLS before us, so cookies are always Secure."""
    return env.get(ENV_TLS_PROXY, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass
class Session:
    id: str
    token_id: str
    csrf: str
    started: float
    seen: float
    notices: list[tuple[str, dict[str, object]]] = field(default_factory=list)
    """Messages for the next page shown (a case opened, an event accepted), shown once: a
    message of the catalogue and its values."""


class SessionStore:
    """Sessions by id, in memory, thread-safe (pages run in a thread pool)."""

    def __init__(self, key: bytes, *, idle: float = IDLE, absolute: float = ABSOLUTE,
                 max_sessions: int = MAX_SESSIONS, monotonic: Monotonic = time.monotonic) -> None:  # fmt: skip
        self._key = key
        self.idle = idle
        self.absolute = absolute
        self.max_sessions = max_sessions
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._sessions: OrderedDict[str, Session] = OrderedDict()

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
        return self.sign(nonce), self._sign_in_token(nonce)

    def sign_in_token(self, cookie: str | None) -> str | None:
        """The form token that belongs to a pre-session cookie (None for no valid cookie)."""
        nonce = self.unsign(cookie)
        return None if nonce is None else self._sign_in_token(nonce)

    def _sign_in_token(self, nonce: str) -> str:
        return _b64(hmac.new(self._key, b"sign-in\x1f" + nonce.encode(), hashlib.sha256).digest())

    # --- sessions ---------------------------------------------------------------------------

    def start(self, token_id: str) -> tuple[str, Session]:
        """A new session for ``token_id``: (cookie value, session)."""
        now = self.monotonic()
        session = Session(_b64(secrets.token_bytes(32)), token_id, _b64(secrets.token_bytes(32)), now, now)
        with self._lock:
            self._drop_expired(now)
            while len(self._sessions) >= self.max_sessions:
                self._sessions.popitem(last=False)
            self._sessions[session.id] = session
        return self.sign(session.id), session

    def get(self, cookie: str | None) -> Session | None:
        """The live session a cookie names, touched; None if there is none (expired ones are ended)."""
        sid = self.unsign(cookie)
        if sid is None:
            return None
        now = self.monotonic()
        with self._lock:
            session = self._sessions.get(sid)
            if session is None:
                return None
            if now - session.seen > self.idle or now - session.started > self.absolute:
                del self._sessions[sid]
                return None
            session.seen = now
            self._sessions.move_to_end(sid)
            return session

    def end(self, session: Session) -> None:
        with self._lock:
            self._sessions.pop(session.id, None)

    def end_token(self, token_id: str) -> None:
        """End every session of a token (it was revoked, or is no longer known)."""
        with self._lock:
            for sid in [s.id for s in self._sessions.values() if s.token_id == token_id]:
                del self._sessions[sid]

    def count(self) -> int:
        return len(self._sessions)

    def _drop_expired(self, now: float) -> None:
        for sid in [s.id for s in self._sessions.values()
                    if now - s.seen > self.idle or now - s.started > self.absolute]:  # fmt: skip
            del self._sessions[sid]


def csrf_ok(expected: str | None, given: str | None) -> bool:
    """A form's CSRF token against the expected one, in constant time; absent is wrong."""
    if not expected or not given or len(given) > 200:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())
