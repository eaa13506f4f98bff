"""The CLI's work lists (issue 16): ``cases`` with filters, order and pages (the cursor in the
JSON), ``show`` by patient reference, ``deadlines --overdue`` keeping breached deadlines with
their working days late, ``--due-within``; bad values one error line, exit 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_cli import ENV, Cli
from tests.cli.test_cli_deadlines import _referred_case
from tests.conftest import migrated_sqlite


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    cli = Cli(tmp_path / "cli.sqlite3")
    migrated_sqlite(cli.path)
    return cli


def test_cases_filters_and_pages_with_a_cursor(cli: Cli) -> None:
    ids = [cli.run("open", "--patient-ref", f"PX-{i:04d}", "--occurred-at", f"2026-11-2{i}T09:00:00+01:00")
           .stdout.strip() for i in range(3)]  # fmt: skip
    assert [c["id"] for c in cli.json("cases")] == ids  # no page asked: every case, a list, as before
    first = cli.json("cases", "--limit", "2")
    assert [c["id"] for c in first["cases"]] == ids[:2] and first["next_cursor"]
    second = cli.json("cases", "--limit", "2", "--cursor", first["next_cursor"])
    assert [c["id"] for c in second["cases"]] == ids[2:] and second["next_cursor"] is None
    assert [c["id"] for c in cli.json("cases", "--patient-ref", "PX-0001")] == [ids[1]]
    assert [c["id"] for c in cli.json("cases", "--sort", "-opened")] == ids[::-1]
    assert cli.json("cases", "--provider", "umc-utrecht") == []
    assert "next page: --cursor " in cli.run("cases", "--limit", "1").stdout


def test_bad_values_are_one_line_and_exit_1(cli: Cli) -> None:
    for args, words in ((["--sort", "name"], "sort"), (["--limit", "500"], "limit"), (["--cursor", "abc"], "cursor"),
                        (["--due-within", "3", "--overdue"], "due_within"), (["--patient-ref", "111222333"], "BSN"),
                        (["--updated-since", "soon"], "--updated-since")):  # fmt: skip
        result = cli.run("cases", *args, code=1)
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1 and words in result.stderr
        assert "111222333" not in result.stderr


def test_show_finds_cases_by_patient_reference(cli: Cli) -> None:
    one = cli.run("open", "--patient-ref", "PX-0003").stdout.strip()
    assert cli.json("show", "PX-0003")["id"] == one
    two = cli.run("open", "--patient-ref", "PX-0003").stdout.strip()
    assert {c["id"] for c in cli.json("show", "PX-0003")} == {one, two}  # several: the list of them
    assert "unknown case 'PX-0404'" in cli.run("show", "PX-0404", code=1).stderr


def test_deadlines_overdue_keeps_breached_and_counts_working_days(cli: Cli) -> None:
    case_id = _referred_case(cli)
    soon = cli.json("deadlines", "--due-within", "10")
    assert [(d["id"], d["working_days_left"]) for d in soon] == [(f"{case_id}/domestic-dossier", 10)]
    assert cli.json("deadlines", "--due-within", "9") == []
    later = {**ENV, "SECOND_OPINION_CLOCK": "2026-12-09T09:00:00+01:00"}
    cli.run("worker", "--once", "--allow-clock-override", env=later)  # the breach is recorded
    (overdue,) = json.loads(cli.run("deadlines", "--overdue", "--json", env=later).stdout)
    assert (overdue["state"], overdue["working_days_late"]) == ("breached", 2)
    (listed,) = json.loads(cli.run("cases", "--overdue", "--json", env=later).stdout)
    assert listed["id"] == case_id and listed["worklist"]["working_days_late"] == 2
    assert "2 late" in cli.run("cases", "--overdue", env=later).stdout


def test_my_cases_are_those_assigned_to_me(cli: Cli) -> None:
    """``cases --mine``: assigned to $SECOND_OPINION_ACTOR (desk-7 in these tests)."""
    mine, theirs = cli.open(), cli.open()
    cli.run("fire", mine, "assign", "--data", '{"assignee": "desk-7"}')
    cli.run("fire", theirs, "assign", "--data", '{"assignee": "desk-8"}')
    assert [c["id"] for c in cli.json("cases", "--mine")] == [mine]
    result = cli.run("cases", "--mine", "--assignee", "desk-8", code=1)
    assert result.stderr.startswith("error: ") and "--mine" in result.stderr
