"""``/openapi.json`` as clients are generated from it: what FastAPI derives from the routes, refined.

FastAPI knows the routes, their parameters and their models; it does not know what this module
adds, each built from a table so that it cannot drift:

- the named enums of :data:`schemas.ENUMS` (events, states, routes, roles, from the definition table);
- one request body per event (:mod:`.event_data`), chosen by ``event``, with a validated example each;
- a named ``Problem`` (RFC 9457 with this API's extension fields) as the body of every error status,
  ``application/problem+json``; under ``/fhir`` a FHIR ``OperationOutcome`` instead, ``application/fhir+json``;
- the headers the routes send and take: ``ETag`` on the reads and commands that set it, ``Location``,
  ``Retry-After``, ``WWW-Authenticate``, and the ``304`` of a conditional read.

The refinement runs once, when the document is first asked for; it is a pure function of the
FastAPI document (:func:`refine`), so ``docs/api.md`` and the tests see what clients see.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from workflow.cases.definitions import DEFINITION

from . import event_data, outcomes, problems, schemas
from .schemas import REF

FHIR_PREFIX = "/fhir"
ETAG = {"description": 'The case\'s version, e.g. "4" (every accepted command moves it; a refused one and deadline '
        "bookkeeping do not): send it back as If-Match, or as If-None-Match for a 304.",
        "schema": {"type": "string", "pattern": r'^"\d+"$'}}  # fmt: skip
LOCATION = {"description": "The new case: /cases/<id>.", "schema": {"type": "string"}}
RETRY_AFTER = {"description": "Seconds to wait before retrying.", "schema": {"type": "string", "pattern": r"^\d+$"}}
WWW_AUTHENTICATE = {"description": 'Bearer realm="second-opinion".', "schema": {"type": "string"}}

ETAG_ON = {"readCase": "200", "openCase": "201", "fireEvent": "200", "checkEvent": "200"}
"""Operations whose success answer carries the case's version as ``ETag``."""


def install(app: FastAPI) -> None:
    """Serve the refined document at ``/openapi.json`` (and to ``app.openapi()``)."""
    base = FastAPI.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = refine(base(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customise the document


def refine(spec: dict[str, Any]) -> dict[str, Any]:
    components = spec.setdefault("components", {}).setdefault("schemas", {})
    for name, (values, description) in schemas.ENUMS.items():
        components[name] = {"type": "string", "enum": list(values), "title": name, "description": description}
    problem = schemas.Problem.model_json_schema(ref_template=REF + "{model}")
    components.update(problem.pop("$defs", {}))
    components["Problem"] = problem
    components["OperationOutcome"] = outcomes.SCHEMA
    if "FireEvent" in components:
        found, choice = event_data.variants(REF)
        components.update(found)
        components["FireEvent"] = choice
    spec = _named_enums(spec)
    for path, operations in spec.get("paths", {}).items():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                parameter["schema"] = _inline_enums(parameter["schema"], components)
        for operation in operations.values():
            _responses(path, operation)
    for unused in ("HTTPValidationError", "ValidationError"):
        if unused in components and f'"{REF}{unused}"' not in str(spec).replace("'", '"'):
            del components[unused]
    return spec


def _named_enums(node: Any) -> Any:
    """Every field marked with :data:`schemas.NAMED` as a reference to its named enum."""
    if isinstance(node, list):
        return [_named_enums(item) for item in node]
    if not isinstance(node, dict):
        return node
    if schemas.NAMED in node:
        kept = {k: _named_enums(v) for k, v in node.items() if k not in (schemas.NAMED, "type")}
        return {"$ref": REF + node[schemas.NAMED], **kept}
    return {k: _named_enums(v) for k, v in node.items()}


def _inline_enums(node: Any, components: dict[str, Any]) -> Any:
    """A parameter's named enum, written out: schemathesis cannot bind its dictionaries to a
    ``$ref`` in a parameter, and a query parameter is a plain value list anyway."""
    if isinstance(node, list):
        return [_inline_enums(item, components) for item in node]
    if not isinstance(node, dict):
        return node
    name = node.get("$ref", "").removeprefix(REF)
    if name in schemas.ENUMS:
        return {**{k: v for k, v in components[name].items() if k != "title"},
                **{k: v for k, v in node.items() if k != "$ref"}}  # fmt: skip
    return {k: _inline_enums(v, components) for k, v in node.items()}


def _own_model(response: dict[str, Any]) -> bool:
    """A route's own answer for the status (``/ready``'s 503 is a Health body): left as declared."""
    refs = [m.get("schema", {}).get("$ref", "") for m in response.get("content", {}).values()]
    return any(ref and not ref.endswith("HTTPValidationError") for ref in refs)


def _responses(path: str, operation: dict[str, Any]) -> None:
    fhir = path == FHIR_PREFIX or path.startswith(FHIR_PREFIX + "/")
    media, model = (outcomes.MEDIA_TYPE, "OperationOutcome") if fhir else (problems.MEDIA_TYPE, "Problem")
    responses = operation.setdefault("responses", {})
    for status, response in responses.items():
        if not status.isdigit() or int(status) < 400 or _own_model(response):
            continue
        response["description"] = _TITLES.get(int(status), response.get("description", "An error"))
        response["content"] = {media: {"schema": {"$ref": REF + model}}}
        if status in ("429", "503"):
            response["headers"] = {"Retry-After": RETRY_AFTER}
        if status == "401":
            response["headers"] = {"WWW-Authenticate": WWW_AUTHENTICATE}
    ok = ETAG_ON.get(operation.get("operationId", ""))
    if ok in responses:
        responses[ok].setdefault("headers", {})["ETag"] = {**ETAG, "required": True}
        if ok == "201":
            responses[ok]["headers"]["Location"] = {**LOCATION, "required": True}
    if operation.get("operationId") == "readCase":
        responses["304"] = {
            "description": "Not Modified: If-None-Match names the case's version now. Still a read of the case, "
            "logged as one.",
            "headers": {"ETag": {**ETAG, "required": True}},
        }
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if body is not None and body.get("schema", {}).get("$ref") == REF + "FireEvent":
        body["examples"] = {e.name: {"summary": e.name, "value": event_data.example(e)}
                            for e in DEFINITION.events}  # fmt: skip


_TITLES = {
    status: "; ".join(sorted({title for s, _, title in problems.PROBLEMS.values() if s == status}
                             | {title for s, title, _ in problems.OTHER_PROBLEMS.values() if s == status}))
    for status in {s for s, _, _ in (*problems.PROBLEMS.values(), *problems.OTHER_PROBLEMS.values())}
}  # fmt: skip
"""Each error status's description: the titles of the problems answered with it."""
