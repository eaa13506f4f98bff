"""How many units of work (each a pooled connection, a transaction, its round trips) one case
read through the API opens: the token lookup, one read of the case with what the route shows of
it, and the access record's append. Guards the gain against a read path that reads the case again
in a unit of work of its own (see docs/benchmarks.md, "Left: the API").

The first use of a token in a minute also notes its last use (one write more, issue 19): each test
uses its token once before counting, and :func:`test_a_tokens_first_use_in_a_minute_is_one_write_more`
counts that write."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from tests.api_support import Api
from tests.conftest import SQL_BACKENDS, walk
from workflow import CaseService
from workflow.access.log import GRANTED, NOT_FOUND

READ, WRITE = False, True


def count_units(service: CaseService) -> tuple[CaseService, list[bool]]:
    """The service on a runtime whose units of work are counted (True for a write); everything
    built on it afterwards (the app's token and access services) shares that runtime."""
    opened: list[bool] = []
    factory = service.runtime.uow

    def unit(write: bool) -> Any:
        opened.append(write)
        return factory(write)

    return CaseService.on(replace(service.runtime, uow=unit)), opened


def warm(api: Api, headers: dict[str, str]) -> None:
    """Use the token once: its last use is then noted for the minute (issue 19)."""
    assert api.client.get("/cases", headers=headers).status_code == 200


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
def test_a_tokens_first_use_in_a_minute_is_one_write_more(service: CaseService, clock) -> None:  # type: ignore[no-untyped-def]
    service, opened = count_units(service)
    api = Api(service)
    case_id = api.open()
    desk = api.auth("coordinator")
    for advance, expected in ((None, [READ, WRITE, READ, WRITE]), (timedelta(seconds=59), [READ, READ, WRITE]),
                              (timedelta(seconds=1), [READ, WRITE, READ, WRITE])):  # fmt: skip
        if advance is not None:
            clock.advance(advance)
        del opened[:]
        assert api.client.get(f"/cases/{case_id}", headers=desk).status_code == 200
        assert opened == expected  # the token, (its last use), the case, the access record


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
@pytest.mark.parametrize("path", ["", "/history", "/deadlines"])
def test_a_case_read_is_three_units_of_work(service: CaseService, path: str) -> None:
    service, opened = count_units(service)  # before the app is built: the token and access services share it
    api = Api(service)
    case_id = api.open()
    walk(service, case_id, "referred")  # the case has a running deadline to show
    desk = api.auth("coordinator")
    warm(api, desk)

    del opened[:]
    answer = api.client.get(f"/cases/{case_id}{path}", headers=desk)
    assert answer.status_code == 200, answer.text
    assert answer.json()["deadlines" if path == "" else 0]  # the case's rows are in the answer
    # the token, the case with its deadlines or history (one snapshot), the access record
    assert opened == [READ, READ, WRITE]
    with service.unit_of_work(False) as uow:
        last = uow.access.for_case(case_id)[-1]
    assert (last.kind, last.outcome) == ({"": "case"}.get(path, path.lstrip("/")), GRANTED)


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
def test_a_read_of_another_organisations_case_is_as_many(service: CaseService) -> None:
    service, opened = count_units(service)
    api = Api(service)
    case_id = api.open("org-b")
    other = api.auth("coordinator", "org-a")
    warm(api, other)

    del opened[:]
    assert api.client.get(f"/cases/{case_id}", headers=other).status_code == 404
    assert opened == [READ, READ, WRITE]  # its deadlines are never read; the refusal is logged
    with service.unit_of_work(False) as uow:
        last = uow.access.for_case(case_id)[-1]
    assert (last.kind, last.outcome, last.organisation) == ("case", NOT_FOUND, "org-a")


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
def test_a_fire_is_one_unit_of_work_after_the_token(service: CaseService) -> None:
    """The visibility check runs on the locked case inside the command's own unit of work."""
    service, opened = count_units(service)
    api = Api(service)
    case_id = api.open()
    desk = api.auth("coordinator")
    warm(api, desk)

    del opened[:]
    answer = api.client.post(f"/cases/{case_id}/events", headers=desk,
                             json={"event": "withdraw", "reason": "the patient stopped"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert opened == [READ, WRITE]  # the token; the case locked, checked, decided and written


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
def test_a_fire_at_another_organisations_case_writes_only_the_access_record(service: CaseService) -> None:
    service, opened = count_units(service)
    api = Api(service)
    case_id = api.open("org-b")
    other = api.auth("coordinator", "org-a")
    warm(api, other)

    del opened[:]
    answer = api.client.post(f"/cases/{case_id}/events", headers=other,
                             json={"event": "withdraw", "reason": "not mine"})  # fmt: skip
    assert answer.status_code == 404
    assert opened == [READ, WRITE, WRITE]  # the token; the locked case (rolled back); the access record
    assert service.case(case_id).version == 1 and len(service.history(case_id)) == 1
    with service.unit_of_work(False) as uow:
        last = uow.access.for_case(case_id)[-1]
    assert (last.kind, last.outcome, last.organisation) == ("fire", NOT_FOUND, "org-a")
