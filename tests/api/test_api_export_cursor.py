"""``GET /audit/export?after=``: incremental exports by the global sequence with the next cursor in
``X-Next-After``; a clock set back is a 503 ``clock-behind`` that writes nothing (issue 14)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest

from tests.api_support import Api, problem
from tests.conftest import BACKENDS, T0
from workflow import CaseService
from workflow.clock import FixedClock


@pytest.fixture
def api(service: CaseService) -> Iterator[Api]:
    yield Api(service)


def sequences(text: str) -> list[int]:
    return [json.loads(line)["sequence"] for line in text.splitlines()]


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_export_after_a_cursor_answers_the_next_cursor(api: Api) -> None:
    auditor = api.auth("auditor")
    api.open()
    whole = api.client.get("/audit/export", params={"after": 0}, headers=auditor)
    first = sequences(whole.text)
    assert len(first) == 1 and whole.headers["X-Next-After"] == str(first[-1])
    api.open(org="org-b")  # another organisation's record: skipped, and the cursor stays valid
    api.open(patient_ref="PX-0002")
    later = api.client.get("/audit/export", params={"after": first[-1]}, headers=auditor)
    assert sequences(later.text) == [first[-1] + 2] and later.headers["X-Next-After"] == str(first[-1] + 2)
    again = api.client.get("/audit/export", params={"after": first[-1] + 2}, headers=auditor)
    assert again.text == "" and again.headers["X-Next-After"] == str(first[-1] + 2)
    assert "X-Next-After" not in api.client.get("/audit/export", params={"from": "2999-01-01T00:00:00Z"},
                                                headers=auditor).headers  # fmt: skip
    problem(api.client.get("/audit/export", params={"after": -1}, headers=auditor), 422, "validation-error")


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_a_clock_set_back_is_a_503_that_writes_nothing(api: Api, service: CaseService, clock: FixedClock) -> None:
    case_id = api.open()
    desk = api.auth("coordinator")
    clock.set(T0 + timedelta(hours=1))
    assert api.client.get(f"/cases/{case_id}", headers=desk).status_code == 200  # the access log: an hour on
    records, logged = service.export(), service.runtime.uow
    with logged(False) as uow:
        accesses = uow.access.all()
    clock.set(T0 - timedelta(seconds=3))
    body = problem(api.fire(case_id, "record_circumstances"), 503, "clock-behind")
    # the times are in the server's log, not the answer: the last record may be another organisation's
    assert "clock is behind its last record" in body["detail"] and "2026" not in json.dumps(body), body
    problem(api.client.post("/cases", json={"patient_ref": "PX-0002"}, headers=desk), 503, "clock-behind")
    clock.set(T0 + timedelta(minutes=30))  # ahead of the audit, behind the access log
    read = problem(api.client.get(f"/cases/{case_id}", headers=desk), 503, "clock-behind")
    assert "clock is behind" in read["detail"] and "PX-0001" not in json.dumps(read) and "2026" not in read["detail"]
    assert service.export() == records
    with logged(False) as uow:
        assert uow.access.all() == accesses
