"""Who gets in, and what they see: the full matrix of role x organisation x endpoint, and the
NEN 7513 access log each read leaves behind.

The expected answers are written out here by hand (``EXPECTED``), not derived from the tables
the code uses, so that a change to :data:`workflow.access.rules.SCOPES` or ``CAPABILITIES`` must be
made twice to pass: once on purpose in the table, once here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api_support import Api, problem
from tests.conftest import SQL_BACKENDS
from workflow import CaseService
from workflow.access.log import verify_chain

ROLES = ("patient", "gp", "first_provider", "second_opinion_doctor", "care_consultant", "coordinator", "auditor")
READERS = {r: 200 for r in ROLES}
AUDITOR_ONLY = {r: (200 if r == "auditor" else 403) for r in ROLES}
# withdraw: the definition table lets patient, care_consultant and coordinator fire it (source 002)
WITHDRAWERS = {r: (200 if r in ("patient", "care_consultant", "coordinator") else 403) for r in ROLES}
# open: everyone but the doctor and the auditor (a patient only under their own reference)
OPENERS = {r: (201 if r in ("patient", "gp", "first_provider", "care_consultant", "coordinator") else 403)
           for r in ROLES}  # fmt: skip
LOG_READERS = {r: (200 if r in ("auditor", "patient") else 403) for r in ROLES}

Call = Callable[[TestClient, str, dict[str, str]], Any]
ENDPOINTS: dict[str, tuple[Call, dict[str, int]]] = {
    "read case": (lambda c, i, h: c.get(f"/cases/{i}", headers=h), READERS),
    "history": (lambda c, i, h: c.get(f"/cases/{i}/history", headers=h), READERS),
    "deadlines": (lambda c, i, h: c.get(f"/cases/{i}/deadlines", headers=h), READERS),
    "fhir task": (lambda c, i, h: c.get(f"/fhir/Task/{i}", headers=h), READERS),
    "fhir audit events": (lambda c, i, h: c.get("/fhir/AuditEvent", params={"entity": i}, headers=h), READERS),
    "case access log": (lambda c, i, h: c.get(f"/cases/{i}/access-log", headers=h), LOG_READERS),
    "verify case": (lambda c, i, h: c.get("/audit/verify", params={"case": i}, headers=h), AUDITOR_ONLY),
    "fire withdraw": (
        lambda c, i, h: c.post(f"/cases/{i}/events", json={"event": "withdraw", "reason": "patient's wish"}, headers=h),
        WITHDRAWERS,
    ),
}
CAPABILITY_CHECKED = {"case access log", "verify case"}
"""Refused by role before any case is looked at: 403 whether or not the case exists or is visible."""
OWNER = "org-a"
PATIENT_REF = "PX-0001"


@pytest.fixture
def api(service: CaseService) -> Iterator[Api]:
    yield Api(service)


def _headers(api: Api, role: str, org: str, patient_ref: str = PATIENT_REF) -> dict[str, str]:
    return api.auth(role, org, actor=patient_ref if role == "patient" else None)


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("org", ["own", "other"])
def test_matrix(api: Api, endpoint: str, role: str, org: str) -> None:
    _check(api, endpoint, role, org)


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
def test_matrix_on_sql_backends(api: Api) -> None:
    """The same matrix where the filtering is SQL: every combination, each on a fresh case."""
    for endpoint in sorted(ENDPOINTS):
        for role in ROLES:
            for org in ("own", "other"):
                _check(api, endpoint, role, org)


def _check(api: Api, endpoint: str, role: str, org: str) -> None:
    case_id = api.open(OWNER, PATIENT_REF)
    before = api.service.case(case_id)
    call, expected = ENDPOINTS[endpoint]
    answer = call(api.client, case_id, _headers(api, role, OWNER if org == "own" else "org-b"))
    if org == "other" and not (endpoint in CAPABILITY_CHECKED and expected[role] == 403):
        problem(answer, 404, "unknown-case")  # 404, not 403: the case's existence does not leak
        assert api.service.case(case_id) == before
        return
    want = expected[role]
    if want == 403:
        problem(answer, 403, "permission-denied")
    else:
        assert answer.status_code == want, answer.text
    if endpoint != "fire withdraw" or want != 200:
        assert api.service.case(case_id).version == before.version  # reads and refusals change nothing


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_matrix_other_patient_sees_nothing(api: Api) -> None:
    """Within the organisation, a patient's token reaches only the case under its own reference."""
    case_id = api.open(OWNER, PATIENT_REF)
    stranger = _headers(api, "patient", OWNER, patient_ref="PX-0002")
    for name, (call, expected) in ENDPOINTS.items():
        refused = 403 if name in CAPABILITY_CHECKED and expected["patient"] == 403 else 404
        problem(call(api.client, case_id, stranger), refused, "permission-denied" if refused == 403 else "unknown-case")
    assert api.client.get("/cases", headers=stranger).json() == []


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
@pytest.mark.parametrize("role", ROLES)
def test_matrix_open_and_list(api: Api, role: str) -> None:
    mine, theirs = api.open(OWNER, PATIENT_REF), api.open("org-b", "PX-0003")
    headers = _headers(api, role, OWNER)
    listed = api.client.get("/cases", headers=headers)
    assert listed.status_code == 200 and [c["id"] for c in listed.json()] == [mine]
    assert theirs not in listed.text
    opened = api.client.post("/cases", json={"patient_ref": PATIENT_REF}, headers=headers)
    assert opened.status_code == OPENERS[role], opened.text
    if opened.status_code == 201:
        assert api.service.case(opened.json()["case_id"]).organisation == OWNER  # the token's, never chosen
    for path, allowed in (("/audit/export", AUDITOR_ONLY), ("/audit/verify", AUDITOR_ONLY),
                          ("/access-log", LOG_READERS)):  # fmt: skip
        assert api.client.get(path, headers=headers).status_code == allowed[role], path


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_patient_opens_only_under_own_reference(api: Api) -> None:
    answer = api.client.post("/cases", json={"patient_ref": "PX-0009"}, headers=_headers(api, "patient", OWNER))
    assert problem(answer, 422, "validation-error")["field"] == "patient_ref"
    assert api.service.cases() == []


# --- the access log ---------------------------------------------------------------------------


@pytest.mark.parametrize("db_url", ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
                         indirect=True)  # fmt: skip
def test_every_read_is_logged_with_who_what_when_where(api: Api, clock) -> None:  # type: ignore[no-untyped-def]
    case_id = api.open(OWNER, PATIENT_REF)
    doctor = {**api.auth("second_opinion_doctor", OWNER, actor="dr-5"), "X-On-Behalf-Of": "dr-head-1"}
    for path in (f"/cases/{case_id}", f"/cases/{case_id}/history", f"/cases/{case_id}/deadlines",
                 f"/fhir/Task/{case_id}"):  # fmt: skip
        assert api.client.get(path, headers=doctor).status_code == 200
    api.client.get("/cases", headers=doctor)
    auditor = api.auth("auditor", OWNER, actor="aud-1")
    log = api.client.get(f"/cases/{case_id}/access-log", headers=auditor).json()
    reads = [r for r in log if r["actor_id"] == "dr-5"]
    assert [r["kind"] for r in reads] == ["case", "history", "deadlines", "fhir-task", "list"]
    for r in reads:
        assert (r["actor_role"], r["organisation"], r["on_behalf_of"]) == ("second_opinion_doctor", OWNER, "dr-head-1")
        if r["kind"] == "list":  # one record per page, naming every case shown (issue 16)
            assert (r["case_id"], r["patient_ref"], r["cases"], r["v"]) == (None, None, [case_id], 3)
        else:
            assert (r["case_id"], r["patient_ref"], r["outcome"]) == (case_id, PATIENT_REF, "granted")
            assert "cases" not in r
        assert r["client"] == "testclient" and r["at"] == "2026-11-23T09:00:00.000000Z"
        assert r["channel"] == "api" and r["credential"].startswith("tok-")  # issue 19: which token read it
    assert log[-1]["kind"] == "access-log" and log[-1]["actor_id"] == "aud-1"  # reading the log is logged too
    again = api.client.get(f"/cases/{case_id}/access-log", headers=auditor).json()
    assert len(again) == len(log) + 1
    with api.service.unit_of_work(False) as uow:
        records = uow.access.all()
    assert verify_chain(records) == [] and len(records) >= len(again)


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_attempts_from_other_organisations_are_logged_for_the_owner_only(api: Api) -> None:
    case_id = api.open(OWNER, PATIENT_REF)
    snoop = api.auth("coordinator", "org-b", actor="snoop-1")
    problem(api.client.get(f"/cases/{case_id}", headers=snoop), 404, "unknown-case")
    problem(api.client.get("/cases/so-nosuchcase00000", headers=snoop), 404, "unknown-case")
    owner_log = api.client.get("/access-log", headers=api.auth("auditor", OWNER)).json()
    attempt = [r for r in owner_log if r["actor_id"] == "snoop-1"]
    assert [(r["outcome"], r["case_id"], r["organisation"]) for r in attempt] == [("not-found", case_id, "org-b")]
    their_log = api.client.get("/access-log", headers=api.auth("auditor", "org-b")).json()
    assert case_id not in str(their_log) and PATIENT_REF not in str(their_log)
    assert [(r["actor_id"], r["case_id"], r["outcome"]) for r in their_log
            if r["kind"] == "case"] == [("snoop-1", None, "not-found")]  # fmt: skip


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_patient_gets_the_overview_of_who_accessed_their_case(api: Api) -> None:
    mine, other = api.open(OWNER, PATIENT_REF), api.open(OWNER, "PX-0002")
    api.client.get(f"/cases/{mine}", headers=api.auth("gp", OWNER, actor="gp-12"))
    api.client.get(f"/cases/{other}", headers=api.auth("gp", OWNER, actor="gp-99"))
    patient = _headers(api, "patient", OWNER)
    overview = api.client.get("/access-log", headers=patient).json()
    assert {r["case_id"] for r in overview} == {mine}
    assert ("gp-12", "case") in {(r["actor_id"], r["kind"]) for r in overview}
    assert "gp-99" not in {r["actor_id"] for r in overview}
    assert overview[-1]["kind"] == "access-log" and overview[-1]["actor_id"] == PATIENT_REF


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_denied_reads_are_logged(api: Api) -> None:
    case_id = api.open(OWNER, PATIENT_REF)
    problem(api.client.get("/audit/export", headers=api.auth("gp", OWNER, actor="gp-12")), 403, "permission-denied")
    log = api.client.get("/access-log", headers=api.auth("auditor", OWNER)).json()
    assert [(r["kind"], r["outcome"]) for r in log if r["actor_id"] == "gp-12"] == [("export", "denied")]
    assert case_id
