"""``/openapi.json`` as a contract to generate clients from (issue 19): hand-chosen operation ids,
enums from the definition table, a named Problem on every error status, one request body per event,
examples that validate, the ETag headers; and the 304 of a conditional read, which is still a read."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from second_opinion import connect
from second_opinion.api.event_data import FIELDS, OPTIONAL, variant_name
from tests.api_support import Api
from tests.conftest import PATHS, T0, fire_example
from workflow import FixedClock
from workflow.cases.definitions import DEFINITION

REF = "#/components/schemas/"
CAMEL_VERB_NOUN = re.compile(r"^[a-z]+(?:[A-Z][a-z0-9]*)+$")


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    with connect("memory://", clock=FixedClock(T0)) as service:
        yield Api(service)


@pytest.fixture(scope="module")
def spec(api: Api) -> dict[str, Any]:
    document: dict[str, Any] = api.client.get("/openapi.json").json()
    return document


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def test_every_route_has_a_hand_chosen_unique_operation_id(spec: dict[str, Any]) -> None:
    """FastAPI's made-up ids (``read_case_cases__case_id__get``) hold underscores: camelCase cannot."""
    ids = [operation["operationId"] for _, _, operation in operations(spec)]
    assert len(ids) >= 25 and len(ids) == len(set(ids))
    for path, method, operation in operations(spec):
        assert CAMEL_VERB_NOUN.fullmatch(operation["operationId"]), (method, path, operation["operationId"])
    assert not CAMEL_VERB_NOUN.fullmatch("read_case_cases__case_id__get")
    assert {"openCase", "readCase", "fireEvent", "checkEvent", "listCases", "searchTasks"} <= set(ids)


def test_the_enums_are_the_definition_tables(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    assert schemas["EventName"]["enum"] == list(DEFINITION.event_names)
    assert schemas["StateName"]["enum"] == [s.name for s in DEFINITION.states]
    assert schemas["RouteName"]["enum"] == list(DEFINITION.route_names)
    assert schemas["RoleName"]["enum"] == list(DEFINITION.role_names)
    assert schemas["CaseOut"]["properties"]["state"]["$ref"] == REF + "StateName"
    assert schemas["CaseOut"]["properties"]["allowed_events"]["items"]["$ref"] == REF + "EventName"
    assert schemas["OpenCase"]["properties"]["route"]["$ref"] == REF + "RouteName"
    assert schemas["AuditRecordOut"]["properties"]["actor_role"]["$ref"] == REF + "RoleName"
    # the change feed (issue 19): its types from the feed's table, its states, route and role from the definition's
    from workflow.feed.events import EVENT_TYPES

    assert schemas["ChangeEventType"]["enum"] == list(EVENT_TYPES)
    assert schemas["EventOut"]["properties"]["type"]["$ref"] == REF + "ChangeEventType"
    data = schemas["EventDataOut"]["properties"]
    assert (data["route"]["$ref"], data["to_state"]["$ref"], data["actor_role"]["$ref"]) == (
        REF + "RouteName", REF + "StateName", REF + "RoleName")
    queries = [("/cases", "state", "StateName"), ("/cases", "route", "RouteName"), ("/providers", "route", "RouteName"),
               ("/reports/summary", "route", "RouteName")]  # fmt: skip
    for path, name, enum in queries:
        query = next(p for p in spec["paths"][path]["get"]["parameters"] if p["name"] == name)
        assert query["schema"]["anyOf"][0]["enum"] == schemas[enum]["enum"], (path, name)


def test_each_event_has_its_own_request_body_from_the_table(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    choice = schemas["FireEvent"]
    assert choice["discriminator"]["propertyName"] == "event"
    assert list(choice["discriminator"]["mapping"]) == list(DEFINITION.event_names)
    for event in DEFINITION.events:
        body = schemas[variant_name(event.name)]
        assert body["properties"]["event"]["const"] == event.name
        assert body["properties"]["data"].get("required", []) == list(event.required_data)
        assert set(body["properties"]["data"]["properties"]) == {*event.required_data, *OPTIONAL.get(event.name, ())}
        assert ("reason" in body["required"]) is event.reason_required
    consent = schemas["FireGiveConsent"]["properties"]["data"]["properties"]
    assert consent["basis"]["enum"] == ["own_request", "written"]
    for path in ("/cases/{case_id}/events", "/cases/{case_id}/check"):
        body = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        assert body["schema"] == {"$ref": REF + "FireEvent"} and set(body["examples"]) == set(DEFINITION.event_names)


def test_every_data_field_an_event_requires_is_described() -> None:
    needed = {key for event in DEFINITION.events for key in (*event.required_data, *OPTIONAL.get(event.name, ()))}
    assert needed <= set(FIELDS), f"describe in second_opinion/api/event_data.py FIELDS: {needed - set(FIELDS)}"


def examples(node: Any, at: str = "") -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """(where, example, schema) for every example in the document: a schema's ``examples`` list, and
    a media type's ``example`` and named ``examples``."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            yield from examples(item, f"{at}/{i}")
    if not isinstance(node, dict):
        return
    if "schema" in node and isinstance(node["schema"], dict):  # a media type or a parameter
        if "example" in node:
            yield at, node["example"], node["schema"]
        for name, named in (node.get("examples") or {}).items():
            yield f"{at}/examples/{name}", named["value"], node["schema"]
    if isinstance(node.get("examples"), list):
        for i, value in enumerate(node["examples"]):
            yield f"{at}/examples/{i}", value, node
    for key, value in node.items():
        if key not in ("examples", "example"):
            yield from examples(value, f"{at}/{key}")


def validator(spec: dict[str, Any], schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    # the schema as the root of a document holding the components, so that its #/components/... resolve
    root = {**schema, "components": spec["components"]}
    return jsonschema.Draft202012Validator(root, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def test_every_example_in_the_document_validates_against_its_schema(spec: dict[str, Any]) -> None:
    found = list(examples(spec))
    assert len(found) >= 2 * len(DEFINITION.events) + len(DEFINITION.events) + 2  # bodies, variants, problem, outcome
    for where, value, schema in found:
        errors = [e.message for e in validator(spec, schema).iter_errors(value)]
        assert not errors, f"{where}: {errors}"


def test_a_wrong_example_would_be_caught(spec: dict[str, Any]) -> None:
    """The check above can fail: the old example of the data ({"consent": true}) and a bad value do."""
    consent = spec["components"]["schemas"]["FireGiveConsent"]
    assert list(validator(spec, consent).iter_errors({"event": "give_consent", "data": {"consent": True}}))
    bad = {"event": "give_consent", "data": {"basis": "verbal", "scope": "all"}}
    assert list(validator(spec, consent).iter_errors(bad))
    assert list(validator(spec, {"$ref": REF + "FireEvent"}).iter_errors({"event": "review", "data": {"x": 1}}))
    assert not list(validator(spec, {"$ref": REF + "FireEvent"}).iter_errors({"event": "review"}))


def test_every_error_status_is_a_named_problem_or_an_operation_outcome(spec: dict[str, Any]) -> None:
    problem = spec["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "instance"} <= set(problem["required"])
    assert {"field", "errors", "state", "allowed", "guard", "expected", "actual", "known"} <= set(problem["properties"])
    seen = 0
    for path, method, operation in operations(spec):
        for status, response in operation["responses"].items():
            if int(status) < 400 or (path, status) == ("/ready", "503"):  # not ready: a Health body, as documented
                continue
            seen += 1
            fhir = path.startswith("/fhir")
            media, model = ("application/fhir+json", "OperationOutcome") if fhir else \
                ("application/problem+json", "Problem")  # fmt: skip
            assert response["content"] == {media: {"schema": {"$ref": REF + model}}}, (method, path, status)
            if status in ("429", "503"):
                assert "Retry-After" in response["headers"]
    assert seen > 100
    assert "HTTPValidationError" not in spec["components"]["schemas"]  # FastAPI's default 422, never sent


def test_etag_and_the_conditional_headers_are_documented(spec: dict[str, Any]) -> None:
    read = spec["paths"]["/cases/{case_id}"]["get"]
    assert read["responses"]["200"]["headers"]["ETag"]["required"] is True
    assert "ETag" in read["responses"]["304"]["headers"]
    assert "If-None-Match" in {p["name"] for p in read["parameters"]}
    fire = spec["paths"]["/cases/{case_id}/events"]["post"]
    assert "If-Match" in {p["name"] for p in fire["parameters"]} and "ETag" in fire["responses"]["200"]["headers"]
    opened = spec["paths"]["/cases"]["post"]["responses"]["201"]["headers"]
    assert {"ETag", "Location"} <= set(opened)


def reads_of(api: Api, case_id: str, actor: str) -> list[str]:
    log = api.client.get(f"/cases/{case_id}/access-log", headers=api.auth("auditor", actor="aud-9")).json()
    return [r["kind"] for r in log if r["actor_id"] == actor]


@pytest.mark.parametrize(("sent", "status"), [('"3"', 304), ('W/"3"', 304), ('"1", "3"', 304), ("*", 304),
                                              ('"2"', 200), ("garbage", 200), ('"33"', 200)])  # fmt: skip
def test_if_none_match_is_a_304_and_still_a_logged_read(api: Api, sent: str, status: int) -> None:
    case_id = api.open(patient_ref="PX-3004")
    for event in PATHS["referred"][:2]:
        fire_example(api.service, case_id, event)
    desk = api.auth("coordinator", actor="desk-304")
    answer = api.client.get(f"/cases/{case_id}", headers={**desk, "If-None-Match": sent})
    assert answer.status_code == status and answer.headers["etag"] == '"3"'
    assert (answer.content == b"") is (status == 304)
    assert reads_of(api, case_id, "desk-304") == ["case"]  # a 304 tells that nothing changed: a read all the same


def test_a_304_is_for_the_case_the_token_sees_only(api: Api) -> None:
    case_id = api.open(patient_ref="PX-3005")
    stranger = {**api.auth("coordinator", "org-b"), "If-None-Match": '"1"'}
    assert api.client.get(f"/cases/{case_id}", headers=stranger).status_code == 404
