"""Hostile and odd input, on every backend: each is a clear 4xx problem that changes nothing, and
what a refused caller tried is in the access log. Found by review and by fuzzing; each case
here once gave a 500 or a lasting bad state."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.api_support import Api, problem
from tests.conftest import BACKENDS
from workflow import CaseService
from workflow.access.rules import SCOPES, Principal
from workflow.access.tokens import NOT_FOR_TOKENS
from workflow.cases.definitions import DEFINITION
from workflow.service.access import AccessService
from workflow.service.inputs import MAX_DATA_DEPTH
from workflow.service.tokens import TokenService


@pytest.fixture
def api(service: CaseService) -> Iterator[Api]:
    yield Api(service)


def _nested(levels: int) -> dict[str, Any]:
    data: dict[str, Any] = {"leaf": 1}
    for _ in range(levels - 1):
        data = {"a": data}
    return data


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_hostile_event_input_is_refused_and_changes_nothing(api: Api) -> None:
    case_id = api.open()
    desk = api.auth("coordinator")
    fire = f"/cases/{case_id}/events"
    refused = {
        "deep data": {"event": "contact_costs_team", "data": _nested(MAX_DATA_DEPTH + 1)},
        "big data": {"event": "contact_costs_team", "data": {"note": "x" * 70_000}},
        "NUL in reason": {"event": "withdraw", "reason": "a\u0000b"},
        "control character in reason": {"event": "withdraw", "reason": "a\u0007b"},
    }
    for name, body in refused.items():
        answer = api.client.post(fire, json=body, headers=desk)
        found = problem(answer, 422, "validation-error")
        assert found["field"] in ("data", "reason"), (name, found)
    as_json = {**desk, "Content-Type": "application/json"}
    surrogate = b'{"event": "contact_costs_team", "data": {"k": "\\ud800"}}'
    problem(api.client.post(fire, content=surrogate, headers=as_json), 422, "validation-error")
    very_deep = b'{"event": "contact_costs_team", "data": ' + b'{"a": ' * 3000 + b"1" + b"}" * 3001
    answer = api.client.post(fire, content=very_deep, headers=as_json)
    assert 400 <= answer.status_code < 500 and "Traceback" not in answer.text, answer.text
    assert api.fire(case_id, "record_circumstances").status_code == 200  # what is allowed still works
    assert api.service.case(case_id).version == 2
    assert api.client.get(f"/cases/{case_id}/history", headers=desk).status_code == 200
    assert api.client.get("/audit/verify", headers=api.auth("auditor")).json()["ok"] is True


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
@pytest.mark.parametrize("path", ["/cases/a%00b", "/cases/a%00b/history", "/fhir/Task/a%00b",
                                  "/fhir/AuditEvent?entity=a%00b", "/cases/a%00b/deadlines"])  # fmt: skip
def test_nul_in_a_case_id_is_an_unknown_case(api: Api, path: str) -> None:
    problem(api.client.get(path, headers=api.auth("coordinator")), 404, "unknown-case")


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_body_size_and_header_limits(api: Api) -> None:
    desk = api.auth("coordinator")
    big = b'{"patient_ref": "PX-0001", "pad": "' + b"x" * 300_000 + b'"}'
    problem(api.client.post("/cases", content=big, headers={**desk, "Content-Type": "application/json"}), 413,
            "body-too-large")  # fmt: skip

    def chunks() -> Iterator[bytes]:
        yield b'{"patient_ref": "PX-0001", "pad": "'
        for _ in range(40):
            yield b"x" * 10_000
        yield b'"}'

    chunked = api.client.post("/cases", content=chunks(), headers={**desk, "Content-Type": "application/json"})
    problem(chunked, 413, "body-too-large")
    empty_key = api.client.post("/cases", json={"patient_ref": "PX-0001"}, headers={**desk, "Idempotency-Key": ""})
    assert problem(empty_key, 422, "validation-error")["field"] == "Idempotency-Key"
    case_id = api.open()
    weak = api.client.post(f"/cases/{case_id}/events", json={"event": "withdraw", "reason": "x"},
                           headers={**desk, "If-Match": 'W/"1"'})  # fmt: skip
    assert "weak" in problem(weak, 422, "validation-error")["detail"]
    bad_json = api.client.post("/cases", content=b"{", headers={**desk, "Content-Type": "application/json"})
    assert problem(bad_json, 422, "validation-error")["field"] == "body"
    assert len(api.service.cases()) == 1


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_refused_commands_are_in_the_access_log(api: Api) -> None:
    case_id = api.open("org-a")
    snoop = api.auth("coordinator", "org-b", actor="snoop-1")
    problem(api.client.post(f"/cases/{case_id}/events", json={"event": "withdraw", "reason": "x"}, headers=snoop),
            404, "unknown-case")  # fmt: skip
    problem(api.client.post("/cases", json={"patient_ref": "PX-0002"}, headers=api.auth("auditor", actor="aud-2")),
            403, "permission-denied")  # fmt: skip
    assert api.service.case(case_id).state == "requested"
    log = api.client.get("/access-log", headers=api.auth("auditor")).json()
    assert ("snoop-1", "fire", "not-found", case_id) in {(r["actor_id"], r["kind"], r["outcome"], r["case_id"])
                                                         for r in log}  # fmt: skip
    assert ("aud-2", "open", "denied") in {(r["actor_id"], r["kind"], r["outcome"]) for r in log}


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_an_auditors_whole_log_read_shows_in_every_patients_overview(api: Api) -> None:
    first, second = api.open(patient_ref="PX-0001"), api.open(patient_ref="PX-0002")
    api.client.get("/access-log", headers=api.auth("auditor", actor="aud-1"))
    for ref, case_id in (("PX-0001", first), ("PX-0002", second)):
        overview = api.client.get("/access-log", headers=api.auth("patient", actor=ref)).json()
        assert ("aud-1", case_id) in {(r["actor_id"], r["case_id"]) for r in overview if r["kind"] == "access-log"}


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_a_role_without_a_scope_sees_nothing(service: CaseService) -> None:
    """Fail closed: a role added to the definition but not to SCOPES must not see the organisation."""
    assert set(SCOPES) == set(DEFINITION.role_names) - set(NOT_FOR_TOKENS)
    _, token = TokenService(service.runtime).create("desk-7", "coordinator", "org-a")
    case_id = service.open_case("PX-0001", actor=Principal(token).actor, organisation="org-a").case_id
    access = AccessService(service.runtime)
    stranger = Principal(type(token)(**{**token.__dict__, "role": "new_role"}))
    assert not access.sees(stranger, service.case(case_id))
