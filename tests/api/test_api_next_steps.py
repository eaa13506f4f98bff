"""``GET /cases/{id}/next`` and ``POST /cases/{id}/check`` over HTTP: the caller's role comes from
the token, visibility and access logging are those of ``GET /cases/{id}``, a check writes nothing
to the case, and bad input is a problem document."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api_support import Api, problem
from tests.conftest import BACKENDS, PATHS
from workflow import CaseService


@pytest.fixture
def api(service: CaseService) -> Iterator[Api]:
    yield Api(service)


def referred(api: Api) -> str:
    case_id = api.open()
    for event in PATHS["referred"]:
        assert api.fire(case_id, event).status_code == 200, event
    return case_id


def access_kinds(api: Api) -> list[tuple[str, str, str | None]]:
    with api.service.unit_of_work(False) as uow:
        return [(r.kind, r.outcome, r.case_id) for r in uow.access.all()]


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_next_answers_for_the_tokens_role_and_is_logged(api: Api) -> None:
    case_id = referred(api)
    doctor = api.auth("second_opinion_doctor")
    answer = api.client.get(f"/cases/{case_id}/next", headers=doctor)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["role"], body["state"], body["version"]) == ("second_opinion_doctor", "referred", 5)
    assert body["checklist"]["missing"] == ["letter"] and body["checklist"]["provider"] == "umc-utrecht"
    events = {e["event"]: e for e in body["events"]}
    dossier = events["receive_dossier"]
    assert dossier["status"] == "blocked" and dossier["guard"] == "checklist_complete"
    assert events["receive_item"]["data"][0]["choices"][0] == "letter"
    assert "assign" in body["not_permitted"]
    desk = api.client.get(f"/cases/{case_id}/next", headers=api.auth("coordinator")).json()
    assert {e["event"] for e in desk["events"]} >= {"assign", "receive_item"} and desk["role"] == "coordinator"
    assert access_kinds(api)[-2:] == [("next", "granted", case_id), ("next", "granted", case_id)]
    assert len(api.service.history(case_id)) == 5


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_check_answers_the_decision_and_writes_nothing_to_the_case(api: Api) -> None:
    case_id = referred(api)
    doctor = api.auth("second_opinion_doctor")
    before = (api.service.case(case_id), api.service.history(case_id), api.service.deadlines_of(case_id))
    refused = api.client.post(f"/cases/{case_id}/check", json={"event": "receive_dossier"}, headers=doctor)
    assert refused.status_code == 200 and refused.headers["etag"] == '"5"'
    verdict = refused.json()
    assert verdict["accepted"] is False and verdict["written"] is False
    assert verdict["refusal"]["guard"] == "checklist_complete" and verdict["refusal"]["type"] == "GuardRefused"
    accepted = api.client.post(f"/cases/{case_id}/check", json={"event": "receive_item", "data": {"item": "letter"}},
                               headers={**doctor, "If-Match": '"5"', "Idempotency-Key": "c-1"})  # fmt: skip
    assert accepted.json()["accepted"] is True and accepted.json()["to_state"] == "referred"
    stale = api.client.post(f"/cases/{case_id}/check", json={"event": "receive_item", "data": {"item": "letter"}},
                            headers={**doctor, "If-Match": '"2"'})  # fmt: skip
    assert stale.json()["refusal"]["type"] == "ConcurrentUpdate"
    after = (api.service.case(case_id), api.service.history(case_id), api.service.deadlines_of(case_id))
    assert after == before
    assert [k for k, _, _ in access_kinds(api)[-3:]] == ["check", "check", "check"]
    # the key was not taken: the real command under it is done
    fired = api.client.post(f"/cases/{case_id}/events", json={"event": "receive_item", "data": {"item": "letter"}},
                            headers={**doctor, "Idempotency-Key": "c-1"})  # fmt: skip
    assert fired.status_code == 200 and fired.json()["replayed"] is False


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_another_organisations_case_is_not_found_and_bad_input_is_422(api: Api) -> None:
    case_id = referred(api)
    stranger = api.auth("coordinator", "org-b")
    problem(api.client.get(f"/cases/{case_id}/next", headers=stranger), 404, "unknown-case")
    problem(api.client.post(f"/cases/{case_id}/check", json={"event": "withdraw"}, headers=stranger), 404,
            "unknown-case")  # fmt: skip
    assert access_kinds(api)[-2:] == [("next", "not-found", case_id), ("check", "not-found", case_id)]
    desk = api.auth("coordinator")
    problem(api.client.post(f"/cases/{case_id}/check", json={"event": "x" * 65}, headers=desk), 422,
            "validation-error")  # fmt: skip
    problem(api.client.post(f"/cases/{case_id}/check", json={"event": "assign", "extra": 1}, headers=desk), 422,
            "validation-error")  # fmt: skip
    bsn = api.client.post(f"/cases/{case_id}/check", json={"event": "assign", "data": {"assignee": "111222333"}},
                          headers=desk)  # fmt: skip
    assert bsn.status_code == 200 and bsn.json()["refusal"]["field"] == "data.assignee" and "111222333" not in bsn.text
    problem(api.client.get("/cases/so-aaaaaaaaaaaaaaaa/next", headers=desk), 404, "unknown-case")
    assert api.client.get(f"/cases/{case_id}/next").status_code == 401
    assert len(api.service.history(case_id)) == 5


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_a_patient_sees_next_steps_of_their_own_case_only(api: Api) -> None:
    case_id = referred(api)
    own = api.client.get(f"/cases/{case_id}/next", headers=api.auth("patient", actor="PX-0001"))
    assert own.status_code == 200 and own.json()["role"] == "patient"
    assert "withdraw" in {e["event"] for e in own.json()["events"]}
    problem(api.client.get(f"/cases/{case_id}/next", headers=api.auth("patient", actor="PX-0002")), 404,
            "unknown-case")  # fmt: skip
    auditor = api.client.get(f"/cases/{case_id}/next", headers=api.auth("auditor")).json()
    assert auditor["events"] == [] and len(auditor["not_permitted"]) == len(api.service.definition.events)
