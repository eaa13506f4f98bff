"""Observability over HTTP and the service layer: request ids, JSON logs with request, case and
organisation fields and never a BSN or a name, Prometheus metrics with bounded labels, and
OpenTelemetry spans (through the SDK's in-memory exporter)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import structlog
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import generate_latest

from second_opinion import connect
from second_opinion.api import create_app
from second_opinion.observability import Observability, Settings
from second_opinion.observability import logs as obs_logs
from second_opinion.observability.context import accepted_id
from second_opinion.observability.metrics import Metrics
from tests.conftest import DESK, EXAMPLES, T0, walk
from workflow import CaseService, FixedClock
from workflow.service.deadlines import DeadlineService
from workflow.service.tokens import TokenService

BSN = "111222333"  # passes the elfproef
SURNAME = "Vermeulen-Oosterhuis"
NAME = f"Anna {SURNAME}"
KEY = b"k" * 32


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Every log line of the test as JSON, on a buffer; the logging set-up restored after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    obs_logs.configure(obs_logs.JSON, stream=stream, level=logging.DEBUG)
    client_log = logging.getLogger("httpx2")  # the test's own client quotes the URLs it calls
    client_log.setLevel(logging.WARNING)
    try:
        yield stream
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        client_log.setLevel(logging.NOTSET)
        structlog.reset_defaults()


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


class Observed:
    """An app on a fresh in-memory service with metrics and (optionally) spans."""

    def __init__(self, spans: InMemorySpanExporter | None = None) -> None:
        provider = None
        if spans is not None:
            provider = TracerProvider()
            provider.add_span_processor(SimpleSpanProcessor(spans))
        settings = Settings(tracing="console" if spans is not None else "off")
        self.seen = Observability.start(settings, metrics=True, tracer_provider=provider)
        self.clock = FixedClock(T0)
        plain = connect("memory://", clock=self.clock, identity_key=KEY)
        self.service = CaseService.on(self.seen.on(plain.runtime))
        self.app = create_app(self.service, observability=self.seen)
        self.client = TestClient(self.app, raise_server_exceptions=False)
        self.tokens = TokenService(self.service.runtime)

    def auth(self, role: str, actor: str, org: str = "org-a", **headers: str) -> dict[str, str]:
        secret, _ = self.tokens.create(actor, role, org)
        return {"Authorization": f"Bearer {secret}", **headers}

    def sample(self, name: str, **labels: str) -> float | None:
        metrics = self.seen.metrics
        assert metrics is not None
        return metrics.registry.get_sample_value(name, labels)


# --- request ids ------------------------------------------------------------------------------


def test_a_safe_request_id_is_kept_and_echoed() -> None:
    api = Observed()
    answer = api.client.get("/health", headers={"X-Request-Id": "req-01HZX.abc:9"})
    assert answer.headers["x-request-id"] == "req-01HZX.abc:9"


@pytest.mark.parametrize(
    "offered",
    ["x" * 65, "has space", 'quote"d', "-leading-dash", BSN, f"id-{BSN}", "naïve", "a\tb", ""],
)
def test_an_unsafe_request_id_is_replaced(offered: str) -> None:
    api = Observed()
    answer = api.client.get("/health", headers={"X-Request-Id": offered.encode("latin-1")})
    given = answer.headers["x-request-id"]
    assert given != offered and len(given) == 32 and int(given, 16) >= 0


def test_without_a_request_id_one_is_made_and_problem_documents_quote_it() -> None:
    api = Observed()
    answer = api.client.get("/cases/so-doesnotexist", headers=api.auth("coordinator", "desk-1"))
    assert answer.status_code in (404, 422)
    assert answer.json()["request_id"] == answer.headers["x-request-id"]
    assert len(answer.headers["x-request-id"]) == 32
    refused = api.client.post("/cases", content=b"x" * (300 * 1024), headers={"X-Request-Id": "abc-1"})
    assert refused.status_code == 413 and refused.headers["x-request-id"] == "abc-1"  # the Edge's own refusals too
    assert refused.json()["request_id"] == "abc-1"


def test_two_ids_offered_are_replaced() -> None:
    assert accepted_id(None) != accepted_id(None)
    api = Observed()
    answer = api.client.get("/health", headers=[("X-Request-Id", "a1"), ("X-Request-Id", "b2")])
    assert answer.headers["x-request-id"] not in ("a1", "b2")


# --- logs -------------------------------------------------------------------------------------


def test_logs_carry_request_case_and_organisation_and_never_a_bsn_or_name(captured: io.StringIO) -> None:
    api = Observed()
    case_id = api.service.open_case("PX-77", actor=DESK, bsn=BSN, patient_name=NAME, organisation="org-a").case_id
    walk(api.service, case_id, "referred")
    doctor = api.auth("second_opinion_doctor", "dr-1")
    desk = api.auth("coordinator", "desk-1", **{"X-Request-Id": "trace-42"})
    data = EXAMPLES["receive_item"][2]
    ok = api.client.post(f"/cases/{case_id}/events", json={"event": "receive_item", "data": data}, headers=doctor)
    assert ok.status_code == 200, ok.text
    attempts = [
        {"event": "withdraw", "reason": f"bsn {BSN}"},
        {"event": "withdraw", "reason": f"patient {NAME} asked"},
        {"event": "withdraw", "data": {"note": SURNAME}},
        {"event": f"no_{SURNAME}"},
    ]
    for body in attempts:
        answer = api.client.post(f"/cases/{case_id}/events", json=body, headers=desk)
        assert answer.status_code >= 400, answer.text
    api.client.get(f"/cases/{case_id}", headers=desk)
    api.client.get(f"/cases?patient_ref={SURNAME}", headers=desk)
    api.client.get(f"/nothing/{BSN}/{SURNAME}", headers=desk)
    api.clock.advance(timedelta(days=30))
    DeadlineService(api.service.runtime).sweep()

    text = captured.getvalue()
    assert BSN not in text and "111 222 333" not in text and SURNAME not in text and "Anna" not in text
    logged = lines(captured)
    commands = [line for line in logged if line["logger"] == "second_opinion.commands"]
    accepted = [c for c in commands if c["outcome"] == "accepted" and c.get("command") == "receive_item"]
    assert accepted and accepted[0]["case_id"] == case_id and accepted[0]["organisation"] == "org-a"
    assert accepted[0]["request_id"] and accepted[0]["level"] == "info" and accepted[0]["timestamp"].endswith("Z")
    assert any(c.get("command") == "open" and c.get("case_id") == case_id for c in commands)
    refused = [c for c in commands if c.get("request_id") == "trace-42"]
    assert len(refused) == 4 and {c["outcome"] for c in refused} == {"rejected"}
    assert {c["command"] for c in refused} == {"withdraw", "unknown"}  # a typed event name is not echoed
    requests = [line for line in logged if line["logger"] == "second_opinion.http"]
    assert {"/cases/{case_id}/events", "/cases/{case_id}", "/cases", "unmatched"} <= {r["route"] for r in requests}
    assert all(r["request_id"] and r["duration_ms"] >= 0 for r in requests)


def test_console_format_is_for_people(captured: io.StringIO) -> None:
    stream = io.StringIO()
    obs_logs.configure(obs_logs.CONSOLE, stream=stream)
    logging.getLogger("second_opinion.test").warning("hello %s", f"bsn {BSN}")
    text = stream.getvalue()
    assert "hello" in text and "warning" in text and BSN not in text and not text.lstrip().startswith("{")


# --- metrics ----------------------------------------------------------------------------------


def test_commands_refusals_and_request_latency_are_counted() -> None:
    api = Observed()
    desk = api.auth("coordinator", "desk-1")
    opened = api.client.post("/cases", json={"patient_ref": "PX-1"}, headers=desk)
    case_id = opened.json()["case_id"]
    api.client.post(f"/cases/{case_id}/events", json={"event": "refer"}, headers=desk)  # a coordinator may not
    api.client.post(f"/cases/{case_id}/events", json={"event": "made_up"}, headers=desk)
    api.client.post(f"/cases/{case_id}/events", json={"event": "withdraw", "reason": "wish"}, headers=desk)
    for _ in range(3):
        api.client.get(f"/cases/{case_id}", headers=desk)
    api.client.get("/no/such/path")

    assert api.sample("second_opinion_commands_total", event="open", outcome="accepted") == 1
    assert api.sample("second_opinion_commands_total", event="refer", outcome="denied") == 1
    assert api.sample("second_opinion_commands_total", event="unknown", outcome="rejected") == 1
    assert api.sample("second_opinion_commands_total", event="withdraw", outcome="accepted") == 1
    assert api.sample("second_opinion_refusals_total", error="PermissionDenied") == 1
    assert api.sample("second_opinion_refusals_total", error="UnknownEvent") == 1
    assert api.sample("second_opinion_command_duration_seconds_count", event="withdraw") == 1
    get = {"method": "GET", "route": "/cases/{case_id}", "status": "200"}
    assert api.sample("second_opinion_http_request_duration_seconds_count", **get) == 3
    assert api.sample("second_opinion_http_request_duration_seconds_count", method="GET", route="unmatched",
                      status="404") == 1  # fmt: skip
    scraped = generate_latest(api.seen.metrics.registry).decode()  # type: ignore[union-attr]
    assert case_id not in scraped and "/no/such/path" not in scraped  # no raw path, no case id as a label


def test_deadline_and_outbox_gauges_are_read_at_scrape_time() -> None:
    api = Observed()
    case_id = api.service.open_case("PX-2", actor=DESK).case_id
    walk(api.service, case_id, "referred")
    assert api.sample("second_opinion_deadlines", policy="domestic-dossier", state="running") == 1
    assert api.sample("second_opinion_deadlines_due_soon", policy="domestic-dossier") == 0
    assert api.sample("second_opinion_outbox_pending") == 0
    api.clock.advance(timedelta(days=30))
    DeadlineService(api.service.runtime).sweep()
    api.clock.advance(timedelta(seconds=90))
    assert api.sample("second_opinion_deadlines", policy="domestic-dossier", state="breached") == 1
    assert api.sample("second_opinion_deadlines", policy="domestic-dossier", state="running") is None
    assert api.sample("second_opinion_outbox_pending") == 2
    assert api.sample("second_opinion_outbox_oldest_age_seconds") == 90
    assert api.sample("second_opinion_sweep_duration_seconds_count") == 1
    assert api.sample("second_opinion_readings_ok") == 1


def test_a_failed_reading_still_answers_the_scrape(caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()

    def broken() -> Any:
        raise RuntimeError("database away")

    metrics.watch(broken)
    assert metrics.registry.get_sample_value("second_opinion_readings_ok") == 0
    assert metrics.registry.get_sample_value("second_opinion_outbox_pending") is None
    assert "could not be read (RuntimeError)" in caplog.text


def test_the_api_has_no_metrics_route() -> None:
    """/metrics is served on a listener of its own (docs/security.md), never on the API's port."""
    api = Observed()
    assert api.client.get("/metrics").status_code == 404


def test_the_metrics_listener_serves_the_registry_on_localhost() -> None:
    import httpx

    metrics = Metrics()
    metrics.commands.labels("open", "accepted").inc()
    port = metrics.serve("127.0.0.1", 0)
    answer = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert answer.status_code == 200
    assert 'second_opinion_commands_total{event="open",outcome="accepted"} 1.0' in answer.text


# --- traces -----------------------------------------------------------------------------------


def test_requests_commands_and_sweeps_are_spans() -> None:
    exporter = InMemorySpanExporter()
    api = Observed(spans=exporter)
    desk = api.auth("coordinator", "desk-1")
    opened = api.client.post("/cases", json={"patient_ref": "PX-3"}, headers=desk)
    assert opened.status_code == 201
    case_id = opened.json()["case_id"]
    api.client.post(f"/cases/{case_id}/events", json={"event": "refer"}, headers=desk)
    due = api.service.open_case("PX-4", actor=DESK, organisation="org-b").case_id
    walk(api.service, due, "referred")
    api.clock.advance(timedelta(days=30))
    DeadlineService(api.service.runtime).sweep()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    case_span = spans["second_opinion.sweep.case"]
    assert case_span.attributes == {"case_id": due, "organisation": "org-b"}
    assert case_span.parent is not None and case_span.parent.span_id == spans["second_opinion.sweep"].context.span_id
    http = spans["POST /cases"]
    command = next(s for s in exporter.get_finished_spans() if s.name == "second_opinion.command"
                   and s.attributes and s.attributes["event"] == "open")  # fmt: skip
    assert command.parent is not None and command.parent.span_id == http.context.span_id
    assert http.attributes is not None and http.attributes["http.response.status_code"] == 201
    refused = spans["POST /cases/{case_id}/events"]
    assert refused.attributes is not None and refused.attributes["http.route"] == "/cases/{case_id}/events"
    denied = [s for s in exporter.get_finished_spans() if s.name == "second_opinion.command"
              and s.attributes and s.attributes["event"] == "refer"]  # fmt: skip
    assert denied and denied[0].status.status_code.name == "ERROR"
    assert "second_opinion.sweep" in spans


def test_a_crash_is_a_500_quoting_the_request_id(captured: io.StringIO) -> None:
    api = Observed()

    @api.app.get("/boom")
    def boom() -> None:
        raise RuntimeError(f"bug quoting {BSN}")

    answer = api.client.get("/boom", headers={"X-Request-Id": "crash-1"})
    assert answer.status_code == 500 and answer.json()["request_id"] == "crash-1"
    crashed = [line for line in lines(captured) if line["level"] == "error"]
    assert crashed and crashed[0]["request_id"] == "crash-1" and "RuntimeError" in crashed[0]["exception"]
    assert BSN not in captured.getvalue()  # the traceback's message is screened too
    assert api.sample("second_opinion_http_request_duration_seconds_count", method="GET", route="/boom",
                      status="500") == 1  # fmt: skip


def test_the_operations_doc_lists_every_metric_as_the_registry_has_it() -> None:
    from pathlib import Path

    from second_opinion.observability.metrics import catalogue

    doc = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    section = doc.split("### Metrics", 1)[1].split("###", 1)[0]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in section.splitlines()
            if line.startswith("| `second_opinion_")]  # fmt: skip
    documented = sorted((name.strip("`"), kind, text) for name, kind, _, text in rows)
    assert documented == catalogue()


def test_watching_twice_keeps_one_set_of_gauges() -> None:
    api = Observed()
    api.seen.on(api.service.runtime)  # a second runtime on the same metrics: the gauges are not doubled
    scraped = generate_latest(api.seen.metrics.registry).decode()  # type: ignore[union-attr]
    assert scraped.count("\nsecond_opinion_outbox_pending ") == 1
