"""``GET /events`` and ``/subscriptions`` over HTTP (issue 19): the token's organisation only, the
roles the table allows, a page logged as an access, bad input refused with nothing written."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from second_opinion import connect
from tests.api_support import Api, problem
from tests.conftest import T0
from workflow import FixedClock
from workflow.service.deadlines import DeadlineService

KEY = b"feed-test-identity-key-32-bytes!"
HOOK = "https://hooks.example.org/second-opinion"


@pytest.fixture
def api(tmp_path) -> Iterator[Api]:  # type: ignore[no-untyped-def]
    from tests.conftest import migrated_sqlite

    with connect(migrated_sqlite(tmp_path / "api.sqlite3"), clock=FixedClock(T0), identity_key=KEY) as service:
        yield Api(service)


def access_log(api: Api) -> list[Any]:
    with api.service.runtime.uow(False) as uow:
        return uow.access.all()


def events(api: Api, headers: dict[str, str], **params: Any) -> Any:
    return api.client.get("/events", params=params, headers=headers)


def test_the_feed_pages_the_organisations_events_and_logs_each_page(api):
    mine = [api.open("org-a", f"PX-{i}") for i in range(3)]
    theirs = api.open("org-b", "PX-9")
    assert api.fire(mine[0], "refer").status_code == 200
    coordinator = api.auth("coordinator", "org-a")
    seen: list[dict[str, Any]] = []
    cursor = None
    before = len(access_log(api))
    while True:
        answer = events(api, coordinator, limit=2, **({"after": cursor} if cursor else {}))
        assert answer.status_code == 200, answer.text
        page = answer.json()
        if not page["events"]:
            assert page["next_cursor"] == cursor
            break
        seen += page["events"]
        cursor = page["next_cursor"]
    assert [(e["type"], e["data"]["case_id"]) for e in seen] == [
        ("case.opened", mine[0]), ("case.opened", mine[1]), ("case.opened", mine[2]), ("case.transitioned", mine[0]),
    ]  # fmt: skip
    assert theirs not in {e["data"]["case_id"] for e in seen}
    logged = [r for r in access_log(api)[before:] if r.kind == "events"]
    assert len(logged) == 3 and all(r.outcome == "granted" and r.organisation == "org-a" for r in logged)
    assert set(logged[0].cases or ()) == set(mine[:2]) and logged[-1].cases == ()
    # an auditor reads the same feed
    assert events(api, api.auth("auditor", "org-a")).json()["events"] == seen


@pytest.mark.parametrize("params", [{"after": "nonsense"}, {"after": "ZjEuLTE"}, {"limit": 0}, {"limit": 501},
                                    {"after": "x" * 65}, {"limit": "many"}])  # fmt: skip
def test_a_bad_cursor_or_limit_is_a_422_and_logs_nothing(api, params):
    api.open("org-a")
    coordinator = api.auth("coordinator", "org-a")
    before = len(access_log(api))
    body = problem(events(api, coordinator, **params), 422, "validation-error")
    assert ("after" if "after" in params else "limit") in body["detail"]
    assert len(access_log(api)) == before


@pytest.mark.parametrize("role", ["gp", "first_provider", "second_opinion_doctor", "care_consultant", "patient"])
def test_roles_without_the_changes_read_are_refused(api, role):
    api.open("org-a")
    problem(events(api, api.auth(role, "org-a")), 403, "permission-denied")
    problem(api.client.get("/subscriptions", headers=api.auth(role, "org-a")), 403, "permission-denied")
    assert [r.outcome for r in access_log(api) if r.kind in ("events", "subscriptions")] == ["denied", "denied"]


def test_subscriptions_over_http_show_the_secret_once_and_stay_in_their_organisation(api):
    coordinator, other = api.auth("coordinator", "org-a"), api.auth("coordinator", "org-b")
    made = api.client.post("/subscriptions", json={"url": HOOK, "event_types": ["case.*"]}, headers=coordinator)
    assert made.status_code == 201, made.text
    created = made.json()
    assert created["secret"].startswith("whsec_") and created["organisation"] == "org-a"
    assert created["event_types"] == ["case.*"] and created["active"] is True
    listed = api.client.get("/subscriptions", headers=coordinator)
    assert listed.status_code == 200 and [s["id"] for s in listed.json()] == [created["id"]]
    assert created["secret"] not in listed.text and "secret" not in listed.json()[0]
    assert api.client.get("/subscriptions", headers=other).json() == []
    # another organisation's subscription is not theirs to rotate or remove
    sub = created["id"]
    problem(api.client.post(f"/subscriptions/{sub}/rotate-secret", headers=other), 422, "validation-error")
    problem(api.client.delete(f"/subscriptions/{sub}", headers=other), 422, "validation-error")
    rotated = api.client.post(f"/subscriptions/{sub}/rotate-secret", headers=coordinator)
    assert rotated.status_code == 200 and rotated.json()["secret"] not in (created["secret"], None)
    assert rotated.json()["rotated_at"] == "2026-11-23T09:00:00.000000Z"
    # events go to it from now on
    case_id = api.open("org-a")
    queued = DeadlineService(api.service.runtime).notifications()
    assert [(n.target, n.case_id, n.kind) for n in queued] == [(sub, case_id, "case.opened")]
    assert api.client.delete(f"/subscriptions/{sub}", headers=coordinator).status_code == 204
    assert api.client.get("/subscriptions", headers=coordinator).json() == []
    assert DeadlineService(api.service.runtime).notifications()[0].status == "dead"
    # every use of a token on the subscriptions is in the access log, naming its credential
    managed = [(r.kind, r.outcome, r.credential) for r in access_log(api) if r.kind.startswith("subscription")]
    token_ids = {r.credential for r in access_log(api) if r.kind == "subscription-added"}
    assert [k for k, _, _ in managed] == ["subscription-added", "subscriptions", "subscriptions",
                                          "subscription-rotated", "subscription-removed", "subscriptions"]  # fmt: skip
    assert len(token_ids) == 1 and None not in token_ids


@pytest.mark.parametrize(
    "body",
    [
        {"url": "http://hooks.example.org/x"},
        {"url": "http://127.0.0.1:8080/x"},  # the setting is off
        {"url": "https://hooks.example.org/" + "a" * 2001},
        {"url": HOOK, "event_types": ["case.deleted"]},
        {"url": HOOK, "event_types": ["case.opened"] * 17},
        {"url": HOOK, "secret": "whsec_mine"},  # a secret is never chosen by the caller
        {"url": 5},
        {},
    ],
)
def test_bad_subscriptions_are_a_422_with_nothing_written(api, body):
    coordinator = api.auth("coordinator", "org-a")
    problem(api.client.post("/subscriptions", json=body, headers=coordinator), 422, "validation-error")
    assert api.client.get("/subscriptions", headers=coordinator).json() == []


def test_an_auditor_reads_the_feed_but_manages_no_subscription(api):
    auditor = api.auth("auditor", "org-a")
    assert events(api, auditor).status_code == 200
    problem(api.client.post("/subscriptions", json={"url": HOOK}, headers=auditor), 403, "permission-denied")


def test_the_routes_have_camel_case_operation_ids(api):
    spec = api.app.openapi()
    found = {spec["paths"][p][m]["operationId"] for p in ("/events", "/subscriptions",
             "/subscriptions/{subscription_id}", "/subscriptions/{subscription_id}/rotate-secret")
             for m in spec["paths"][p]}  # fmt: skip
    assert found == {"listChangeEvents", "listSubscriptions", "createSubscription", "deleteSubscription",
                     "rotateSubscriptionSecret"}  # fmt: skip
