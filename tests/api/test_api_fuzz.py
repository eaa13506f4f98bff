"""Property-based fuzzing of the HTTP API against its own OpenAPI document (schemathesis).

Why this exists: ``test_api.py`` checks the answers we thought of; this test sends what the
published schema allows (and, in negative mode, what it forbids) to every operation and holds the
app to its word: never a 5xx, and every status code, content type, documented header and body as
``/openapi.json`` says. Clients are generated from that document, so a drift from it is a bug.

The app runs in-process on the in-memory backend with a fixed clock. Cases exist before the run and
their ids are fed to ``case_id`` (and the ``entity``/``case`` queries) through schemathesis
dictionaries, next to random ids (which must be 404 problems); known events, dates, calendars and
coverage facts are mixed in the same way so that requests get past validation to the 200 paths.
Every operation runs with a coordinator's token and again with an auditor's (the /audit routes).
Generation is derandomised, so a failure reproduces on every run.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from second_opinion import connect
from second_opinion.api import create_app
from tests.api_support import Api
from tests.conftest import EXAMPLES, PATHS, T0, fire_example
from tests.soak import examples
from workflow import FixedClock
from workflow.cases.definitions import STATES
from workflow.coverage.rules import FACTS, ROUTE_VALUES, policy_ids
from workflow.deadlines.calendars import CALENDARS
from workflow.errors import StorageNotReady

SERVICE = connect("memory://", clock=FixedClock(T0), identity_key=b"fuzz-key-" * 4)  # patient_name needs one
API = Api(SERVICE)
CASE_IDS = [API.open(patient_ref=f"PX-{n:04d}") for n in range(1, 4)]
CASE_IDS.append(API.open(org="org-b", patient_ref="PX-0009"))  # another organisation's: never a 200 from org-a
for _event in PATHS["advice_returned"]:  # one case with history, consent and deadlines behind it
    fire_example(SERVICE, CASE_IDS[0], _event)
TOKENS = {role: API.auth(role, "org-a") for role in ("coordinator", "auditor")}

EXAMPLES_PER_OPERATION = examples(20, 40)
"""Generated examples per operation and role (hypothesis and schemathesis): 40 with
SECOND_OPINION_SOAK=1 (tests/soak.py), the long run docs/reliability.md reports."""
DATES = ["2026-11-23", "2026-12-24", "2027-01-01", "2027-04-27"]
INSTANTS = ["2026-11-23T09:00:00Z", "2026-11-20T08:30:00+01:00", "2026-12-31T23:59:59Z"]
CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {
            "mode": "all",
            "max-examples": EXAMPLES_PER_OPERATION,
            "deterministic": True,
            "with-security-parameters": False,  # never strip or garble the token: every request is authenticated
        },
        "dictionaries": {
            "case-ids": {"values": CASE_IDS},
            "events": {"values": sorted(EXAMPLES)},
            "dates": {"values": DATES},
            "instants": {"values": INSTANTS},
            "calendars": {"values": sorted(CALENDARS)},
            "states": {"values": [s.name for s in STATES]},
            "routes": {"values": list(ROUTE_VALUES)},
            "policies": {"values": list(policy_ids())},
            "actors": {"values": ["desk-1", "relative-2", "gp.practice:3"]},
            "versions": {"values": ['"1"', '"7"', 'W/"2"', "*"]},
        },
        "parameters": {
            "path.case_id": {"dictionary": "case-ids", "probability": 0.6},
            "query.entity": {"dictionary": "case-ids", "probability": 0.6},
            "query.case": {"dictionary": "case-ids", "probability": 0.5},
            "query.start": {"dictionary": "dates", "probability": 0.7},
            "query.end": {"dictionary": "dates", "probability": 0.7},
            "query.due_before": {"dictionary": "instants", "probability": 0.5},
            "query.from": {"dictionary": "instants", "probability": 0.5},
            "query.calendar": {"dictionary": "calendars", "probability": 0.5},
            "query.state": {"dictionary": "states", "probability": 0.5},
            "query.route": {"dictionary": "routes", "probability": 0.5},
            "header.X-On-Behalf-Of": {"dictionary": "actors", "probability": 0.7},
            "header.If-Match": {"dictionary": "versions", "probability": 0.3},
            "body.event": {"dictionary": "events", "probability": 0.8},
            "body.route": {"dictionary": "routes", "probability": 0.7},
            "body.policy": {"dictionary": "policies", "probability": 0.5},
            "body.occurred_at": {"dictionary": "instants", "probability": 0.3},
        },
    }
)
schema = schemathesis.openapi.from_asgi("/openapi.json", API.app, config=CONFIG)

# A route and any subset of the other known coverage facts, each with one of its allowed values.
_VALUES = {f.name: st.sampled_from(f.values) for f in FACTS}
KNOWN_FACTS = st.fixed_dictionaries({"route": _VALUES.pop("route")}, optional=_VALUES)


@schema.hook
def flatmap_body(context: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
    """Known coverage facts, or an event's example data and reason, where the schema allows any object.

    Random facts and data are almost always refused with a 422 (negative mode and the coverage phase
    still send those); these get requests through to the decision tables and the state machine.
    """
    if context.operation is None or not isinstance(body, dict):
        return st.just(body)
    if context.operation.path == "/coverage" and isinstance(body.get("facts"), dict):
        return KNOWN_FACTS.map(lambda facts: {**body, "facts": facts})
    if isinstance(body.get("event"), str) and body["event"] in EXAMPLES and isinstance(body.get("data"), dict):
        _, reason, data = EXAMPLES[body["event"]]
        return st.sampled_from([body, {**body, "data": data, "reason": reason}])
    return st.just(body)


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.mark.parametrize("role", sorted(TOKENS))
@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
def test_the_api_keeps_its_schema(case: schemathesis.Case, role: str) -> None:
    case.call_and_validate(headers=TOKENS[role], checks=CHECKS)


def test_not_ready_is_answered_as_documented() -> None:
    """The one answer the fuzzing above cannot reach: GET /ready while the database is behind."""

    def behind() -> None:
        raise StorageNotReady("memory://", "is at revision 0001; this version needs 0002")

    ready = schemathesis.openapi.from_asgi("/openapi.json", create_app(SERVICE, ready=behind))["/ready"]["GET"]
    # A 503 is this route's documented answer while the database is not usable, so not_a_server_error is left out.
    ready.Case().call_and_validate(checks=[check for check in CHECKS if check is not not_a_server_error])
