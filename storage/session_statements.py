"""The web desk sessions' statements (:mod:`workflow.access.sessions`), named beside their SQL as
in :mod:`storage.statements`, whose catalogue includes them."""

from __future__ import annotations

from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.sql.expression import ClauseElement

from .tables import WebSessionRow

SESSIONS = WebSessionRow.__table__  # type: ignore[attr-defined]
_COLUMNS: list[str] = [c.name for c in SESSIONS.columns]
_BY_KEY = SESSIONS.c.key == bindparam("key")
_LEAST_RECENT = select(SESSIONS.c.key).order_by(SESSIONS.c.seen_at, SESSIONS.c.key).limit(1).scalar_subquery()

SESSION_STATEMENTS: dict[str, tuple[ClauseElement, list[str] | None]] = {
    "insert_session": (SESSIONS.insert().inline(), _COLUMNS),
    "get_session": (select(SESSIONS).where(_BY_KEY), None),
    "save_session": (
        SESSIONS.update().where(SESSIONS.c.key == bindparam("b_key"))
        .values(seen_at=bindparam("seen_at"), notices=bindparam("notices")),
        None,
    ),
    "delete_session": (SESSIONS.delete().where(_BY_KEY), None),
    "delete_token_sessions": (SESSIONS.delete().where(SESSIONS.c.token_id == bindparam("token_id")), None),
    # through ix_web_sessions_seen_at; started_at is older still whenever seen_at is
    "delete_expired_sessions": (
        SESSIONS.delete().where(
            or_(SESSIONS.c.seen_at < bindparam("seen_before"), SESSIONS.c.started_at < bindparam("started_before"))
        ),
        None,
    ),
    "token_sessions": (
        select(SESSIONS)
        .where(SESSIONS.c.token_id == bindparam("token_id"))
        .order_by(SESSIONS.c.seen_at, SESSIONS.c.key),
        None,
    ),
    "count_sessions": (select(func.count()).select_from(SESSIONS), None),
    "delete_least_recent_session": (SESSIONS.delete().where(SESSIONS.c.key == _LEAST_RECENT), None),
}

__all__ = ["SESSION_STATEMENTS"]
