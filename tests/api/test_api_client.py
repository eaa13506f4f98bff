"""A client generated from ``/openapi.json`` drives a case end to end (issue 19).

``openapi-python-client`` (dev extra; offline, no network) generates a Python package from the
document the app serves, once per module run (a few seconds); the test imports it from a temporary
directory and calls the app through it, in process: the generated client takes any ``httpx.Client``,
and FastAPI's ``TestClient`` is one. If the document lost its operation ids, its per-event request
bodies or its response models, the names used here would not exist and the test would fail to import
or to call them.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi.testclient import TestClient

from second_opinion import connect
from second_opinion.api.event_data import variant_name
from tests.api_support import Api
from tests.conftest import EXAMPLES, PATHS, T0
from workflow import FixedClock

PACKAGE = "so_generated_client"


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    with connect("memory://", clock=FixedClock(T0)) as service:
        yield Api(service)


@pytest.fixture(scope="module")
def generated(api: Api, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The client package generated from the app's own document, importable for this module."""
    where = tmp_path_factory.mktemp("client")
    spec = where / "openapi.json"
    spec.write_text(json.dumps(api.app.openapi()))
    config = where / "config.yml"
    config.write_text(f"project_name_override: {PACKAGE}\npackage_name_override: {PACKAGE}\npost_hooks: []\n")
    tool = Path(sys.executable).parent / "openapi-python-client"
    command = [str(tool), "generate", "--path", str(spec), "--config", str(config), "--output-path", str(where / "out")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    # the one part it leaves out: the JSON-lines export (no model for application/jsonl), nothing else
    said = done.stdout + done.stderr
    warned = [line for line in said.splitlines() if line.startswith("WARNING")]
    assert warned == ["WARNING parsing GET /audit/export within audit."], said
    sys.path.insert(0, str(where / "out"))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(where / "out"))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def client_for(api: Api, generated: ModuleType, role: str, actor: str) -> Any:
    """A generated ``Client`` over an in-process httpx client carrying ``role``'s bearer token."""
    http = TestClient(api.app, raise_server_exceptions=False, headers=api.auth(role, "org-a", actor))
    return generated.Client(base_url="http://testserver").set_httpx_client(http)


def module(generated: ModuleType, dotted: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{dotted}")


def test_a_generated_client_takes_a_case_to_advice_and_back(api: Api, generated: ModuleType) -> None:
    models = module(generated, "models")
    cases = "api.cases"
    desk = client_for(api, generated, "coordinator", "desk-1")
    opened = module(generated, f"{cases}.open_case").sync_detailed(
        client=desk, body=models.OpenCase(patient_ref="PX-7001", route=models.RouteName.DOMESTIC)
    )
    assert opened.status_code == 201 and opened.headers["etag"] == '"1"'
    case_id = opened.parsed.case_id
    fire = module(generated, f"{cases}.fire_event")
    for event in [*PATHS["advice_returned"], "hand_back"]:
        actor, reason, data = EXAMPLES[event]
        who = "PX-7001" if actor.role == "patient" else actor.id  # a patient's token is for their own case
        body = getattr(models, variant_name(event)).from_dict({"event": event, "reason": reason, "data": data})
        answer = fire.sync_detailed(case_id, client=client_for(api, generated, actor.role, who), body=body)
        assert answer.status_code == 200, answer.content
        assert isinstance(answer.parsed, models.Receipt) and answer.parsed.event == event
    assert answer.parsed.to_state == models.StateName.BACK_TO_FIRST_PROVIDER

    read = module(generated, f"{cases}.read_case").sync_detailed(case_id, client=desk)
    assert isinstance(read.parsed, models.CaseOut)
    assert read.parsed.state == models.StateName.BACK_TO_FIRST_PROVIDER and read.headers["etag"] == '"11"'
    again = module(generated, f"{cases}.read_case").sync_detailed(case_id, client=desk, if_none_match='"11"')
    assert again.status_code == 304 and again.parsed is None

    history = module(generated, f"{cases}.read_case_history").sync(case_id, client=desk)
    assert [r.event for r in history][-2:] == ["return_advice", "hand_back"]
    assert all(isinstance(r.actor_role, models.RoleName) for r in history)

    refused = fire.sync_detailed(case_id, client=desk, body=models.FireReview(event="review"))
    assert refused.status_code == 403 and isinstance(refused.parsed, models.Problem)
    assert refused.parsed.type_ == "urn:second-opinion:problem:permission-denied"

    task = module(generated, "api.fhir.read_task").sync_detailed(case_id, client=desk)
    assert task.status_code == 200 and json.loads(task.content)["status"] == "completed"
    missing = module(generated, "api.fhir.read_task").sync_detailed("so-aaaaaaaaaaaaaaaa", client=desk)
    assert missing.status_code == 404 and isinstance(missing.parsed, models.OperationOutcome)
