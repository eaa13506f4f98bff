"""``GET /cases`` as a work list (issue 16): filters (patient_ref no longer ignored), overdue with
breached cases, pages by ``Link: <...>; rel="next"``, every parameter checked (unknown, repeated or
out of bounds: a 422 naming it), and one access record per page."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.api_support import Api, problem
from tests.conftest import BACKENDS, PATHS
from workflow import CaseService
from workflow.service.deadlines import DeadlineService


@pytest.fixture
def api(service: CaseService) -> Iterator[Api]:
    yield Api(service)


def walk_pages(api: Api, headers: dict[str, str], target: str) -> tuple[list[str], int]:
    shown: list[str] = []
    pages = 0
    while target:
        answer = api.client.get(target, headers=headers)
        assert answer.status_code == 200, answer.text
        shown += [c["id"] for c in answer.json()]
        pages += 1
        link = answer.headers.get("link")
        if link is None:
            break
        assert link.startswith("</cases?") and link.endswith('>; rel="next"'), link
        target = link[1 : link.index(">")]
    return shown, pages


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_filters_pages_and_one_record_per_page(api: Api) -> None:
    ids = []
    for i in range(5):
        api.service.clock.advance(timedelta(minutes=1))  # type: ignore[attr-defined]
        ids.append(api.open("org-a", f"PX-{i:04d}"))
    api.open("org-b", "PX-0001")
    desk = api.auth("coordinator", "org-a")
    assert [c["id"] for c in api.client.get("/cases", params={"patient_ref": "PX-0003"}, headers=desk).json()] == [
        ids[3]
    ]
    shown, pages = walk_pages(api, desk, "/cases?limit=2&state=requested")
    assert shown == ids and pages == 3
    with api.service.unit_of_work(False) as uow:
        pages_logged = [r for r in uow.access.all() if r.kind == "list" and r.actor_id == "coordinator-1"]
    assert [list(r.cases or ()) for r in pages_logged][-3:] == [ids[:2], ids[2:4], ids[4:]]
    link = api.client.get("/cases?limit=2&state=requested", headers=desk).headers["link"]
    assert parse_qs(urlsplit(link[1 : link.index(">")]).query)["state"] == ["requested"]  # the filters are kept
    by_provider = api.client.get("/cases", params={"provider": "umc-utrecht"}, headers=desk).json()
    assert by_provider == []
    descending = api.client.get("/cases", params={"sort": "-opened"}, headers=desk).json()
    assert [c["id"] for c in descending] == ids[::-1]


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_overdue_keeps_breached_cases_with_working_days_late(api: Api) -> None:
    case_id = api.open("org-a", "PX-0001")
    for event in PATHS["referred"]:
        assert api.fire(case_id, event).status_code == 200
    desk = api.auth("coordinator", "org-a")
    assert api.client.get("/cases", params={"overdue": "true"}, headers=desk).json() == []
    api.service.clock.set(datetime(2026, 12, 9, 9, tzinfo=UTC))  # type: ignore[attr-defined]
    DeadlineService(api.service.runtime).sweep()
    (listed,) = api.client.get("/cases", params={"overdue": "true"}, headers=desk).json()
    assert listed["id"] == case_id and listed["worklist"]["deadline_state"] == "breached"
    assert listed["worklist"]["working_days_late"] == 2 and listed["worklist"]["working_days_left"] is None
    assert "worklist" not in api.client.get("/cases", headers=desk).json()[0]  # plain lists as before


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("patient=PX-0001", "query"),
        ("state=requested&state=withdrawn", "state"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("due_within=-1", "due_within"),
        ("due_within=3&overdue=true", "due_within"),
        ("sort=patient", "sort"),
        ("cursor=abc", "cursor"),
        ("updated_since=yesterday", "updated_since"),
        ("patient_ref=a%20b", "patient_ref"),
        ("state=nowhere", "state"),
    ],
)
def test_bad_parameters_are_a_422_naming_them(api: Api, query: str, field: str) -> None:
    api.open("org-a")
    body = problem(api.client.get(f"/cases?{query}", headers=api.auth("coordinator", "org-a")), 422,
                   "validation-error")  # fmt: skip
    assert field in (body.get("field") or "") + body["detail"], body


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_a_patient_lists_only_their_own_case(api: Api) -> None:
    own = api.open("org-a", "PX-0001")
    api.open("org-a", "PX-0002")
    patient = api.auth("patient", "org-a", actor="PX-0001")
    assert [c["id"] for c in api.client.get("/cases", headers=patient).json()] == [own]
    assert api.client.get("/cases", params={"patient_ref": "PX-0002"}, headers=patient).json() == []


@pytest.mark.parametrize("db_url", ["memory", "sqlite"], indirect=True)
def test_my_cases_are_those_assigned_to_the_tokens_actor(api: Api) -> None:
    """Issue 16: a "my cases" list: ``mine=true`` is ``assignee=`` the token's own actor id."""
    first, second = api.open("org-a", "PX-0001"), api.open("org-a", "PX-0002")
    desk = api.auth("coordinator", "org-a", "desk-7")
    for case_id, who in ((first, "desk-7"), (second, "desk-8")):
        answer = api.client.post(f"/cases/{case_id}/events", json={"event": "assign", "data": {"assignee": who}},
                                 headers=desk)  # fmt: skip
        assert answer.status_code == 200, answer.text
    assert [c["id"] for c in api.client.get("/cases?mine=true", headers=desk).json()] == [first]
    other = api.auth("coordinator", "org-a", "desk-8")
    assert [c["id"] for c in api.client.get("/cases?mine=true", headers=other).json()] == [second]
    clash = api.client.get("/cases?mine=true&assignee=desk-8", headers=desk)
    assert problem(clash, 422, "validation-error")["field"] == "mine"
