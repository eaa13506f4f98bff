"""``second-opinion next CASE --as ROLE`` and ``fire --check``: what they print, their exit codes,
bad input as one error line, and a check that writes nothing (history, version, export)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from second_opinion.cli import app
from tests.conftest import CONSENT

CLOCK = "2026-11-23T10:00:00+01:00"


@pytest.fixture
def cli(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SECOND_OPINION_CLOCK", CLOCK)
    monkeypatch.setenv("SECOND_OPINION_ACTOR", "desk-cli")
    monkeypatch.delenv("SECOND_OPINION_DB", raising=False)
    monkeypatch.delenv("SECOND_OPINION_ROLE", raising=False)
    db = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    runner = CliRunner()

    def run(*args: str, code: int = 0):
        result = runner.invoke(app, [*args, "--db", db])
        assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.output
        return result

    run("init")
    return run


def referred(cli) -> str:
    case_id = cli("open", "--patient-ref", "PX-0003").stdout.strip()
    cli("fire", case_id, "choose_provider", "--data", '{"provider": "umc-utrecht"}')
    cli("fire", case_id, "give_consent", "--role", "patient", "--data", json.dumps(CONSENT))
    circumstances = {"treated_abroad": False, "insured_abroad": True, "has_pathology": True, "has_imaging": False}
    cli("fire", case_id, "record_circumstances", "--data", json.dumps(circumstances))
    cli("fire", case_id, "refer", "--role", "gp")
    return case_id


def test_next_shows_what_a_role_may_do_and_what_is_missing(cli):
    case_id = referred(cli)
    text = cli("next", case_id, "--as", "second_opinion_doctor").stdout
    assert f"{case_id}: referred (version 5), as second_opinion_doctor" in text
    assert "missing: letter, pathology" in text
    assert "guard checklist_complete: dossier incomplete, still missing: letter, pathology" in text
    assert "then guard costs_team_if_insured_abroad" in text
    assert "receive_item -> referred; item: one of letter, pathology" in text
    answer = json.loads(cli("next", case_id, "--role", "coordinator", "--json").stdout)
    assert answer["role"] == "coordinator" and answer["checklist"]["missing"] == ["letter", "pathology"]
    by_event = {e["event"]: e for e in answer["events"]}
    assert by_event["assign"]["status"] == "allowed" and by_event["assign"]["data"][0]["kind"] == "id"
    assert by_event["receive_dossier"]["guard"] == "checklist_complete"
    assert "review" in answer["not_permitted"] and "hand_back" in answer["not_in_this_state"]
    assert len(json.loads(cli("history", case_id, "--json").stdout)) == 5  # asking recorded nothing


def test_fire_check_prints_the_decision_and_writes_nothing(cli):
    case_id = referred(cli)
    before = (cli("show", case_id, "--json").stdout, cli("audit", "export").stdout)
    refused = cli("fire", case_id, "receive_dossier", "--role", "second_opinion_doctor", "--check", code=1)
    assert refused.stdout.startswith("check: refused: cannot receive_dossier") and "nothing written" in refused.stdout
    verdict = json.loads(cli("fire", case_id, "receive_item", "--role", "second_opinion_doctor", "--data",
                             '{"item": "letter"}', "--check", "--json").stdout)  # fmt: skip
    assert verdict == {"case_id": case_id, "event": "receive_item", "accepted": True, "from_state": "referred",
                       "to_state": "referred", "version": 5, "refusal": None, "replayed": False, "written": False}
    accepted = cli("fire", case_id, "assign", "--data", '{"assignee": "desk-2"}', "--check", "--idempotency-key", "a")
    assert accepted.stdout.strip() == (f"check: accepted: {case_id}: referred -> referred (version 5 -> 6); "
                                       "nothing written")  # fmt: skip
    denied = json.loads(cli("fire", case_id, "review", "--check", "--json", code=1).stdout)
    assert denied["refusal"]["type"] == "PermissionDenied"
    assert (cli("show", case_id, "--json").stdout, cli("audit", "export").stdout) == before
    # the key of the check was not taken
    cli("fire", case_id, "record_circumstances", "--data", '{"has_imaging": false}', "--idempotency-key", "a")


def test_bad_input_is_one_error_line(cli):
    case_id = referred(cli)
    bad = cli("next", case_id, "--as", "janitor", code=1)
    assert bad.stderr.startswith("error: invalid role: 'janitor' is not a role") and bad.stderr.count("\n") == 1
    unknown = cli("next", "so-aaaaaaaaaaaaaaaa", code=1)
    assert unknown.stderr.strip() == "error: unknown case 'so-aaaaaaaaaaaaaaaa'"
    data = cli("fire", case_id, "assign", "--data", "[1]", "--check", code=1)
    assert data.stderr.startswith("error: invalid --data")
    bsn = cli("fire", case_id, "assign", "--data", '{"assignee": "111222333"}', "--check", "--json", code=1)
    assert "111222333" not in bsn.stdout + bsn.stderr
