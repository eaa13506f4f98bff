"""The command line: every command, and every user error as one ``error:`` line on stderr with
exit 1, no traceback, and nothing written but the audit record of a refusal."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from second_opinion.cli import app
from storage.db import head_revision
from storage.sql import drop_append_only_ddl
from tests.conftest import CONSENT, NO_CIRCUMSTANCES
from workflow import DEFINITION
from workflow.docs import mermaid, states_markdown

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


def test_init_is_repeatable(cli):
    assert f"at schema revision {head_revision()}" in cli("init").stdout


def test_open_prints_the_case_id_and_json_receipt(cli):
    case_id = opened(cli)
    assert case_id.startswith("so-") and len(case_id) == 19
    receipt = as_json(cli("open", "--patient-ref", "PX-2", "--route", "royal-doctors", "--json"))
    assert receipt == {
        "case_id": receipt["case_id"], "event": "open", "from_state": None, "to_state": "requested",
        "version": 1, "seq": 1, "occurred_at": "2026-11-23T09:00:00.000000Z",
        "recorded_at": "2026-11-23T09:00:00.000000Z", "replayed": False,
    }  # fmt: skip
    assert as_json(cli("show", receipt["case_id"], "--json"))["route"] == "royal-doctors"


def test_open_idempotency_key_replays(cli):
    first = opened(cli, "--idempotency-key", "intake-1")
    again = cli("open", "--patient-ref", "PX-1", "--idempotency-key", "intake-1", "--json")
    assert as_json(again)["case_id"] == first and as_json(again)["replayed"] is True
    assert len(as_json(cli("cases", "--json"))) == 1


def test_fire_along_the_main_path_with_every_option(cli):
    case_id = opened(cli, "--occurred-at", "2026-11-23T08:00:00+01:00")
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
    for event in ("review", "return_advice"):
        cli("fire", case_id, event, "--role", "second_opinion_doctor")
    cli("fire", case_id, "hand_back")
    records = history(cli, case_id)
    assert [r["event"] for r in records] == [
        "open", "refer", "record_circumstances", "give_consent", "receive_item", "receive_dossier", "review",
        "return_advice", "hand_back"]  # fmt: skip
    assert (records[1]["actor_id"], records[1]["actor_role"], records[1]["on_behalf_of"]) == (
        "gp-12", "gp", "pat-ref-9")  # fmt: skip
    assert records[5]["payload"] == {"items": 4} and records[5]["idempotency_key"] == "d-1"
    assert records[0]["actor_id"] == "desk-cli"
    shown = as_json(cli("show", case_id, "--json"))
    assert shown["state"] == "back_to_first_provider"
    assert shown["facts"]["dossier_complete_at"] == "2026-11-23T08:30:00.000000Z"


def test_show_and_cases(cli):
    case_id = opened(cli)
    other = opened(cli)
    cli("fire", other, "withdraw", "--reason", "changed mind")
    shown = as_json(cli("show", case_id, "--json"))
    assert shown["state"] == "requested" and shown["allowed_events"] == list(DEFINITION.events_from("requested"))
    assert "allowed events" in cli("show", case_id).stdout
    assert [c["id"] for c in as_json(cli("cases", "--state", "withdrawn", "--json"))] == [other]
    table = cli("cases").stdout
    assert case_id in table and other in table and "Europe/Amsterdam" in table
    assert "10:00" in table  # 09:00 UTC shown in Amsterdam


def test_history_shows_refusals(cli):
    case_id = opened(cli)
    cli("fire", case_id, "hand_back", code=1)
    records = history(cli, case_id)
    assert records[-1]["outcome"] == "rejected"
    assert records[-1]["refusal"].startswith("InvalidTransition: cannot hand_back")
    assert "rejected" in cli("history", case_id).stdout


def test_audit_verify_and_detects_tampering(cli):
    case_id = opened(cli)
    cli("fire", case_id, "refer", "--role", "gp")
    assert "1 case(s), 2 record(s), no problems" in cli("audit", "verify").stdout
    assert as_json(cli("audit", "verify", "--case", case_id, "--json"))["ok"] is True
    with sqlite3.connect(cli.path) as conn:
        for ddl in drop_append_only_ddl("sqlite", "audit_records"):
            conn.execute(ddl)
        conn.execute("UPDATE audit_records SET actor_role = 'patient' WHERE seq = 2")
    failed = cli("audit", "verify", code=1)
    assert f"audit verification FAILED: case {case_id}, record 2: contents do not match its hash" in failed.stderr
    report = as_json(cli("audit", "verify", "--json", code=1))
    assert report["ok"] is False and report["findings"][0]["seq"] == 2


def test_audit_export_jsonl_and_csv(cli):
    case_id = opened(cli)
    cli("fire", case_id, "refer", "--role", "gp")
    cli("fire", case_id, "hand_back", code=1)
    lines = cli("audit", "export", "--format", "jsonl").stdout.splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["outcome"] for r in rows] == ["accepted", "accepted", "rejected"]
    assert all(len(r["hash"]) == 64 for r in rows) and rows[1]["prev_hash"] == rows[0]["hash"]
    table = list(csv.DictReader(io.StringIO(cli("audit", "export", "--format", "csv").stdout)))
    assert [r["event"] for r in table] == ["open", "refer", "hand_back"] and table[2]["payload"] == "{}"
    assert cli("audit", "export", "--since", "2026-11-24").stdout == ""
    assert len(cli("audit", "export", "--since", "2026-11-23").stdout.splitlines()) == 3
    assert len(cli("audit", "export", "--since", "2026-11-23T09:00:00Z").stdout.splitlines()) == 3


def test_diagram_is_generated_from_the_table(cli):
    assert cli("diagram").stdout == mermaid()
    assert cli("diagram", "--markdown").stdout == states_markdown()


def test_demo_runs_on_a_fresh_file(tmp_path, monkeypatch):
    monkeypatch.delenv("SECOND_OPINION_CLOCK", raising=False)
    result = CliRunner().invoke(app, ["demo", "--db", f"sqlite:///{tmp_path / 'demo.sqlite3'}"])
    assert result.exit_code == 0, result.output
    assert (
        "GuardRefused: cannot receive_dossier a case in state 'referred': guard 'checklist_complete'" in result.stdout
    )
    assert "audit trail verified: 3 case(s), 21 record(s)" in result.stdout


def test_uninitialised_database_is_named_and_not_created(tmp_path):
    path = tmp_path / "absent.sqlite3"
    result = CliRunner().invoke(app, ["show", "so-x", "--db", f"sqlite:///{path}"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: database sqlite:///") and "run `second-opinion init`" in result.stderr
    assert not path.exists()


BSN = "111222333"


@pytest.mark.parametrize(
    ("args", "message", "refusal_recorded"),
    [
        (["fire", "{case}", "hand_back"], "cannot hand_back a case in state 'requested'; allowed there: record_", True),
        (["fire", "{case}", "fly"], "unknown event 'fly'; known events: record_circumstances", True),
        (["fire", "so-unknown", "refer"], "unknown case 'so-unknown'", False),
        (["fire", "{case}", "withdraw"], "withdraw requires a reason", True),
        (["fire", "{case}", "refer", "--data", "{oops"], "invalid --data: not valid JSON", False),
        (["fire", "{case}", "refer", "--data", "[1]"], "must be a JSON object", False),
        (["fire", "{case}", "refer", "--data", f'{{"note": "{BSN}"}}'], "looks like a BSN", True),
        (["fire", "{case}", "refer", "--occurred-at", "yesterday"], "not an ISO 8601 timestamp", False),
        (["fire", "{case}", "refer", "--occurred-at", "2030-01-01T00:00:00Z"], "is in the future", True),
        (["fire", "{case}", "refer", "--expect-version", "5"], "at version 1, not the expected 5", True),
        (["fire", "{case}", "refer", "--idempotency-key", "open-key"], "was already used", True),
        (["fire", "{case}", "refer", "--role", "nurse"], "'nurse' is not a role", False),
        (["fire", "{case}", "refer", "--role", "auditor"], "role 'auditor' may not refer", True),
        (
            ["fire", "{case}", "refer", "--role", "patient"],
            "on this route the referral is made by: first_provider, gp",
            True,
        ),
        (["open", "--patient-ref", "Jan Jansen"], "invalid patient reference", False),
        (["open", "--patient-ref", BSN], "looks like a BSN", False),
        (["open", "--patient-ref", "PX-9", "--route", "abroad"], "'abroad' is not a route", False),
        (["cases", "--state", "nowhere"], "'nowhere' is not a state", False),
        (["show", "so-unknown"], "unknown case", False),
        (["history", "so-unknown"], "unknown case", False),
        (["audit", "verify", "--case", "so-unknown"], "unknown case", False),
        (["audit", "export", "--since", "2026-13-45"], "not a calendar date", False),
    ],
)
def test_errors_are_one_line_and_write_nothing_else(cli, args, message, refusal_recorded):
    case_id = opened(cli, "--idempotency-key", "open-key")
    before = history(cli, case_id)
    result = cli(*[a.replace("{case}", case_id) for a in args], code=1)
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), result.stderr
    assert message in result.stderr
    after = history(cli, case_id)
    assert BSN not in result.stderr and BSN not in json.dumps(after), "identity is never echoed nor stored"
    assert after[: len(before)] == before
    assert len(after) == len(before) + (1 if refusal_recorded else 0)
    if refusal_recorded:
        assert after[-1]["outcome"] in ("rejected", "denied") and after[-1]["payload"] == {}
    assert len(as_json(cli("cases", "--json"))) == 1


def test_permission_refusal_is_recorded_as_denied(cli):
    case_id = opened(cli)
    cli("fire", case_id, "refer", "--role", "auditor", code=1)
    assert history(cli, case_id)[-1]["outcome"] == "denied"


@pytest.mark.parametrize("url", ["mysql://x/y", "nonsense"])
def test_bad_database_urls(url):
    result = CliRunner().invoke(app, ["cases", "--db", url])
    assert result.exit_code == 1 and result.stderr.startswith("error: invalid database URL")


def test_json_errors_are_json_on_stdout(cli):
    result = cli("show", "so-unknown", "--json", code=1)
    assert as_json(result) == {"error": {"type": "UnknownCase", "message": "unknown case 'so-unknown'"}}
    assert result.stderr == "error: unknown case 'so-unknown'\n"


def test_usage_errors_exit_2(cli):
    result = CliRunner().invoke(app, ["fire", "--db", cli.db])
    assert result.exit_code == 2


def test_documented_independent_hash_check_accepts_an_export(cli, tmp_path):
    """docs/cli.md promises an export can be checked with json + hashlib alone; run its script."""
    case_id = opened(cli)
    cli("fire", case_id, "refer", "--role", "gp", "--data", '{"brief": "één"}')
    cli("fire", case_id, "hand_back", code=1)
    doc = (Path(__file__).resolve().parent.parent / "docs" / "cli.md").read_text()
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
