"""Errors under ``/fhir`` as FHIR R4 ``OperationOutcome`` resources (``application/fhir+json``).

A FHIR client reads an OperationOutcome, not an RFC 9457 problem document; the information is the
same: :func:`second_opinion.api.problems.problem` hands every error on a FHIR path here (the
refusals of the service, validation, an unknown path, a rate limit, a lost database, a crash, an
answer of the edge), already masked for BSNs. The problem's ``type`` travels as the issue's
``details.coding`` (system ``urn:second-opinion:problem``), so a client matches on it exactly as
on the problem document's ``type``; ``diagnostics`` is the problem's ``detail``.
"""

from __future__ import annotations

from typing import Any

MEDIA_TYPE = "application/fhir+json"
SYSTEM = "urn:second-opinion:problem"

ISSUE_CODES = {400: "structure", 401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported",
               408: "timeout", 409: "business-rule", 412: "conflict", 413: "too-costly", 422: "invalid",
               429: "throttled", 500: "exception", 503: "transient"}  # fmt: skip
"""HTTP status -> OperationOutcome.issue.code (FHIR's IssueType value set); others: processing."""


def outcome(status: int, slug: str, title: str, detail: str, extra: dict[str, Any]) -> dict[str, Any]:
    """The OperationOutcome of a problem; a 422 names each field at fault as an issue of its own."""
    code = ISSUE_CODES.get(status, "processing")
    issue: dict[str, Any] = {"severity": "error", "code": code,
                             "details": {"coding": [{"system": SYSTEM, "code": slug}], "text": title},
                             "diagnostics": detail}  # fmt: skip
    if isinstance(extra.get("field"), str):
        issue["expression"] = [extra["field"]]
    issues = [issue]
    for error in extra.get("errors", [])[1:]:
        issues.append({"severity": "error", "code": code, "diagnostics": f"invalid {error['field']}: "
                       f"{error['problem']}", "expression": [error["field"]]})  # fmt: skip
    return {"resourceType": "OperationOutcome", "issue": issues}


_CODING = {"type": "object", "properties": {"system": {"type": "string"}, "code": {"type": "string"}}}
SCHEMA: dict[str, Any] = {
    "title": "OperationOutcome",
    "description": "A FHIR R4 OperationOutcome: the error of a /fhir request. details.coding carries the "
    "problem type (system urn:second-opinion:problem, code its slug), as in the problem table.",
    "type": "object",
    "required": ["resourceType", "issue"],
    "properties": {
        "resourceType": {"type": "string", "const": "OperationOutcome"},
        "issue": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["severity", "code"],
            "properties": {
                "severity": {"type": "string", "enum": ["fatal", "error", "warning", "information"]},
                "code": {"type": "string"},
                "details": {"type": "object", "properties": {"coding": {"type": "array", "items": _CODING},
                                                             "text": {"type": "string"}}},
                "diagnostics": {"type": "string"},
                "expression": {"type": "array", "items": {"type": "string"}},
            },
        }},
    },
    "examples": [outcome(404, "unknown-case", "No such case", "no case 'so-abcdefghijklmnop'", {})],
}  # fmt: skip
