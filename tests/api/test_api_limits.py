"""The HTTP edge's limits, in process: rate limits on writes (per token, per case), on reads (per
token) and on failed authentications (per client address), the body limit whatever the framing, the Host header and
no redirect built from it. Time is a fake monotonic source moved by hand: no test waits."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from second_opinion.api import create_app
from second_opinion.bootstrap import (
    ENV_RATE_AUTH_FAILURES,
    ENV_RATE_CASE,
    ENV_RATE_READ,
    ENV_RATE_TOKEN,
    limits_from_env,
)
from second_opinion.limits import Buckets, Limits, Rate
from tests.api_support import problem
from tests.conftest import BACKENDS
from workflow import CaseService
from workflow.errors import ConfigurationError
from workflow.service.access import AccessService
from workflow.service.tokens import TokenService

REFUSED = {"event": "hand_back"}  # a coordinator's, not allowed in "requested": a 409 that the audit trail records


class Ticker:
    """A monotonic time source that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Counted:
    """A unit-of-work factory that counts what it opens."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.opened = inner, 0

    def __call__(self, write: bool = False) -> Any:
        self.opened += 1
        return self.inner(write)


class Edge:
    def __init__(self, service: CaseService, limits: Limits) -> None:
        self.uow = Counted(service.runtime.uow)
        self.service = CaseService.on(replace(service.runtime, uow=self.uow))
        self.client = TestClient(create_app(self.service, limits=limits), raise_server_exceptions=False)
        self.tokens = TokenService(self.service.runtime)

    def auth(self, actor: str = "desk-1", role: str = "coordinator", org: str = "org-a") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.create(actor, role, org)[0]}"}

    def open(self, headers: dict[str, str], ref: str = "PX-0001") -> Any:
        return self.client.post("/cases", json={"patient_ref": ref}, headers=headers)

    def history(self, case_id: str) -> list[dict[str, Any]]:
        answer = self.client.get(f"/cases/{case_id}/history", headers=self.auth("reader"))
        assert answer.status_code == 200, answer.text
        return list(answer.json())


@pytest.fixture
def ticker() -> Ticker:
    return Ticker()


def edge(service: CaseService, ticker: Ticker, **rates: Rate) -> Edge:
    return Edge(service, Limits.of(**rates, monotonic=ticker))


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_a_flood_of_refused_commands_on_one_case_stops_at_the_case_limit_and_429_records_nothing(
    service: CaseService, ticker: Ticker
) -> None:
    api = edge(service, ticker, case=Rate(5, 60))
    case_id = api.open(api.auth()).json()["case_id"]
    desks = [api.auth(f"desk-{i}") for i in range(12)]  # many tokens: the case's own limit holds them all
    answers = [api.client.post(f"/cases/{case_id}/events", json=REFUSED, headers=h) for h in desks]

    assert [a.status_code for a in answers] == [409] * 5 + [429] * 7
    limited = problem(answers[-1], 429, "rate-limited")
    assert answers[-1].headers["Retry-After"] == "12"  # 60 s / 5: one write every 12 s
    assert "hand_back" not in limited["detail"]
    history = api.history(case_id)
    assert [(r["event"], r["outcome"]) for r in history] == [("open", "accepted")] + [("hand_back", "rejected")] * 5

    ticker.now += 12  # one write refilled: the next command runs, and is recorded once
    assert api.client.post(f"/cases/{case_id}/events", json={"event": "withdraw", "reason": "patient's wish"},
                           headers=desks[0]).status_code == 200  # fmt: skip
    assert api.client.post(f"/cases/{case_id}/events", json=REFUSED, headers=desks[1]).status_code == 429
    assert len(api.history(case_id)) == 7


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_writes_per_token_are_limited_across_cases_and_a_refusal_spends_no_other_budget(
    service: CaseService, ticker: Ticker
) -> None:
    api = edge(service, ticker, token=Rate(3, 60), case=Rate(1, 60))
    desk = api.auth()
    first = api.open(desk, "PX-0001").json()["case_id"]
    assert api.client.post(f"/cases/{first}/events", json=REFUSED, headers=desk).status_code == 409
    # the case's limit refuses; the token's budget (1 left) is not spent on that refusal
    answer = api.client.post(f"/cases/{first}/events", json=REFUSED, headers=desk)
    problem(answer, 429, "rate-limited")
    assert answer.headers["Retry-After"] == "60"
    assert api.open(desk, "PX-0002").status_code == 201
    over = api.open(desk, "PX-0003")
    problem(over, 429, "rate-limited")
    assert over.headers["Retry-After"] == "20"  # 60 s / 3
    assert api.open(api.auth("desk-2"), "PX-0004").status_code == 201, "another token has its own budget"
    listed = api.client.get("/cases", headers=desk).json()
    assert sorted(c["patient_ref"] for c in listed) == ["PX-0001", "PX-0002", "PX-0004"], "a 429 opens nothing"
    ticker.now += 20
    assert api.open(desk, "PX-0003").status_code == 201


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_another_organisation_cannot_spend_a_cases_budget(service: CaseService, ticker: Ticker) -> None:
    api = edge(service, ticker, case=Rate(2, 60))
    case_id = api.open(api.auth()).json()["case_id"]
    outsiders = [api.auth(f"out-{i}", org="org-b") for i in range(5)]
    codes = [api.client.post(f"/cases/{case_id}/events", json=REFUSED, headers=h).status_code for h in outsiders]
    assert codes == [404, 404, 429, 429, 429]  # their own bucket for that id: they see no case
    assert [api.client.post(f"/cases/{case_id}/events", json=REFUSED, headers=api.auth(f"desk-{i}")).status_code
            for i in range(3)] == [409, 409, 429]  # fmt: skip
    assert len(api.history(case_id)) == 3


def block(api: Edge) -> None:
    """Three failed authentications from the test client's address: past ``Rate(3, 60)``."""
    for secret in ("so_guess-1", "so_guess-2", None):
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        problem(api.client.get("/cases", headers=headers), 401, "unauthenticated")


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_failed_authentications_from_one_address_get_429_with_retry_after_until_the_bucket_refills(
    service: CaseService, ticker: Ticker
) -> None:
    api = edge(service, ticker, auth_failures=Rate(3, 60))
    block(api)
    for headers in ({"Authorization": "Bearer so_guess-4"}, {}, {"Authorization": "Basic eDp5"}):
        answer = api.client.get("/cases", headers=headers)
        problem(answer, 429, "rate-limited")  # a guesser learns nothing a 401 would not tell it
        assert answer.headers["Retry-After"] == "20"
    assert api.client.get("/health").status_code == 200
    ticker.now += 20  # one failure refilled: the next guess is a 401 again, and spends it
    problem(api.client.get("/cases", headers={"Authorization": "Bearer so_guess-5"}), 401, "unauthenticated")
    problem(api.client.get("/cases", headers={"Authorization": "Bearer so_guess-6"}), 429, "rate-limited")


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_a_valid_token_from_a_blocked_address_is_served(service: CaseService, ticker: Ticker) -> None:
    """Found by review: behind a reverse proxy or a hospital's NAT every client has one address,
    and one client without a token locked every valid token of that address out."""
    api = edge(service, ticker, auth_failures=Rate(3, 60))
    good = api.auth()
    block(api)
    listed = api.client.get("/cases", headers=good)
    assert listed.status_code == 200, listed.text
    assert api.open(good).status_code == 201
    problem(api.client.get("/cases", headers={"Authorization": "Bearer so_guess-4"}), 429, "rate-limited")
    assert len(api.client.get("/cases", headers=good).json()) == 1, "a valid token does not unblock the guessers"


@pytest.mark.parametrize("db_url", ["memory", "sqlite"], indirect=True)
def test_reads_per_token_are_limited_and_a_429_writes_no_access_record(service: CaseService, ticker: Ticker) -> None:
    """Found by review: every read of case data appends access-log records (one per case read or
    listed) under the log's lock, and reads had no limit: 50 listings of 200 cases wrote 10,000."""
    api = edge(service, ticker, read=Rate(4, 60))
    case_id = api.open(api.auth()).json()["case_id"]  # a write: the read bucket is not charged
    reader = api.auth("reader")
    log = AccessService(api.service.runtime)
    reads = [f"/cases/{case_id}", "/cases", f"/cases/{case_id}/history", f"/fhir/Task/{case_id}"]
    assert [api.client.get(path, headers=reader).status_code for path in reads] == [200] * 4
    written = log.verify_log()[0]
    for path in [*reads, "/access-log", f"/cases/{case_id}/deadlines"]:
        answer = api.client.get(path, headers=reader)
        problem(answer, 429, "rate-limited")
        assert answer.headers["Retry-After"] == "15"  # 60 s / 4
    assert log.verify_log()[0] == written, "a refused read is written nowhere"
    assert api.client.get(f"/cases/{case_id}", headers=api.auth("reader-2")).status_code == 200, "its own bucket"
    assert api.client.post(f"/cases/{case_id}/events", json=REFUSED, headers=reader).status_code == 409, \
        "writes have their own limits"
    ticker.now += 15
    assert api.client.get(f"/cases/{case_id}", headers=reader).status_code == 200
    problem(api.client.get(f"/cases/{case_id}", headers=reader), 429, "rate-limited")


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_the_default_limits_hold_a_flood_of_refused_commands(service: CaseService, ticker: Ticker) -> None:
    """What the issue found: 1,500 refused commands on one case in 11 s. With the defaults (no
    variable set), a case takes 30 commands, then one every 2 s (opening it counts for the token only)."""
    api = Edge(service, limits_from_env({}, monotonic=ticker))
    case_id = api.open(api.auth()).json()["case_id"]
    desks = [api.auth(f"desk-{i}") for i in range(10)]
    codes = [api.client.post(f"/cases/{case_id}/events", json=REFUSED, headers=desks[i % 10]).status_code
             for i in range(300)]  # fmt: skip
    assert codes.count(409) == 30 and codes.count(429) == 270
    assert len(api.history(case_id)) == 31


def test_rate_settings_parse_and_bad_values_name_the_variable() -> None:
    limits = limits_from_env({ENV_RATE_TOKEN: "10/1", ENV_RATE_CASE: "off", ENV_RATE_AUTH_FAILURES: "0",
                              ENV_RATE_READ: "OFF"})  # fmt: skip
    assert limits.token is not None and limits.token.rate == Rate(10, 1)
    assert limits.case is None and limits.auth_failures is None and limits.read is None
    default = limits_from_env({}).read
    assert default is not None and default.rate == Rate(600, 60)
    for bad in ("120", "120/0", "0/60", "-1/60", "1.5/60", "x", "120/60/1", "99999999/60"):
        with pytest.raises(ConfigurationError) as caught:
            limits_from_env({ENV_RATE_CASE: bad})
        text = str(caught.value)
        assert text.startswith(f"{ENV_RATE_CASE}: must be COUNT/SECONDS") and "\n" not in text, text


def test_buckets_stay_bounded_whatever_keys_an_attacker_makes(ticker: Ticker) -> None:
    buckets = Buckets(Rate(2, 60), ticker, max_keys=100)
    for i in range(1000):
        buckets.take(f"so-{i:016d}")
    assert buckets.keys_held() <= 100
    buckets.take("kept")
    buckets.take("kept")
    assert buckets.wait("kept") == pytest.approx(30)


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
@pytest.mark.parametrize("path", ["/cases/", "/cases/so-aaaaaaaaaaaaaaaa/", "/fhir/AuditEvent/", "/health/"])
def test_a_trailing_slash_is_not_found_and_redirects_nowhere(service: CaseService, path: str) -> None:
    client = TestClient(create_app(service), raise_server_exceptions=False, follow_redirects=False)
    answer = client.get(path, headers={"Host": "evil.example"})
    problem(answer, 404, "not-found")
    assert "location" not in answer.headers and "evil" not in answer.text


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
@pytest.mark.parametrize("host", ["evil.example/PX-111222333?", "a b", "x@evil.example", "evil#x"])
def test_a_host_header_that_is_no_host_is_a_bad_request(service: CaseService, host: str) -> None:
    client = TestClient(create_app(service), raise_server_exceptions=False)
    answer = client.get("/health", headers={"Host": host})
    body = problem(answer, 400, "bad-request")
    assert body["instance"] == "/health" and answer.headers["connection"] == "close"


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_a_chunked_body_is_counted_as_it_streams_whatever_content_length_says(service: CaseService) -> None:
    client = TestClient(create_app(service), raise_server_exceptions=False)
    sent = []

    def chunks() -> Iterator[bytes]:
        yield b'{"patient_ref": "PX-0001", "pad": "'
        for _ in range(100):  # 1 MB, well past the limit
            sent.append(1)
            yield b"x" * 10_000
        yield b'"}'

    headers = {"Content-Type": "application/json", "Content-Length": "10", "Transfer-Encoding": "chunked"}
    answer = client.post("/cases", content=chunks(), headers=headers)  # no token: the limit comes first
    problem(answer, 413, "body-too-large")
    assert answer.headers["connection"] == "close"


@pytest.mark.parametrize("variable", [ENV_RATE_TOKEN, ENV_RATE_CASE, ENV_RATE_AUTH_FAILURES, ENV_RATE_READ])
def test_serve_with_a_bad_rate_stops_with_one_line_naming_the_variable(variable: str) -> None:
    from typer.testing import CliRunner

    from second_opinion.cli import app

    result = CliRunner().invoke(app, ["serve", "--db", "memory://"], env={variable: "lots"})
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and result.stderr.strip().count("\n") == 0, result.stderr
    assert variable in result.stderr and "COUNT/SECONDS" in result.stderr


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_one_token_flooding_a_case_spends_only_its_share_of_the_cases_budget(
    service: CaseService, ticker: Ticker
) -> None:
    """Found by review: one token (a patient on their own case, a stuck integration) could spend a
    case's whole budget and hold staff off it for a minute. Each token gets a share on a case."""
    api = edge(service, ticker, case=Rate(6, 60), case_token=Rate(2, 60))
    case_id = api.open(api.auth()).json()["case_id"]
    flooder, desk = api.auth("flooder"), api.auth("desk-2")
    codes = [api.client.post(f"/cases/{case_id}/events", json=REFUSED, headers=flooder).status_code for _ in range(5)]
    assert codes == [409, 409, 429, 429, 429]
    other = api.client.post(f"/cases/{case_id}/events", json=REFUSED, headers=desk)
    assert other.status_code == 409, "another token still reaches the case"
    many = [api.client.post(f"/cases/{case_id}/events", json=REFUSED, headers=api.auth(f"d-{i}")).status_code
            for i in range(5)]  # fmt: skip
    assert many == [409, 409, 409, 429, 429]  # the case's own budget (6) still caps them all
    assert len(api.history(case_id)) == 1 + 6
