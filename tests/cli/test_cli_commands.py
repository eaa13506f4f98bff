"""CLI checks that tests/test_cli.py does not make: the main path with every option of ``fire``
(ending in the recorded dossier-complete moment), long JSON that must never be wrapped, and the
independent hash-check script printed in docs/cli.md. The command and error matrix is in test_cli.py."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from second_opinion.cli import app
from tests.conftest import CONSENT, NO_CIRCUMSTANCES

CLOCK = "2026-11-23T10:00:00+01:00"  # 09:00 UTC


@pytest.fixture
def cli(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SECOND_OPINION_CLOCK", CLOCK)
    monkeypatch.setenv("SECOND_OPINION_ACTOR", "desk-cli")
    monkeypatch.delenv("SECOND_OPINION_DB", raising=False)
    monkeypatch.delenv("SECOND_OPINION_ROLE", raising=False)
    db = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    runner = CliRunner()

    def run(*args: str, code: int = 0):
        result = runner.invoke(app, [*args, "--db", db] if args[0] not in ("diagram",) else list(args))
        assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.output
        return result

    run.db = db
    run.path = tmp_path / "cli.sqlite3"
    run("init")
    return run


def opened(cli, *extra: str) -> str:
    return cli("open", "--patient-ref", "PX-1", *extra).stdout.strip()


def as_json(result):
    return json.loads(result.stdout)


def history(cli, case_id: str) -> list[dict]:
    return as_json(cli("history", case_id, "--json"))


def test_fire_along_the_main_path_with_every_option(cli):
    case_id = opened(cli, "--occurred-at", "2026-11-23T08:00:00+01:00", "--provider", "umc-utrecht")
    out = cli("fire", case_id, "refer", "--actor", "gp-12", "--role", "gp", "--on-behalf-of", "pat-ref-9")
    assert "requested -> referred (version 2)" in out.stdout
    cli("fire", case_id, "record_circumstances", "--data", json.dumps(NO_CIRCUMSTANCES))
    cli("fire", case_id, "give_consent", "--role", "patient", "--data", json.dumps(CONSENT))
    cli("fire", case_id, "receive_item", "--role", "second_opinion_doctor", "--data", '{"item": "letter"}')
    dossier = ["fire", case_id, "receive_dossier", "--role", "second_opinion_doctor", "--data", '{"items": 4}',
               "--expect-version", "5", "--occurred-at", "2026-11-23T09:30:00+01:00", "--idempotency-key", "d-1",
               "--json"]  # fmt: skip
    receipt = as_json(cli(*dossier))
    assert (receipt["to_state"], receipt["version"], receipt["occurred_at"]) == (
        "dossier_received", 6, "2026-11-23T08:30:00.000000Z")  # fmt: skip
    replay = as_json(cli(*dossier))
    assert replay["replayed"] is True and replay["version"] == 6
    cli("fire", case_id, "record_consultation", "--role", "second_opinion_doctor")  # UMC Utrecht sees every patient
    cli("fire", case_id, "review", "--role", "second_opinion_doctor")
    cli("fire", case_id, "return_advice", "--role", "second_opinion_doctor", "--data", '{"outcome": "differs"}')
    cli("fire", case_id, "hand_back")
    records = history(cli, case_id)
    assert [r["event"] for r in records] == [
        "open", "refer", "record_circumstances", "give_consent", "receive_item", "receive_dossier",
        "record_consultation", "review", "return_advice", "hand_back"]  # fmt: skip
    assert (records[1]["actor_id"], records[1]["actor_role"], records[1]["on_behalf_of"]) == (
        "gp-12", "gp", "pat-ref-9")  # fmt: skip
    assert records[5]["payload"] == {"items": 4} and records[5]["idempotency_key"] == "d-1"
    assert records[0]["actor_id"] == "desk-cli"
    shown = as_json(cli("show", case_id, "--json"))
    assert shown["state"] == "back_to_first_provider"
    assert shown["facts"]["dossier_complete_at"] == "2026-11-23T08:30:00.000000Z"


def test_documented_independent_hash_check_accepts_an_export(cli, tmp_path):
    """docs/cli.md promises an export can be checked with json + hashlib alone; run its script."""
    case_id = opened(cli)
    cli("fire", case_id, "refer", "--role", "gp", "--data", '{"brief": "één"}')
    cli("fire", case_id, "hand_back", code=1)
    doc = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
    script = doc.split("```python\n", 1)[1].split("```", 1)[0]
    exported = cli("audit", "export").stdout
    namespace = {"sys": type("S", (), {"stdin": io.StringIO(exported)})}
    exec(compile(script.replace("import hashlib, json, sys", "import hashlib, json"), "cli.md", "exec"), namespace)
    assert namespace["heads"][case_id] == json.loads(exported.splitlines()[-1])["hash"]


def test_long_json_is_never_wrapped(cli):
    """A long error message and a case with many facts still come out as one valid JSON document."""
    case_id = opened(cli)
    cli("fire", case_id, "record_circumstances", "--data", json.dumps(NO_CIRCUMSTANCES))
    cli("fire", case_id, "give_consent", "--role", "patient", "--data", json.dumps({**CONSENT, "scope": "x" * 300}))
    error = as_json(cli("fire", case_id, "fly", "--json", code=1))["error"]["message"]
    assert len(error) > 160 and "\n" not in error
    assert as_json(cli("show", case_id, "--json"))["facts"]["consent"]["scope"] == "x" * 300
