"""The web desk's work list is sortable: each order the page offers lists both tables in that
order; an order it does not offer is a 422 page naming the problem, and nothing is read or logged."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from second_opinion import connect
from second_opinion.api import create_app
from tests.conftest import DESK, T0, walk
from workflow import FixedClock
from workflow.service.access import AccessService
from workflow.service.tokens import TokenService

from .test_web_desk import signed_in


@pytest.fixture
def desk() -> Any:
    clock = FixedClock(T0)
    service = connect("memory://", clock=clock)
    ids = []
    for i in range(3):  # referred a day apart: due a day apart, opened in the same order
        clock.set(T0 + timedelta(days=i))
        case_id = service.open_case(f"PX-S{i}", actor=DESK, organisation="org-a").case_id
        walk(service, case_id, "referred")
        ids.append(case_id)
    clock.set(T0 + timedelta(days=30))  # all three overdue
    secret, _ = TokenService(service.runtime).create("desk-1", "coordinator", "org-a")
    client = TestClient(create_app(service), raise_server_exceptions=False)
    signed_in(client, secret)
    return service, ids, client


def listed(html: str) -> list[str]:
    return re.findall(r'<td><a href="/ui/cases/([^"]+)">', html)


@pytest.mark.parametrize(("sort", "order"), [(None, [0, 1, 2]), ("due", [0, 1, 2]), ("-due", [2, 1, 0]),
                                             ("-opened", [2, 1, 0]), ("opened", [0, 1, 2])])  # fmt: skip
def test_each_order_lists_the_overdue_cases_in_it(desk: Any, sort: str | None, order: list[int]) -> None:
    _, ids, client = desk
    page = client.get("/ui/work", params={"sort": sort} if sort else {})
    assert page.status_code == 200
    assert listed(page.text) == [ids[i] for i in order]
    assert f'<option value="{sort or "due"}" selected>' in page.text


def test_an_order_not_offered_is_refused_and_nothing_is_logged(desk: Any) -> None:
    service, _, client = desk
    before = AccessService(service.runtime).verify_log()[0]
    page = client.get("/ui/work", params={"sort": "patient_ref"})
    assert page.status_code == 422 and "Choose one of the orders the work list offers." in page.text
    assert AccessService(service.runtime).verify_log()[0] == before
