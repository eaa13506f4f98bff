"""The HTTP API and providers (issue 15): opening a case with one (a bad one is a 422 that writes
nothing), ``GET /providers`` with the operator's contact values loaded once when the app is built
(a bad file stops it being built), and the case read showing provider, outcome and self-paying."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from second_opinion.api import create_app
from second_opinion.bootstrap import ENV_PROVIDER_CONTACTS, build_app, load_provider_contacts
from second_opinion.limits import Limits, Rate
from tests.api_support import Api, problem
from tests.conftest import BACKENDS, COVERAGE_FACTS
from workflow import CaseService
from workflow.cases.definitions import DEFINITION
from workflow.errors import ConfigurationError
from workflow.service.access import AccessService

DOMESTIC = "umc-utrecht, jeroen-bosch, generic-hospital"


@pytest.fixture
def api(service: CaseService) -> Iterator[Api]:
    yield Api(service)


def written(api: Api) -> tuple[int, int, int]:
    """Cases, audit records and access records: what a refused opening must leave as it was."""
    report = api.service.verify()
    return len(api.service.cases()), report.records, AccessService(api.service.runtime).verify_log()[0]


def open_with(api: Api, body: dict[str, Any], role: str = "coordinator") -> Any:
    return api.client.post("/cases", json={"patient_ref": "PX-0001", **body}, headers=api.auth(role))


# --- opening ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_open_with_a_provider_and_read_it_back(api: Api) -> None:
    opened = open_with(api, {"provider": "jeroen-bosch"})
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["case_id"]
    read = api.client.get(f"/cases/{case_id}", headers=api.auth("coordinator")).json()
    assert read["provider"] == {"id": "jeroen-bosch", "version": 1, "name": "Jeroen Bosch Ziekenhuis"}
    assert (read["coverage_outcome"], read["self_paying"], read["facts"]["provider"]["id"]) == (
        None, False, "jeroen-bosch")  # fmt: skip
    history = api.client.get(f"/cases/{case_id}/history", headers=api.auth("auditor")).json()
    assert history[0]["payload"]["provider"] == {"id": "jeroen-bosch", "version": 1}
    listed = api.client.get("/cases", headers=api.auth("coordinator")).json()
    assert [c["provider"]["id"] for c in listed] == ["jeroen-bosch"]
    plain = api.client.get(f"/cases/{api.open()}", headers=api.auth("coordinator")).json()
    assert plain["provider"] is None, "none chosen yet"
    royal = api.client.get(f"/cases/{api.open(route='royal-doctors')}", headers=api.auth("coordinator")).json()
    assert royal["provider"]["id"] == "royal-doctors", "implied by the route"


@pytest.mark.parametrize("db_url", ["memory", "sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("body", "detail"),
    [({"provider": "moon-clinic"}, f"must be a provider serving the domestic route: {DOMESTIC}"),
     ({"provider": "2e-arts-online"}, f"must be a provider serving the domestic route: {DOMESTIC}"),
     ({"route": "royal-doctors", "provider": "umc-utrecht"}, "serving the royal-doctors route: royal-doctors"),
     ({"provider": "x" * 65}, "at most 64 characters"),
     ({"provider": 7}, "string"),
     ({"provider": ""}, "must be a provider serving the domestic route")],
    ids=["unknown", "another-route's", "not-serving-royal-doctors", "too-long", "not-a-string", "empty"],
)  # fmt: skip
def test_opening_with_a_bad_provider_is_a_422_that_writes_nothing(api: Api, body: dict[str, Any], detail: str) -> None:
    api.open(patient_ref="PX-0000")
    before = written(api)
    answer = open_with(api, body)
    found = problem(answer, 422, "validation-error")
    assert found["field"] == "provider" and detail in found["detail"], found
    assert "moon-clinic" not in answer.text and "x" * 65 not in answer.text, "what was typed is not repeated"
    assert written(api) == before == (1, 1, 0)


# --- GET /providers -------------------------------------------------------------------------------


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_every_token_may_list_the_providers_and_no_one_without_one(api: Api) -> None:
    for role in ("patient", "auditor", "gp", "care_consultant", "coordinator"):
        answer = api.client.get("/providers", headers=api.auth(role, actor="PX-0001" if role == "patient" else None))
        assert answer.status_code == 200, (role, answer.text)
        assert [p["id"] for p in answer.json()] == ["umc-utrecht", "jeroen-bosch", "generic-hospital",
                                                    "royal-doctors", "2e-arts-online"]  # fmt: skip
    problem(api.client.get("/providers"), 401, "unauthenticated")
    # no case data, but every use of a token is in the access log (issue 19): one record naming no case each
    with api.service.runtime.uow(False) as uow:
        logged = uow.access.all()
    assert [(r.kind, r.case_id, r.actor_role) for r in logged] == [
        ("reference", None, role) for role in ("patient", "auditor", "gp", "care_consultant", "coordinator")]
    assert AccessService(api.service.runtime).verify_log() == (5, [])


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_providers_show_their_rules_and_filter_by_route(api: Api) -> None:
    desk = api.auth("coordinator")
    umc, *_ = api.client.get("/providers", headers=desk).json()
    assert {k: umc[k] for k in ("version", "name", "routes", "consultation", "costs_team_first")} == {
        "version": 1, "name": "UMC Utrecht", "routes": ["domestic"], "consultation": "always",
        "costs_team_first": True}  # fmt: skip
    assert [(i["item"], i["required_when"], i["waivable"]) for i in umc["checklist"]][:2] == [
        ("letter", None, True), ("pathology", "has_pathology", True)]  # fmt: skip
    assert umc["contacts"][0] == {"field": "costs_team_email", "description": "Team Zorgkosten, e-mail",
                                  "value": "TeamZK@umcutrecht.nl", "value_from": "seed"}  # fmt: skip
    for route in DEFINITION.route_names:
        found = api.client.get("/providers", params={"route": route}, headers=desk).json()
        assert [p["id"] for p in found] == list(DEFINITION.serving(route))
    online = api.client.get("/providers", params={"route": "online"}, headers=desk).json()
    assert [(p["consultation"], p["checklist"][0]["item"], p["checklist"][0]["waivable"]) for p in online] == [
        ("never", "question", False)]  # fmt: skip
    bad = problem(api.client.get("/providers", params={"route": "moon"}, headers=desk), 422, "validation-error")
    assert bad["field"] == "route" and "known: domestic, royal-doctors, online" in bad["detail"]
    problem(api.client.get("/providers", params={"route": "r" * 33}, headers=desk), 422, "validation-error")


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_the_operators_contacts_are_shown_with_where_each_value_comes_from(service: CaseService) -> None:
    contacts = {"umc-utrecht": {"costs_team_phone": "088 000 00 00"}, "royal-doctors": {"zorglijn_phone": "088 1"}}
    api = Api(service)
    api.client = TestClient(create_app(service, contacts=contacts), raise_server_exceptions=False)
    found = {p["id"]: p["contacts"] for p in api.client.get("/providers", headers=api.auth("patient")).json()}
    assert [(c["field"], c["value"], c["value_from"]) for c in found["umc-utrecht"]] == [
        ("costs_team_email", "TeamZK@umcutrecht.nl", "seed"), ("costs_team_phone", "088 000 00 00", "operator"),
        ("appointments_phone", None, None)]  # fmt: skip
    assert found["royal-doctors"] == [{"field": "zorglijn_phone", "value": "088 1", "value_from": "operator",
                                       "description": "The insurer's Zorglijn, for the ZorgConsulent"}]  # fmt: skip


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_listing_providers_is_a_read_within_the_read_limit(service: CaseService) -> None:
    api = Api(service)
    limits = Limits.of(read=Rate(2, 60), monotonic=lambda: 1000.0)  # time stands still: nothing refills
    api.client = TestClient(create_app(service, limits=limits), raise_server_exceptions=False)
    reader = api.auth("coordinator")
    assert [api.client.get("/providers", headers=reader).status_code for _ in range(2)] == [200, 200]
    limited = problem(api.client.get("/providers", headers=reader), 429, "rate-limited")
    assert "too many reads" in limited["detail"]
    assert api.client.get("/providers", headers=api.auth("coordinator", actor="desk-2")).status_code == 200


# --- the contacts file, read once by the composition root ------------------------------------------


def test_build_app_reads_the_contacts_file_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "contacts.json"
    path.write_text(json.dumps({"2e-arts-online": {"url": "https://example.org/vraag"}}))
    monkeypatch.setenv(ENV_PROVIDER_CONTACTS, str(path))
    app = build_app("memory://")
    path.write_text("{not json")  # read at start only: a later edit needs a restart
    service: CaseService = app.state.cases
    api = Api(service)
    api.client = TestClient(app, raise_server_exceptions=False)
    (online,) = api.client.get("/providers", params={"route": "online"}, headers=api.auth("patient")).json()
    assert online["contacts"][0]["value"] == "https://example.org/vraag"
    service.close()


@pytest.mark.parametrize(
    ("content", "problem_text"),
    [("{not json", "is not JSON"), ('{"umcu": {}}', "'umcu' is not a provider"),
     ('{"umc-utrecht": {"fax": "1"}}', "'fax' is not a contact field"),
     ('{"umc-utrecht": {"costs_team_phone": "\\u0007"}}', "give printable text of 1 to 200 characters")],
)  # fmt: skip
def test_build_app_refuses_a_bad_contacts_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str, problem_text: str
) -> None:
    path = tmp_path / "contacts.json"
    path.write_text(content)
    monkeypatch.setenv(ENV_PROVIDER_CONTACTS, str(path))
    with pytest.raises(ConfigurationError) as refused:
        build_app("memory://")
    message = str(refused.value)
    assert message.startswith(f"provider contacts file {str(path)!r} ({ENV_PROVIDER_CONTACTS}): ")
    assert problem_text in message and "\n" not in message
    with pytest.raises(ConfigurationError, match="is over 64 KiB"):
        path.write_text(json.dumps({"x": "y" * 70_000}))
        load_provider_contacts(path)


# --- the case read: outcome and self-paying --------------------------------------------------------


@pytest.mark.parametrize("db_url", ["memory", "sqlite"], indirect=True)
def test_the_case_read_shows_the_outcome_and_the_self_paying_mark(api: Api) -> None:
    case_id = open_with(api, {"provider": "generic-hospital"}).json()["case_id"]
    decided = api.client.post(f"/cases/{case_id}/events", headers=api.auth("care_consultant"), json={
        "event": "decide_coverage", "data": {"policy": "generic-basic",
                                             "facts": {**COVERAGE_FACTS, "referral_by": "none"}}})  # fmt: skip
    assert decided.status_code == 200, decided.text
    read = api.client.get(f"/cases/{case_id}", headers=api.auth("coordinator")).json()
    assert (read["coverage_outcome"], read["self_paying"]) == ("partly", False)
    patient = api.auth("patient", actor="PX-0001")
    going = api.client.post(f"/cases/{case_id}/events", json={"event": "proceed_self_paying"}, headers=patient)
    assert going.status_code == 200 and going.json()["to_state"] == "referred", going.text
    read = api.client.get(f"/cases/{case_id}", headers=patient).json()
    assert (read["coverage_outcome"], read["self_paying"], read["facts"]["self_paying"]["outcome"]) == (
        "partly", True, "partly")  # fmt: skip
    assert read["provider"]["name"] == "A hospital in the Netherlands"
