"""FHIR beyond single reads (issue 19): the CapabilityStatement, Task search (bounded, paged as a
searchset Bundle, within the token's visibility, every result a logged read) and OperationOutcome
for every error under /fhir. Validated with the R4B models of ``fhir.resources``, as test_api_fhir."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.task import Task

from second_opinion import connect
from second_opinion.api.fhir_search import MAX_COUNT, TASK_SEARCH
from second_opinion.api.problems import problem
from tests.api_support import Api, outcome
from tests.conftest import PATHS, T0, fire_example
from workflow import FixedClock
from workflow.errors import StorageUnavailable


@pytest.fixture
def api() -> Iterator[Api]:
    with connect("memory://", clock=FixedClock(T0)) as service:
        yield Api(service)


def cases(api: Api) -> dict[str, str]:
    """Five cases of org-a in four states, one of org-b; state -> ... by case id."""
    made = {}
    for n, state in enumerate(["requested", "referred", "dossier_received", "reviewed", "advice_returned"]):
        case_id = api.open(patient_ref=f"PX-50{n:02d}")
        for event in PATHS[state]:
            fire_example(api.service, case_id, event)
        made[case_id] = state
    made[api.open(org="org-b", patient_ref="PX-5099")] = "org-b"
    return made


def search(api: Api, headers: dict[str, str], **params: Any) -> Any:
    return api.client.get("/fhir/Task", params=params, headers=headers)


def pages(api: Api, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    """Every page, following the Bundle's next links (relative to /fhir/)."""
    found = [search(api, headers, **params)]
    while True:
        assert found[-1].status_code == 200, found[-1].text
        Bundle.model_validate(found[-1].json())
        following = [link["url"] for link in found[-1].json()["link"] if link["relation"] == "next"]
        if not following:
            return [page.json() for page in found]
        found.append(api.client.get(f"/fhir/{following[0]}", headers=headers))


def ids(bundles: list[dict[str, Any]]) -> list[str]:
    return [entry["resource"]["id"] for bundle in bundles for entry in bundle["entry"]]


def test_the_capability_statement_validates_and_needs_no_token(api: Api) -> None:
    answer = api.client.get("/fhir/metadata")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/fhir+json")
    statement = CapabilityStatement.model_validate(answer.json())
    assert statement.fhirVersion == "4.0.1" and statement.kind == "instance"
    task = next(r for r in statement.rest[0].resource if r.type == "Task")
    assert {i.code for i in task.interaction} == {"read", "search-type"}
    assert [p.name for p in task.searchParam] == list(TASK_SEARCH)


def test_task_search_pages_through_what_the_token_sees_each_task_once(api: Api) -> None:
    made = cases(api)
    desk = api.auth("coordinator", actor="desk-s")
    bundles = pages(api, desk, _count=2)
    mine = [c for c, state in made.items() if state != "org-b"]
    assert sorted(ids(bundles)) == sorted(mine) and len(bundles) == 3  # org-b's case is never shown
    for entry in bundles[0]["entry"]:
        Task.model_validate(entry["resource"])
    log = api.client.get("/access-log", headers=api.auth("auditor", actor="aud-s")).json()
    kinds = [r["kind"] for r in log if r["actor_id"] == "desk-s"]
    assert kinds.count("fhir-task") == len(mine) and kinds.count("list") == 3  # every result a logged read


def test_task_search_filters_by_status_owner_patient_and_period(api: Api) -> None:
    made = cases(api)
    desk = api.auth("coordinator")
    by_state = {state: case_id for case_id, state in made.items()}
    in_progress = ids(pages(api, desk, status="in-progress", _count=1))  # three of our states, state by state
    assert sorted(in_progress) == sorted(by_state[s] for s in ("dossier_received", "reviewed", "advice_returned"))
    assert ids(pages(api, desk, status="accepted")) == [by_state["referred"]]
    assert ids(pages(api, desk, status="cancelled")) == []
    assert ids(pages(api, desk, patient="PX-5001")) == [by_state["referred"]]
    assert ids(pages(api, desk, patient="urn:second-opinion:patient-ref|PX-5001")) == [by_state["referred"]]
    assert ids(pages(api, desk, patient="Patient/PX-5001")) == [by_state["referred"]]  # a literal reference
    assert len(ids(pages(api, desk, owner="org-a"))) == 5
    assert len(ids(pages(api, desk, owner="Organization/org-a"))) == 5
    assert ids(pages(api, desk, owner="org-b")) == []  # another organisation's: none seen
    assert len(ids(pages(api, desk, period="ge2026-01-01"))) == 5
    assert ids(pages(api, desk, period="ge2099-01-01T00:00:00Z")) == []


def test_a_patient_finds_only_their_own_task(api: Api) -> None:
    made = cases(api)
    own = next(c for c, s in made.items() if s == "referred")
    patient = api.auth("patient", actor="PX-5001")
    assert ids(pages(api, patient)) == [own]


@pytest.mark.parametrize(("params", "field"), [({"status": "done"}, "status"), ({"_count": MAX_COUNT + 1}, "_count"),
                                               ({"period": "lt2026-01-01"}, "period"), ({"sort": "x"}, "query"),
                                               ({"owner": "http://other|org-a"}, "owner"),
                                               ({"_cursor": "9.abc"}, "_cursor")])  # fmt: skip
def test_a_bad_search_is_an_operation_outcome_naming_the_parameter(api: Api, params: dict[str, Any],
                                                                    field: str) -> None:  # fmt: skip
    answer = search(api, api.auth("coordinator"), **params)
    found = outcome(answer, 422, "validation-error")
    assert found["field"] == field
    OperationOutcome.model_validate(answer.json())


@pytest.mark.parametrize(("call", "status", "slug"), [
    (lambda c, h: c.get("/fhir/Task/so-aaaaaaaaaaaaaaaa", headers=h), 404, "unknown-case"),
    (lambda c, h: c.get("/fhir/Patient/1", headers=h), 404, "not-found"),
    (lambda c, h: c.get("/fhir/Task"), 401, "unauthenticated"),
    (lambda c, h: c.get("/fhir/Task", headers={"Authorization": "Bearer so_wrong"}), 401, "unauthenticated"),
    (lambda c, h: c.post("/fhir/Task", headers=h), 405, "method-not-allowed"),
    (lambda c, h: c.get("/fhir/AuditEvent", headers=h), 422, "validation-error"),
    (lambda c, h: c.get("/fhir/Task", headers={**h, "Host": "a/b"}), 400, "bad-request"),
    (lambda c, h: c.post("/fhir/Task", content=b"x" * 300_000, headers=h), 413, "body-too-large"),
    (lambda c, h: c.get("/fhir/Task", headers={**h, "X-On-Behalf-Of": "!"}), 422, "validation-error"),
])  # fmt: skip
def test_every_error_under_fhir_is_an_operation_outcome(api: Api, call: Any, status: int, slug: str) -> None:
    answer = call(api.client, api.auth("coordinator"))
    outcome(answer, status, slug)
    OperationOutcome.model_validate(answer.json())
    if status == 401:
        assert answer.headers["www-authenticate"].startswith("Bearer")


def test_a_lost_database_under_fhir_is_a_transient_outcome(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    case_id = api.open()

    def lost(*_: Any, **__: Any) -> Any:
        raise StorageUnavailable("server closed the connection unexpectedly")

    monkeypatch.setattr(api.app.state.access, "case_file", lost)
    answer = api.client.get(f"/fhir/Task/{case_id}", headers=api.auth("coordinator"))
    outcome(answer, 503, "storage-unavailable")
    assert answer.json()["issue"][0]["code"] == "transient" and answer.headers["retry-after"] == "1"
    assert "connection" not in answer.text  # the cause is the operator's, in the log


@pytest.mark.parametrize(("status", "slug"), [(403, "permission-denied"), (409, "guard-refused"),
                                           (412, "stale-version"), (429, "rate-limited"),
                                           (500, "internal-error")])  # fmt: skip
def test_the_statuses_no_fhir_route_answers_today_would_be_outcomes_too(status: int, slug: str) -> None:
    """No /fhir read is refused by role (403) or writes (409, 412); a rate limit or a crash is hard
    to cause there on purpose: the one function every error goes through says what they would be."""
    answer = problem(status, slug, "a title", "a detail quoting 111222333", "/fhir/Task/so-x", field="x")
    body = json.loads(bytes(answer.body))
    assert answer.media_type == "application/fhir+json" and answer.status_code == status
    OperationOutcome.model_validate(body)
    assert body["issue"][0]["details"]["coding"][0]["code"] == slug and "111222333" not in str(body)


@pytest.mark.parametrize("params", [{"patient": "111222333"}, {"owner": "111222333"},
                                    {"patient": "urn:second-opinion:patient-ref|111222333"}])  # fmt: skip
def test_a_bsn_in_a_search_is_refused_and_never_echoed(api: Api, params: dict[str, str]) -> None:
    answer = search(api, api.auth("coordinator"), **params)
    outcome(answer, 422, "validation-error")
    assert "111222333" not in answer.text


def test_the_problem_document_stays_outside_fhir(api: Api) -> None:
    answer = api.client.get("/cases/so-aaaaaaaaaaaaaaaa", headers=api.auth("coordinator"))
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert api.client.get("/fhirx").headers["content-type"].startswith("application/problem+json")
