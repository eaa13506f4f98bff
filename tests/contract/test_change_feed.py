"""The change feed and webhook subscriptions on every backend (issue 19): what is written with each
accepted change, what a page of the feed holds, how subscriptions are kept, and the outbox's rule
that a subscription's deliveries of one case are leased one after the other, in order."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

import storage.feed_repository
import storage.memory
import storage.memory_feed
import storage.repositories
from second_opinion import connect
from tests.conftest import BACKENDS, DESK, GP, T0, walk
from workflow import FixedClock
from workflow.errors import ConfigurationError, SecondOpinionError, ValidationError
from workflow.feed.events import EVENT_TYPES, cursor_of
from workflow.ports import SUBSCRIPTION
from workflow.service.cases import CaseService
from workflow.service.deadlines import DeadlineService
from workflow.service.feed import FeedService

KEY = b"feed-test-identity-key-32-bytes!"
BSN = "111222333"


@pytest.fixture
def feed_service(db_url: str) -> Iterator[CaseService]:
    with connect(db_url, clock=FixedClock(T0), identity_key=KEY) as service:
        yield service


def feed_of(service: CaseService) -> FeedService:
    return FeedService(service.runtime, allow_local_http=True)


def opened(service: CaseService, org: str = "org-a", **options) -> str:  # type: ignore[no-untyped-def]
    return service.open_case("PX-1", actor=DESK, organisation=org, **options).case_id


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_every_accepted_change_is_one_event_and_a_refusal_none(feed_service):
    service, feed = feed_service, feed_of(feed_service)
    case_id = opened(service, bsn=BSN)
    walk(service, case_id, "referred")
    with pytest.raises(SecondOpinionError):  # refused: in the audit trail, not in the feed
        service.fire(case_id, "review", actor=DESK)
    events = feed.page("org-a").events
    accepted = [r for r in service.history(case_id) if r.outcome == "accepted"]
    assert len(service.history(case_id)) == len(accepted) + 1  # the refusal is recorded there
    assert [(e.event, e.from_state, e.to_state, e.version) for e in events] == [
        (r.event, r.from_state, r.to_state, version) for version, r in enumerate(accepted, start=1)
    ]
    assert [e.type for e in events] == ["case.opened"] + ["case.transitioned"] * (len(events) - 1)
    assert [e.sequence for e in events] == sorted({e.sequence for e in events})
    first = events[0].payload()
    assert set(first) == {"id", "type", "timestamp", "data"}
    assert first["data"] == {
        "case_id": case_id, "organisation": "org-a", "route": "domestic", "from_state": None,
        "to_state": "requested", "event": "open", "version": 1, "occurred_at": "2026-11-23T09:00:00.000000Z",
        "recorded_at": "2026-11-23T09:00:00.000000Z", "actor_role": "coordinator",
    }  # fmt: skip
    # stable: the same ids when read again
    assert [e.id for e in feed.page("org-a").events] == [e.id for e in events]


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_no_event_names_the_patient_or_a_hash_of_them(feed_service):
    service, feed = feed_service, feed_of(feed_service)
    case_id = service.open_case("PX-1", actor=DESK, organisation="org-a", bsn=BSN,
                                patient_name="Jan Jansen").case_id  # fmt: skip
    case = service.case(case_id)
    text = repr([e.payload() for e in feed.page("org-a").events])
    for secret in (BSN, "Jansen", "PX-1", case.bsn_hash, *case.name_hashes):
        assert secret and secret not in text


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_pages_follow_the_cursor_and_stay_in_the_organisation(feed_service):
    service, feed = feed_service, feed_of(feed_service)
    mine = [opened(service) for _ in range(3)]
    theirs = opened(service, "org-b")
    service.fire(mine[0], "withdraw", actor=DESK, reason="patient's wish")
    seen, cursor = [], None
    while True:
        page = feed.page("org-a", cursor, 2)
        assert len(page.events) <= 2
        if not page.events:
            assert page.next_cursor == cursor  # an empty page hands the cursor back: poll with it
            break
        seen += page.events
        assert {c.id for c in page.cases} == {e.case_id for e in page.events}
        cursor = page.next_cursor
    assert [e.case_id for e in seen] == [*mine, mine[0]]
    assert theirs not in {e.case_id for e in seen}
    assert [e.case_id for e in feed.page("org-b").events] == [theirs]
    # a new event after the last cursor is the next page
    service.fire(mine[1], "withdraw", actor=DESK, reason="patient's wish")
    assert [e.case_id for e in feed.page("org-a", cursor).events] == [mine[1]]


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
@pytest.mark.parametrize("cursor", ["nonsense", "ZjEu", cursor_of(3)[:-1] + "!", "x" * 41, "ZjEuLTE", "ZjIuNQ"])
def test_a_bad_cursor_or_limit_is_refused(feed_service, cursor):
    feed = feed_of(feed_service)
    with pytest.raises(ValidationError, match="after"):
        feed.page("org-a", cursor)
    for limit in (0, 501, -1):
        with pytest.raises(ValidationError, match="limit"):
            feed.page("org-a", None, limit)


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_subscriptions_are_kept_per_organisation_without_their_secret(feed_service, db_url):
    feed = feed_of(feed_service)
    secret, made = feed.add("org-a", "https://hooks.example.org/so", ["case.opened", "deadline.*"])
    assert secret.startswith("whsec_") and len(secret) > 30
    assert made.secret != secret and secret not in made.secret and "secret" not in made.as_dict()
    feed.add("org-b", "https://other.example.org/so")
    listed = feed.list("org-a")
    assert [(s.id, s.url, s.event_types, s.active) for s in listed] == [
        (made.id, "https://hooks.example.org/so", ("case.opened", "deadline.*"), True)
    ]
    assert feed.endpoints([made.id])[made.id].secret == secret  # type: ignore[union-attr]
    again, rotated = feed.rotate(made.id, "org-a")
    assert again != secret and rotated.rotated_at == T0
    assert feed.endpoints([made.id])[made.id].secret == again  # type: ignore[union-attr]
    with pytest.raises(ValidationError, match="not a subscription"):  # another organisation's: unknown
        feed.rotate(made.id, "org-b")
    feed.set_active(made.id, False)
    assert feed.endpoints([made.id]) == {made.id: f"subscription {made.id} is inactive"}
    feed.remove(made.id, "org-a")
    assert feed.list("org-a") == []
    assert feed.endpoints([made.id]) == {made.id: f"subscription {made.id} was removed"}
    if db_url.startswith("sqlite"):  # the row holds no secret in clear
        import sqlite3

        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
            stored = conn.execute("SELECT secret FROM webhook_subscriptions").fetchall()
        assert stored and all(secret not in s and again not in s and s.startswith("v1:") for (s,) in stored)


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
@pytest.mark.parametrize(
    ("url", "types", "problem"),
    [
        ("http://hooks.example.org/x", None, "must be https"),
        ("ftp://hooks.example.org/x", None, "https URL"),
        ("https://user:pw@hooks.example.org/x", None, "credentials"),
        ("https://hooks.example.org/x#frag", None, "fragment"),
        ("https://hooks.example.org/" + "a" * 2000, None, "at most 2000"),
        ("https://hooks.example.org/a b", None, "spaces"),
        ("https:///nohost", None, "with a host"),
        ("https://hooks.example.org:99999/", None, "not a URL"),
        ("https://hooks.example.org/x", ["case.deleted"], "event_types"),
        ("https://hooks.example.org/x", ["case.opened"] * 17, "event_types"),
    ],
)
def test_bad_subscriptions_are_refused_with_nothing_written(feed_service, url, types, problem):
    feed = feed_of(feed_service)
    with pytest.raises(ValidationError, match=problem):
        feed.add("org-a", url, types)
    assert feed.list("org-a") == []


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_local_http_only_when_the_setting_allows(feed_service):
    strict = FeedService(feed_service.runtime)
    with pytest.raises(ValidationError, match="ALLOW_LOCAL_HTTP"):
        strict.add("org-a", "http://127.0.0.1:8080/hook")
    assert feed_of(feed_service).add("org-a", "http://localhost:8080/hook")[1].url == "http://localhost:8080/hook"


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_without_an_identity_key_no_subscription_is_made(db_url, monkeypatch):
    monkeypatch.delenv("SECOND_OPINION_SECRET", raising=False)
    monkeypatch.delenv("SECOND_OPINION_SECRET_FILE", raising=False)
    with connect(db_url, clock=FixedClock(T0)) as service:
        assert service.runtime.identity_key is None
        feed = FeedService(service.runtime)
        with pytest.raises(ConfigurationError, match="SECOND_OPINION_SECRET"):
            feed.add("org-a", "https://hooks.example.org/x")
        assert feed.list("org-a") == []


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_deliveries_go_to_the_organisations_active_subscriptions_that_want_them(feed_service):
    service, feed = feed_service, feed_of(feed_service)
    _, everything = feed.add("org-a", "https://a.example.org/all")
    _, opened_only = feed.add("org-a", "https://a.example.org/opened", ["case.opened"])
    _, paused = feed.add("org-a", "https://a.example.org/paused", active=False)
    _, other = feed.add("org-b", "https://b.example.org/all")
    case_id = opened(service)
    service.fire(case_id, "refer", actor=GP)
    queued = [n for n in DeadlineService(service.runtime).notifications() if n.channel == SUBSCRIPTION]
    assert sorted((n.target, n.kind) for n in queued) == sorted([
        (everything.id, "case.opened"), (everything.id, "case.transitioned"), (opened_only.id, "case.opened"),
    ])  # fmt: skip
    assert paused.id not in {n.target for n in queued} and other.id not in {n.target for n in queued}
    events = {e.id: e for e in feed.page("org-a").events}
    for n in queued:
        assert n.payload == events[n.payload["id"]].payload() and n.key == f"{n.payload['id']}/{n.target}"


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_a_subscriptions_deliveries_of_a_case_are_leased_one_at_a_time_in_order(feed_service):
    service, feed = feed_service, feed_of(feed_service)
    deadlines = DeadlineService(service.runtime)
    _, sub = feed.add("org-a", "https://a.example.org/all")
    first, second = opened(service), opened(service)
    service.fire(first, "refer", actor=GP)
    service.fire(second, "refer", actor=GP)
    lease = timedelta(minutes=2)
    claimed = deadlines.claim_notifications(lease, 50)
    # the first of each case only; the refer of each waits behind its case's open
    assert sorted((n.case_id, n.kind) for n in claimed) == sorted([(first, "case.opened"), (second, "case.opened")])
    by_case = {n.case_id: n for n in claimed}
    deadlines.settle([(by_case[first], None), (by_case[second], "HTTP 500")], max_attempts=5)
    service.runtime.clock.advance(lease + timedelta(hours=2))  # type: ignore[attr-defined]
    again = deadlines.claim_notifications(lease, 50)
    # first's refer is next; second's open is retried (same key), its refer still waits
    assert sorted((n.case_id, n.kind) for n in again) == sorted([(first, "case.transitioned"),
                                                                 (second, "case.opened")])  # fmt: skip
    retried = next(n for n in again if n.case_id == second)
    assert (retried.key, retried.attempts) == (by_case[second].key, 1)
    # a dead letter holds the case's later events back until an operator retries it
    deadlines.settle([(n, "HTTP 500") for n in again], max_attempts=1)
    service.runtime.clock.advance(timedelta(hours=2))  # type: ignore[attr-defined]
    assert deadlines.claim_notifications(lease, 50) == []
    deadlines.retry(retried.id)  # type: ignore[arg-type]
    assert [(n.case_id, n.kind) for n in deadlines.claim_notifications(lease, 50)] == [(second, "case.opened")]
    assert sub.id


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_removing_a_subscription_dead_letters_what_it_still_had_to_send(feed_service):
    service, feed = feed_service, feed_of(feed_service)
    _, sub = feed.add("org-a", "https://a.example.org/all")
    _, kept = feed.add("org-a", "https://a.example.org/kept")
    opened(service)
    feed.remove(sub.id)
    rows = {n.target: n for n in DeadlineService(service.runtime).notifications()}
    assert (rows[sub.id].status, rows[sub.id].last_error) == ("dead", "subscription removed")
    assert rows[kept.id].status == "pending"


WRITES = {
    "feed": {"memory": (storage.memory_feed.MemoryFeed, "append"), "sql": (storage.feed_repository.SqlFeed, "append")},
    "delivery": {"memory": (storage.memory.MemoryOutbox, "add"), "sql": (storage.repositories.SqlOutbox, "add")},
    "key": {"memory": (storage.memory.MemoryKeys, "put"), "sql": (storage.repositories.SqlKeys, "put")},
}


class InjectedFailure(RuntimeError):
    pass


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
@pytest.mark.parametrize("write", list(WRITES))
def test_the_event_and_its_deliveries_commit_with_the_change_or_not_at_all(feed_service, monkeypatch, db_url, write):
    service, feed = feed_service, feed_of(feed_service)
    feed.add("org-a", "https://a.example.org/all")
    case_id = opened(service)
    before = (service.case(case_id), feed.page("org-a").events, DeadlineService(service.runtime).notifications())
    cls, method = WRITES[write]["memory" if db_url.startswith("memory") else "sql"]

    def fail(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise InjectedFailure(write)

    with monkeypatch.context() as patch:
        patch.setattr(cls, method, fail)
        with pytest.raises(InjectedFailure):
            service.fire(case_id, "refer", actor=GP, idempotency_key="k-1")
    after = (service.case(case_id), feed.page("org-a").events, DeadlineService(service.runtime).notifications())
    assert after == before
    service.fire(case_id, "refer", actor=GP, idempotency_key="k-1")
    assert [e.event for e in feed.page("org-a").events] == ["open", "refer"]


def test_every_type_is_documented():
    assert all(text.endswith(".") for text in EVENT_TYPES.values())
