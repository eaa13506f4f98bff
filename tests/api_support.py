"""An API under test: the real app on a real service, with tokens made the way users make them."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from second_opinion.api import create_app
from tests.conftest import EXAMPLES
from workflow import CaseService
from workflow.service.tokens import TokenService


class Api:
    def __init__(self, service: CaseService) -> None:
        self.service = service
        self.app = create_app(service)
        self.client = TestClient(self.app, raise_server_exceptions=False)
        self._tokens = TokenService(service.runtime)

    def auth(self, role: str, org: str = "org-a", actor: str | None = None, **headers: str) -> dict[str, str]:
        """Headers of a fresh token for ``role`` in ``org`` (actor defaults to the role's name)."""
        secret, _ = self._tokens.create(actor or f"{role}-1", role, org)
        return {"Authorization": f"Bearer {secret}", **headers}

    def open(self, org: str = "org-a", patient_ref: str = "PX-0001", route: str = "domestic") -> str:
        answer = self.client.post("/cases", json={"patient_ref": patient_ref, "route": route},
                                  headers=self.auth("coordinator", org))  # fmt: skip
        assert answer.status_code == 201, answer.text
        return str(answer.json()["case_id"])

    def fire(self, case_id: str, event: str, org: str = "org-a", **extra: Any) -> Any:
        actor, reason, data = EXAMPLES[event]
        body = {"event": event, "reason": reason, "data": data, **extra}
        who = self.service.case(case_id).patient_ref if actor.role == "patient" else actor.id  # a patient acts as self
        return self.client.post(f"/cases/{case_id}/events", json=body, headers=self.auth(actor.role, org, who))


def problem(answer: Any, status: int, slug: str) -> dict[str, Any]:
    """Assert an RFC 9457 problem of this status and type; return its body. Under /fhir the same
    problem comes as an OperationOutcome (api/outcomes.py): its type is the issue's coding, and the
    body returned is the problem it carries (type, status, detail, title, field)."""
    assert answer.status_code == status, answer.text
    if answer.headers["content-type"].startswith("application/fhir+json"):
        return outcome(answer, status, slug)
    assert answer.headers["content-type"].startswith("application/problem+json"), answer.headers
    body: dict[str, Any] = answer.json()
    assert body["type"] == f"urn:second-opinion:problem:{slug}", body
    assert body["status"] == status and body["detail"] and body["title"]
    assert "Traceback" not in answer.text
    return body


def outcome(answer: Any, status: int, slug: str) -> dict[str, Any]:
    """Assert a FHIR OperationOutcome for this status and problem type; return it as a problem."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/fhir+json"), answer.headers
    body = answer.json()
    assert body["resourceType"] == "OperationOutcome", body
    issue = body["issue"][0]
    assert issue["details"]["coding"] == [{"system": "urn:second-opinion:problem", "code": slug}], body
    assert issue["severity"] == "error" and issue["diagnostics"] and issue["details"]["text"]
    assert "Traceback" not in answer.text
    found = {"type": f"urn:second-opinion:problem:{slug}", "status": status, "detail": issue["diagnostics"],
             "title": issue["details"]["text"]}  # fmt: skip
    if "expression" in issue:
        found["field"] = issue["expression"][0]
    return found
