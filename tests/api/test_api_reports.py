"""GET /reports/*: who may read a report (written out by hand, as in test_api_access), what it holds,
the one access record it leaves, and bad parameters refused as problems that change nothing."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest

from tests.api_support import Api, problem
from tests.conftest import BACKENDS, CONSULTANT
from tests.report_data import build
from workflow import CaseService, FixedClock

ORG = "local"
PERIOD = {"from": "2026-11-01", "to": "2026-12-31"}
REPORT_READERS = {"patient": 403, "gp": 403, "first_provider": 403, "second_opinion_doctor": 403,
                  "care_consultant": 200, "coordinator": 200, "auditor": 200}  # fmt: skip
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def api(service: CaseService, clock: FixedClock) -> Iterator[Api]:
    build(service, clock)
    yield Api(service)


def access_log(api: Api) -> list[dict[str, object]]:
    answer = api.client.get("/access-log", headers=api.auth("auditor", ORG))
    assert answer.status_code == 200
    return [r for r in answer.json() if r["kind"] != "access-log"]


@pytest.mark.parametrize(("role", "status"), sorted(REPORT_READERS.items()))
def test_who_may_read_a_report(api: Api, role: str, status: int) -> None:
    headers = api.auth(role, ORG, actor="PX-R1" if role == "patient" else None)
    for path in ("/reports/summary", "/reports/summary.csv", "/reports/charts/lead-time.svg"):
        answer = api.client.get(path, params=PERIOD, headers=headers)
        if status == 403:
            problem(answer, 403, "permission-denied")
        else:
            assert answer.status_code == 200, answer.text
    records = [r for r in access_log(api) if r["actor_role"] == role]
    assert [r["kind"] for r in records] == ["report"] * 3
    assert {r["outcome"] for r in records} == {"granted" if status == 200 else "denied"}
    assert all(r["case_id"] is None and r["patient_ref"] is None for r in records)  # aggregates name no case


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_the_summary_holds_the_figures_and_no_case_or_patient(api: Api) -> None:
    answer = api.client.get("/reports/summary", params=PERIOD, headers=api.auth("coordinator", ORG))
    assert answer.status_code == 200
    body = answer.json()
    assert body["from"] == "2026-11-01" and body["to"] == "2026-12-31" and body["organisation"] == ORG
    royal = next(r for r in body["routes"] if r["route"] == "royal-doctors")
    assert royal["lead_time"]["calendar_days"] == {"n": 3, "median": 11.0, "p90": 24.6}
    assert royal["deadlines"]["share_on_time"] == 0.6667
    assert "PX-" not in answer.text and "so-" not in answer.text  # no patient reference, no case id
    (record,) = [r for r in access_log(api) if r["kind"] == "report"]
    assert record["actor_role"] == "coordinator" and record["case_id"] is None


def test_another_organisations_report_sees_none_of_these_cases(api: Api) -> None:
    api.service.open_case("PX-O1", actor=CONSULTANT, route="royal-doctors", organisation="org-b")
    body = api.client.get("/reports/summary", params=PERIOD, headers=api.auth("auditor", "org-b")).json()
    assert body["organisation"] == "org-b"
    assert sum(sum(r["cases_per_state"].values()) for r in body["routes"]) == 1
    assert all(r["advice_returned"] == 0 for r in body["routes"])


def test_csv_download(api: Api) -> None:
    answer = api.client.get("/reports/summary.csv", params={**PERIOD, "route": "royal-doctors"},
                            headers=api.auth("care_consultant", ORG))  # fmt: skip
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"] == 'attachment; filename="report-2026-11-01-2026-12-31.csv"'
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0] == ["figure", "route", "key", "value"]
    assert ["lead_time_calendar_days", "royal-doctors", "p90", "24.6"] in rows
    assert ["dossier_to_report", "royal-doctors", "within_term", "2"] in rows
    assert ["breaches_per_month", "royal-doctors", "2026-12", "1"] in rows
    assert {r[1] for r in rows[1:]} == {"", "royal-doctors"}
    assert "PX-" not in answer.text


@pytest.mark.parametrize("name", ["lead-time", "dossier-to-report", "on-time", "breaches-per-month",
                                  "cases-per-state"])  # fmt: skip
def test_charts_are_svg_documents_with_their_labels(api: Api, name: str) -> None:
    answer = api.client.get(f"/reports/charts/{name}.svg", params=PERIOD, headers=api.auth("auditor", ORG))
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("image/svg+xml")
    assert answer.headers["content-security-policy"] == "default-src 'none'"
    root = ET.fromstring(answer.text)
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    assert root.find(f"{SVG}title") is not None and root.find(f"{SVG}desc") is not None
    texts = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert "royal-doctors" in texts or name == "cases-per-state"
    assert "<script" not in answer.text and "PX-" not in answer.text


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/reports/summary", {"from": "2026-13-01"}, "from"),
        ("/reports/summary", {"from": "2026-12-01", "to": "2026-11-01"}, "from"),
        ("/reports/summary", {"from": "2019-01-01", "to": "2026-01-01"}, "from"),
        ("/reports/summary", {"to": "yesterday"}, "to"),
        ("/reports/summary", {"from": "2026-01-01T00:00:00Z"}, "from"),  # longer than a date
        ("/reports/summary", {"route": "nowhere"}, "route"),
        ("/reports/summary.csv", {"from": "=1+1"}, "from"),
        ("/reports/charts/pie.svg", {}, "chart"),
        ("/reports/charts/%3Cscript%3E.svg", {}, "chart"),
    ],
)
def test_bad_parameters_are_problems_that_log_nothing(api: Api, path: str, params: dict[str, str], field: str) -> None:
    before = access_log(api)
    body = problem(api.client.get(path, params=params, headers=api.auth("coordinator", ORG)), 422,
                   "validation-error")  # fmt: skip
    assert field in body["detail"] or body.get("field") == field
    assert "<script>" not in body["detail"]
    assert access_log(api) == before


def test_a_report_needs_a_token(api: Api) -> None:
    problem(api.client.get("/reports/summary"), 401, "unauthenticated")
