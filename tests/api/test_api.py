"""The HTTP API end to end, on every backend: each endpoint, its happy path and its errors."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing

import pytest

from tests.api_support import Api, problem
from tests.conftest import BACKENDS, COVERAGE_FACTS, PATHS
from workflow import CaseService


@pytest.fixture
def api(service: CaseService) -> Iterator[Api]:
    yield Api(service)


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_open_read_fire_history_on_every_backend(api: Api) -> None:
    desk = api.auth("coordinator")
    opened = api.client.post("/cases", json={"patient_ref": "PX-0001"}, headers=desk)
    assert opened.status_code == 201 and opened.headers["location"] == f"/cases/{opened.json()['case_id']}"
    case_id = opened.json()["case_id"]
    read = api.client.get(f"/cases/{case_id}", headers=desk)
    assert read.status_code == 200 and read.headers["etag"] == '"1"'
    assert read.json()["organisation"] == "org-a" and read.json()["state"] == "requested"
    for event in PATHS["dossier_received"]:
        assert api.fire(case_id, event).status_code == 200, event
    shown = api.client.get(f"/cases/{case_id}", headers=desk).json()
    assert shown["state"] == "dossier_received" and shown["version"] == len(PATHS["dossier_received"]) + 1
    history = api.client.get(f"/cases/{case_id}/history", headers=desk).json()
    assert [r["event"] for r in history] == ["open", *PATHS["dossier_received"]]
    deadlines = api.client.get(f"/cases/{case_id}/deadlines", headers=desk).json()
    assert {d["policy"] for d in deadlines} == {"domestic-dossier"}
    assert deadlines[0]["explanation"] and deadlines[0]["state"] == "met"


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_idempotency_key_replays_and_refuses_reuse(api: Api) -> None:
    desk = api.auth("coordinator", **{"Idempotency-Key": "req-1"})
    first = api.client.post("/cases", json={"patient_ref": "PX-0001"}, headers=desk)
    again = api.client.post("/cases", json={"patient_ref": "PX-0001"}, headers=desk)
    assert first.status_code == again.status_code == 201
    assert again.json()["case_id"] == first.json()["case_id"] and again.json()["replayed"] is True
    other = api.client.post("/cases", json={"patient_ref": "PX-0002"}, headers=desk)
    assert "req-1" in problem(other, 422, "idempotency-conflict")["detail"]
    assert len(api.service.cases()) == 1


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_if_match_stale_version_is_412_and_conflict_is_409(api: Api) -> None:
    case_id = api.open()
    api.fire(case_id, "record_circumstances")
    stale = api.fire_with = api.client.post(
        f"/cases/{case_id}/events", json={"event": "withdraw", "reason": "patient's wish"},
        headers=api.auth("coordinator", **{"If-Match": '"1"'}),
    )  # fmt: skip
    body = problem(stale, 412, "stale-version")
    assert body["expected"] == 1 and body["actual"] == 2
    fresh = api.client.post(
        f"/cases/{case_id}/events", json={"event": "withdraw", "reason": "patient's wish"},
        headers=api.auth("coordinator", **{"If-Match": '"2"'}),
    )  # fmt: skip
    assert fresh.status_code == 200 and fresh.headers["etag"] == '"3"'
    conflict = api.fire(case_id, "refer")
    assert problem(conflict, 409, "invalid-transition")["state"] == "withdrawn"
    bad = api.client.post(f"/cases/{case_id}/events", json={"event": "refer"},
                          headers=api.auth("gp", **{"If-Match": "version three"}))  # fmt: skip
    assert problem(bad, 422, "validation-error")["field"] == "If-Match"


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_guard_refusal_is_409_and_audited(api: Api) -> None:
    case_id = api.open()
    refused = api.fire(case_id, "withdraw_consent")
    body = problem(refused, 409, "guard-refused")
    assert body["guard"] == "consent_active", body
    history = api.client.get(f"/cases/{case_id}/history", headers=api.auth("coordinator")).json()
    assert history[-1]["outcome"] == "rejected" and history[-1]["event"] == "withdraw_consent"


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_role_that_may_not_fire_is_403_and_recorded_as_denied(api: Api) -> None:
    case_id = api.open()
    denied = api.client.post(f"/cases/{case_id}/events", json={"event": "withdraw", "reason": "x"},
                             headers=api.auth("auditor"))  # fmt: skip
    assert problem(denied, 403, "permission-denied")["role"] == "auditor"
    last = api.service.history(case_id)[-1]
    assert (last.outcome, last.actor_role, last.event) == ("denied", "auditor", "withdraw")
    assert api.service.case(case_id).state == "requested"


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "patient_ref"),
        ({"patient_ref": "PX-0001", "colour": "red"}, "colour"),
        ({"patient_ref": "PX-0001", "route": "moon"}, "route"),
        ({"patient_ref": "123456782"}, "patient_ref"),
        ({"patient_ref": "PX-0001", "occurred_at": "2026-01-01T10:00:00"}, "occurred_at"),
        ({"patient_ref": "PX-0001", "occurred_at": "yesterday"}, "occurred_at"),
    ],
)
def test_bad_open_requests_name_the_field_and_change_nothing(api: Api, body: dict[str, object], field: str) -> None:
    answer = api.client.post("/cases", json=body, headers=api.auth("coordinator"))
    found = problem(answer, 422, "validation-error")
    assert found["field"] == field, found
    assert api.service.cases() == []


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_unknown_event_unknown_case_and_bad_json(api: Api) -> None:
    case_id = api.open()
    desk = api.auth("coordinator")
    assert "refer" in problem(api.client.post(f"/cases/{case_id}/events", json={"event": "fly"}, headers=desk),
                              422, "unknown-event")["known"]  # fmt: skip
    problem(api.client.get("/cases/so-doesnotexist00", headers=desk), 404, "unknown-case")
    raw = api.client.post("/cases", content=b"{not json", headers={**desk, "Content-Type": "application/json"})
    problem(raw, 422, "validation-error")
    problem(api.client.get("/nowhere", headers=desk), 404, "not-found")
    problem(api.client.delete(f"/cases/{case_id}", headers=desk), 405, "method-not-allowed")


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
@pytest.mark.parametrize(
    ("headers", "reason"),
    [({}, "no bearer token"), ({"Authorization": "Bearer sotk_guess"}, "not known"),
     ({"Authorization": "Basic dXNlcjpwdw=="}, "Bearer <token>")],
)  # fmt: skip
def test_missing_or_bad_token_is_401(api: Api, headers: dict[str, str], reason: str) -> None:
    answer = api.client.get("/cases", headers=headers)
    assert reason in problem(answer, 401, "unauthenticated")["detail"]
    assert answer.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_revoked_token_is_401(api: Api) -> None:
    desk = api.auth("coordinator")
    assert api.client.get("/cases", headers=desk).status_code == 200
    token = api._tokens.list()[-1]
    api._tokens.revoke(token.id)
    assert "revoked" in problem(api.client.get("/cases", headers=desk), 401, "unauthenticated")["detail"]


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_list_filters(api: Api, clock) -> None:  # type: ignore[no-untyped-def]
    desk = api.auth("coordinator")
    first, second, royal = api.open(), api.open(patient_ref="PX-0002"), api.open(route="royal-doctors")
    for event in PATHS["referred"]:
        api.fire(first, event)

    def ids(**query: str) -> set[str]:
        answer = api.client.get("/cases", params=query, headers=desk)
        assert answer.status_code == 200, answer.text
        return {c["id"] for c in answer.json()}

    assert ids() == {first, second, royal}
    assert ids(state="referred") == {first}
    assert ids(route="royal-doctors") == {royal}
    due = api.service.deadlines_of(first)[0].due_at
    assert ids(due_before=(due.isoformat())) == set()
    assert ids(due_before=(due.replace(year=due.year + 1)).isoformat()) == {first}
    assert ids(overdue="true") == set()
    clock.set(due.replace(year=due.year + 1))
    desk = api.auth("coordinator")  # the first one expired meanwhile (90 days, issue 19)
    assert ids(overdue="true") == {first}
    assert problem(api.client.get("/cases", params={"state": "limbo"}, headers=desk), 422,
                   "validation-error")["field"] == "state"  # fmt: skip
    assert problem(api.client.get("/cases", params={"route": "moon"}, headers=desk), 422,
                   "validation-error")["field"] == "route"  # fmt: skip
    assert problem(api.client.get("/cases", params={"due_before": "2026-01-01T00:00:00"}, headers=desk), 422,
                   "validation-error")["field"] == "due_before"  # fmt: skip


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_coverage_and_calendar(api: Api) -> None:
    desk = api.auth("coordinator")
    added = api.client.get("/calendar/add-working-days", params={"start": "2026-04-24", "days": 18}, headers=desk)
    assert added.status_code == 200 and added.json()["end"] == "2026-05-27"
    between = api.client.get("/calendar/working-days", params={"start": "2026-04-24", "end": "2026-05-27"},
                             headers=desk)  # fmt: skip
    assert between.json()["working_days"] == 18
    problem(api.client.get("/calendar/add-working-days", params={"start": "2026-04-24", "days": 5000}, headers=desk),
            422, "validation-error")  # fmt: skip
    problem(api.client.get("/calendar/add-working-days", params={"start": "2026-04-24", "days": 1,
                                                                 "calendar": "mars"}, headers=desk),
            422, "validation-error")  # fmt: skip
    facts = {"route": "domestic", "purpose": "diagnosis", "care_in_basic_package": True, "same_specialty": True,
             "referral_by": "gp", "returns_to_first_provider": True, "gp_or_obstetric_care": False,
             "age_band": "adult"}  # fmt: skip
    decided = api.client.post("/coverage", json={"facts": facts}, headers=desk)
    assert decided.status_code == 200 and len(decided.json()) >= 2
    problem(api.client.post("/coverage", json={"facts": {"route": "moon"}}, headers=desk), 422, "validation-error")


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_verify_and_export_for_auditors(api: Api) -> None:
    case_id = api.open()
    other_org = api.open(org="org-b")
    for event in PATHS["referred"]:
        api.fire(case_id, event)
    auditor = api.auth("auditor")
    verified = api.client.get("/audit/verify", headers=auditor).json()
    assert verified == {"ok": True, "cases": 1, "records": 1 + len(PATHS["referred"]), "findings": []}
    one = api.client.get("/audit/verify", params={"case": case_id}, headers=auditor).json()
    assert one["cases"] == 1
    problem(api.client.get("/audit/verify", params={"case": other_org}, headers=auditor), 404, "unknown-case")
    export = api.client.get("/audit/export", headers=auditor)
    assert export.headers["content-type"].startswith("application/jsonl")
    lines = [json.loads(line) for line in export.text.splitlines()]
    assert [r["event"] for r in lines] == ["open", *PATHS["referred"]]
    assert {r["case_id"] for r in lines} == {case_id}
    later = api.client.get("/audit/export", params={"from": "2999-01-01T00:00:00Z"}, headers=auditor)
    assert later.status_code == 200 and later.text == ""
    problem(api.client.get("/audit/export", headers=api.auth("coordinator")), 403, "permission-denied")


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_health_and_readiness(api: Api) -> None:
    assert api.client.get("/health").json() == {"status": "ok"}
    assert api.client.get("/ready").json() == {"status": "ready"}
    spec = api.client.get("/openapi.json").json()
    assert {"/cases", "/cases/{case_id}/events", "/audit/export", "/fhir/Task/{case_id}"} <= set(spec["paths"])


def test_readiness_reports_a_database_behind_the_code(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from second_opinion.bootstrap import build_app
    from tests.cli.test_cli import Cli

    cli = Cli(tmp_path / "ready.sqlite3")
    cli.run("init")
    client = TestClient(build_app(cli.db))
    assert client.get("/ready").json() == {"status": "ready"}
    with closing(sqlite3.connect(cli.path)) as conn, conn:
        conn.execute("UPDATE alembic_version SET version_num = '0006'")
    answer = client.get("/ready")
    assert answer.status_code == 503 and answer.json()["status"] == "not ready"
    assert "sqlite" not in answer.text and str(tmp_path) not in answer.text  # anyone may ask: no database named
    assert client.get("/health").status_code == 200  # alive, just not ready
    missing = Cli(tmp_path / "never-initialised.sqlite3").run("serve", "--port", "1", "--allow-clock-override", code=1)
    assert "run `second-opinion init` first" in missing.stderr


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_idempotency_keys_are_per_organisation(api: Api) -> None:
    """Another organisation using our key gets its own case: no replay of ours, no conflict that
    would tell it the key is taken."""
    ours = api.client.post("/cases", json={"patient_ref": "PX-0001"},
                           headers=api.auth("coordinator", "org-a", **{"Idempotency-Key": "intake-1"}))  # fmt: skip
    theirs = api.client.post("/cases", json={"patient_ref": "PX-0001"},
                             headers=api.auth("coordinator", "org-b", **{"Idempotency-Key": "intake-1"}))  # fmt: skip
    assert ours.status_code == theirs.status_code == 201 and theirs.json()["replayed"] is False
    assert ours.json()["case_id"] != theirs.json()["case_id"]
    assert api.service.history(ours.json()["case_id"])[0].idempotency_key == "org-a/coordinator-1/intake-1"


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_case_resource_and_history_show_the_latest_coverage_decision(api: Api) -> None:
    """Issue 15: GET /cases/{id} carries the insurer's latest decision (seed 000), the history each."""
    case_id = api.open()
    desk = api.auth("coordinator")
    assert "coverage" not in api.client.get(f"/cases/{case_id}", headers=desk).json()["facts"]
    assert api.fire(case_id, "decide_coverage").status_code == 200
    minor = {**COVERAGE_FACTS, "age_band": "minor"}  # Zvw art. 19: no eigen risico under 18
    assert api.fire(case_id, "decide_coverage", data={"policy": "pno-basic", "facts": minor}).status_code == 200
    shown = api.client.get(f"/cases/{case_id}", headers=desk).json()["facts"]["coverage"]
    assert (shown["number"], shown["outcome"], shown["eigen_risico"]["applies"]) == (2, "covered", False)
    bad = api.fire(case_id, "decide_coverage", data={"policy": "pno-basic", "facts": {"age_band": "old"}})
    assert bad.status_code == 422 and "age_band" in bad.text
    history = api.client.get(f"/cases/{case_id}/history", headers=desk).json()
    assert [r["payload"]["decision"]["eigen_risico"]["applies"] for r in history if r["outcome"] == "accepted"
            and r["event"] == "decide_coverage"] == [True, False]  # fmt: skip
