"""Observability as operators switch it on: the settings, the worker's JSON logs and its metrics
listener (real processes), and the promise that programs embedding the library load none of it."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from second_opinion import connect
from second_opinion.cli.serve import serve_metrics
from second_opinion.observability import ENV_LOG_FORMAT, ENV_TRACING, Observability, Settings, settings_from_env
from second_opinion.observability.metrics import Metrics
from second_opinion.observability.tracing import spans_for
from tests.conftest import DESK, T0, walk
from workflow import FixedClock
from workflow.errors import ConfigurationError

ROOT = Path(__file__).resolve().parents[2]
AFTER = (T0 + timedelta(days=30)).isoformat()


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_log_format_auto_is_console_on_a_terminal_and_json_otherwise() -> None:
    assert settings_from_env({}, Tty()).log_format == "console"
    assert settings_from_env({}, io.StringIO()).log_format == "json"
    assert settings_from_env({ENV_LOG_FORMAT: "JSON"}, Tty()).log_format == "json"
    assert settings_from_env({ENV_LOG_FORMAT: "console"}, io.StringIO()).log_format == "console"
    assert settings_from_env({}, io.StringIO()).tracing == "off"


@pytest.mark.parametrize(("name", "value"), [(ENV_LOG_FORMAT, "xml"), (ENV_TRACING, "jaeger"), (ENV_TRACING, "1")])
def test_a_bad_setting_is_refused_naming_it(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        settings_from_env({name: value}, io.StringIO())
    assert name in str(refused.value) and value in str(refused.value)


def test_tracing_without_the_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # as if the extra were not installed
    assert spans_for("off", ENV_TRACING) is None  # off: nothing is imported, nothing fails
    with pytest.raises(ConfigurationError, match=r"second-opinion\[otel\]"):
        Observability.start(Settings(tracing="console"), metrics=False)


def test_embedding_the_library_loads_no_logging_metrics_or_tracing_library() -> None:
    """The service layer's observer is a no-op unless the composition root wires one: an embedding
    program imports neither prometheus_client, structlog nor OpenTelemetry."""
    script = (
        "import sys\n"
        "from second_opinion import connect\n"
        "from workflow import Actor\n"
        "s = connect('memory://', channel='embedded:test')\n"
        "s.open_case('PX-1', actor=Actor('desk-1', 'coordinator'))\n"
        "print([m for m in ('prometheus_client', 'structlog', 'opentelemetry') if m in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_api_runs_without_the_otel_extra() -> None:
    """Without the extra (the OpenTelemetry SDK made unimportable; recent FastAPI needs the API
    package itself) the app is built and answers, with its request ids, and asking for tracing is
    one clear error naming the extra."""
    script = (
        "import sys\n"
        "class NoOtel:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.startswith('opentelemetry.sdk'): raise ImportError(name)\n"
        "sys.meta_path.insert(0, NoOtel())\n"
        "from fastapi.testclient import TestClient\n"
        "from second_opinion import connect\n"
        "from second_opinion.api import create_app\n"
        "from second_opinion.observability import Observability, Settings\n"
        "answer = TestClient(create_app(connect('memory://'))).get('/health')\n"
        "print(answer.status_code, len(answer.headers['x-request-id']))\n"
        "try:\n"
        "    Observability.start(Settings(tracing='console'), metrics=False)\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    status, refusal = done.stdout.strip().splitlines()
    assert status == "200 32"
    assert refusal.startswith("ConfigurationError") and "second-opinion[otel]" in refusal


def test_a_metrics_port_in_use_is_one_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigurationError, match="--metrics-port"):
            serve_metrics(Observability(Metrics()), "127.0.0.1", port)
    assert serve_metrics(Observability(), "127.0.0.1", port) == ""  # no metrics asked for: nothing listens


def _due_case(url: str) -> str:
    with connect(url, clock=FixedClock(T0)) as service:
        case_id = service.open_case("PX-9", actor=DESK).case_id
        walk(service, case_id, "referred")
    return case_id


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_worker_logs_json_lines_naming_the_case(db_url: str) -> None:
    case_id = _due_case(db_url)
    env = {**os.environ, "SECOND_OPINION_DB": db_url, "SECOND_OPINION_CLOCK": AFTER, ENV_LOG_FORMAT: "json"}
    command = [sys.executable, "-m", "second_opinion", "worker", "--once", "--allow-clock-override"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]
    assert lines and all({"event", "level", "logger", "timestamp"} <= set(line) for line in lines)
    notified = [line for line in lines if line["logger"] == "second_opinion.notifications"]
    assert notified and all(line["case_id"] == case_id for line in notified)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_worker_serves_metrics_on_localhost(db_url: str) -> None:
    _due_case(db_url)
    port = _free_port()
    env = {**os.environ, "SECOND_OPINION_DB": db_url, "SECOND_OPINION_CLOCK": AFTER, ENV_LOG_FORMAT: "json"}
    with tempfile.TemporaryFile("w+") as err:
        command = [sys.executable, "-m", "second_opinion", "worker", "--allow-clock-override", "--interval", "3600",
                   "--metrics-port", str(port)]  # fmt: skip
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=err)
        try:
            text = ""
            for _ in range(300):  # the first sweep runs before the scheduler starts; polled, not timed
                try:
                    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
                except httpx.TransportError:
                    text = ""
                swept = "second_opinion_sweep_duration_seconds_count 1.0" in text
                if swept and "second_opinion_outbox_pending 0.0" in text:  # swept, then delivered to the log
                    break
                time.sleep(0.1)
            assert "second_opinion_sweep_duration_seconds_count 1.0" in text, text[-2000:]
            assert 'second_opinion_deadlines{policy="domestic-dossier",state="breached"} 1.0' in text
            assert "second_opinion_outbox_pending 0.0" in text
            assert "second_opinion_readings_ok 1.0" in text
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        err.seek(0)
        assert "Traceback" not in err.read()


def test_serve_logs_json_lines_with_request_ids_and_serves_metrics_apart(tmp_path: Path) -> None:
    from tests.reliability.test_api_servers import Server

    url = f"sqlite:///{tmp_path / 'serve.sqlite3'}"
    made = subprocess.run([sys.executable, "-m", "second_opinion", "init", "--db", url], capture_output=True,
                          text=True, cwd=tmp_path, timeout=120)  # fmt: skip
    assert made.returncode == 0, made.stderr
    metrics_port = _free_port()
    server = Server(url, _free_port(), tmp_path, env={ENV_LOG_FORMAT: "json"},
                    flags=("--metrics-port", str(metrics_port)))  # fmt: skip
    try:
        server.wait_ready(time.monotonic() + 60)
        typed = server.client.get("/cases/PX-111222333/history?state=Jansen", headers={"X-Request-Id": "edge-7"})
        assert typed.headers["x-request-id"] == "edge-7"
        assert server.client.get("/metrics").status_code == 404  # never on the API's port
        scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        assert "second_opinion_http_request_duration_seconds_count" in scraped
        assert "second_opinion_readings_ok 1.0" in scraped
    finally:
        server.stop()
    lines = [json.loads(line) for line in server.output.splitlines() if line.strip()]
    assert any(line["event"].startswith("second-opinion API on") for line in lines)
    requested = [x for x in lines if x.get("request_id") == "edge-7" and x["logger"] == "second_opinion.http"]
    assert requested and requested[0]["route"] == "/cases/{case_id}/history" and requested[0]["status"] == 401
    assert "111222333" not in server.output and "Jansen" not in server.output
