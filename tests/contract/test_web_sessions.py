"""The web desk's sessions in the database (:mod:`second_opinion.web.sessions` over
:class:`workflow.ports.WebSessionStore`), on memory, SQLite and PostgreSQL: one session seen by
every server process that shares the key, expiry when idle and after the working day, the bounds per
token and in all, a page view that writes at most once a minute, messages shown once, and no session
id in the table."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from second_opinion.web.sessions import SessionStore
from storage import open_backend
from tests.conftest import BACKENDS, SQL_BACKENDS, T0, sql_engine
from workflow import FixedClock
from workflow.access.sessions import ABSOLUTE, IDLE

KEY = b"k" * 32
MINUTE = timedelta(minutes=1)


@pytest.fixture
def backend(db_url):
    backend = open_backend(db_url)
    yield backend
    backend.close()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


def store(backend, clock: FixedClock, key: bytes = KEY, **bounds: int) -> SessionStore:
    return SessionStore(key, backend.unit_of_work, clock, **bounds)


def seen_at(backend, session) -> object:
    with backend.unit_of_work(False) as uow:
        found = uow.sessions.get(session.stored.key)
        return None if found is None else found.seen_at


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_every_process_sharing_the_key_knows_the_session_and_sign_out_ends_it_everywhere(backend, clock) -> None:
    one, two, stranger = store(backend, clock), store(backend, clock), store(backend, clock, b"x" * 32)
    cookie, session = one.start("tok-a")
    found = two.get(cookie)
    assert found is not None and found.token_id == "tok-a" and found.csrf == session.csrf
    assert stranger.get(cookie) is None  # another key: the signature does not hold
    two.end(found)
    assert one.get(cookie) is None and one.count() == 0


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_idle_and_absolute_expiry(backend, clock) -> None:
    sessions = store(backend, clock)
    cookie, _ = sessions.start("tok-a")
    clock.advance(IDLE)
    assert sessions.get(cookie) is not None  # exactly IDLE: still alive, and touched
    clock.advance(IDLE + MINUTE)
    assert sessions.get(cookie) is None and sessions.count() == 0  # idle too long: ended
    cookie, _ = sessions.start("tok-a")
    while clock.now() - T0 < ABSOLUTE + 2 * IDLE:
        clock.advance(IDLE - MINUTE)
        alive = sessions.get(cookie)
    assert alive is None  # past the absolute limit though never idle


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_a_page_view_writes_seen_at_at_most_once_a_minute(backend, clock) -> None:
    sessions = store(backend, clock)
    cookie, session = sessions.start("tok-a")
    clock.advance(timedelta(seconds=59))
    sessions.get(cookie)
    assert seen_at(backend, session) == T0  # a read only
    clock.advance(timedelta(seconds=1))
    sessions.get(cookie)
    assert seen_at(backend, session) == T0 + MINUTE


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_bounds_per_token_and_in_all_end_the_least_recently_seen(backend, clock) -> None:
    sessions = store(backend, clock, per_token=2, max_sessions=3)
    first, _ = sessions.start("tok-a")
    clock.advance(MINUTE)
    second, _ = sessions.start("tok-a")
    clock.advance(MINUTE)
    sessions.get(first)  # first is now seen more recently than second
    clock.advance(MINUTE)
    third, _ = sessions.start("tok-a")
    assert [sessions.get(c) is not None for c in (first, second, third)] == [True, False, True]
    clock.advance(MINUTE)
    sessions.get(third)  # first and third were both seen just now: third is now the more recent
    clock.advance(MINUTE)
    other, _ = sessions.start("tok-b")
    clock.advance(MINUTE)
    last, _ = sessions.start("tok-c")  # a fourth in all: the least recently seen (first) goes
    assert sessions.count() == 3
    assert [sessions.get(c) is not None for c in (first, third, other, last)] == [False, True, True, True]


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_ending_a_token_ends_its_sessions_only(backend, clock) -> None:
    sessions = store(backend, clock)
    a1, _ = sessions.start("tok-a")
    a2, _ = sessions.start("tok-a")
    b1, _ = sessions.start("tok-b")
    sessions.end_token("tok-a")
    assert [sessions.get(c) is not None for c in (a1, a2, b1)] == [False, False, True]


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_messages_are_shown_once_whichever_process_shows_them(backend, clock) -> None:
    one, two = store(backend, clock), store(backend, clock)
    cookie, session = one.start("tok-a")
    one.notify(session, "Case %(case)s was opened.", {"case": "so-1"})
    shown = two.get(cookie)
    assert shown is not None
    assert two.take_notices(shown) == [("Case %(case)s was opened.", {"case": "so-1"})]
    again = one.get(cookie)
    assert again is not None and one.take_notices(again) == []


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
def test_the_table_holds_no_session_id_and_no_csrf_token(backend, clock, db_url: str) -> None:
    cookie, session = store(backend, clock).start("tok-a")
    engine = sql_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = [" ".join(str(v) for v in row) for row in conn.execute(text("SELECT * FROM web_sessions"))]
    finally:
        engine.dispose()
    assert len(rows) == 1
    assert session.id not in rows[0] and cookie.split(".")[1] not in rows[0] and session.csrf not in rows[0]
