"""Web-desk sessions in memory (:class:`workflow.ports.Sessions`), staged like the rest of
:mod:`storage.memory` (its own module to keep that one under the size limit)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from workflow.access.sessions import WebSession

from .memory_values import utc_fields


class Staged(Protocol):
    """What of the memory unit of work the sessions use (a protocol, so that this module does not
    import :mod:`storage.memory`, which imports it)."""

    staged_sessions: dict[str, WebSession]


class MemorySessions:
    def __init__(self, uow: Staged) -> None:
        self._uow = uow

    def add(self, session: WebSession) -> None:
        if session.key in self._uow.staged_sessions:
            raise ValueError("session exists")
        self._uow.staged_sessions[session.key] = utc_fields(session)

    def get(self, key: str) -> WebSession | None:
        return self._uow.staged_sessions.get(key)

    def save(self, session: WebSession) -> None:
        if session.key in self._uow.staged_sessions:
            self._uow.staged_sessions[session.key] = utc_fields(session)

    def remove(self, key: str) -> None:
        self._uow.staged_sessions.pop(key, None)

    def remove_token(self, token_id: str) -> None:
        for s in self.of_token(token_id):
            del self._uow.staged_sessions[s.key]

    def remove_expired(self, seen_before: datetime, started_before: datetime) -> None:
        for s in list(self._uow.staged_sessions.values()):
            if s.seen_at < seen_before or s.started_at < started_before:
                del self._uow.staged_sessions[s.key]

    def of_token(self, token_id: str) -> list[WebSession]:
        mine = (s for s in self._uow.staged_sessions.values() if s.token_id == token_id)
        return sorted(mine, key=lambda s: (s.seen_at, s.key))

    def count(self) -> int:
        return len(self._uow.staged_sessions)

    def remove_least_recent(self) -> None:
        if self._uow.staged_sessions:
            del self._uow.staged_sessions[min(self._uow.staged_sessions.values(), key=lambda s: (s.seen_at, s.key)).key]
