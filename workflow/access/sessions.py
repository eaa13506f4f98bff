"""Web desk sessions as the store keeps them: who signed in with which token, since when, last
seen when. Kept in the database (not in a server's memory) so that a desk behind several
``serve`` processes keeps its session whichever process answers, and signing out or revoking the
token ends it on all of them.

The session id itself (the secret in the cookie) is never stored: a row is found by its SHA-256
(:func:`session_key`), so a copy of the table signs no one in. The CSRF token is derived from the
id by the web layer, and not stored either. Times are UTC, from the injectable clock.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

IDLE = timedelta(minutes=30)
"""A session ends after this long without a request."""
ABSOLUTE = timedelta(hours=10)
"""A session ends this long after sign-in whatever happens: a working day, then sign in again."""
TOUCH_EVERY = timedelta(minutes=1)
"""``seen_at`` is written at most this often per session: a page view is a read, not a write,
unless the last write is older (idle expiry is then exact to within this)."""
PER_TOKEN = 20
"""Sessions one token may hold at once; signing in once more ends its least recently seen one."""
MAX_SESSIONS = 10_000
"""Sessions kept at once in all; past it the least recently seen one is ended."""
MAX_NOTICES = 5
"""Messages kept for the next page at most (the newest)."""


def session_key(session_id: str) -> str:
    """The stored key of a session: the SHA-256 of its id, hex."""
    return hashlib.sha256(session_id.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class WebSession:
    key: str
    """SHA-256 of the session id (:func:`session_key`)."""
    token_id: str
    started_at: datetime
    seen_at: datetime
    notices: list[list[Any]] | None = field(default=None)
    """Messages for the next page shown, ``[message, values]`` each: a catalogue message and its
    values (a case id, an event, a state, a version; never patient data), shown once."""

    def expired(self, now: datetime, idle: timedelta = IDLE, absolute: timedelta = ABSOLUTE) -> bool:
        return now - self.seen_at > idle or now - self.started_at > absolute

    def stale(self, now: datetime) -> bool:
        """Whether ``seen_at`` is old enough to be written again (:data:`TOUCH_EVERY`)."""
        return now - self.seen_at >= TOUCH_EVERY
