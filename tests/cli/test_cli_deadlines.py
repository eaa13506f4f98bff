"""The ``calendar``, ``deadlines``, ``worker`` and ``outbox`` commands as a script sees them:
only the answer on stdout, every user error one ``error:`` line and exit 1, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_cli import ENV, Cli, snapshot
from tests.conftest import migrated_sqlite


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    cli = Cli(tmp_path / "cli.sqlite3")
    migrated_sqlite(cli.path)  # the migrated template, copied (init itself is tested in test_cli.py)
    return cli


def calc(cli: Cli, *args: str, code: int = 0):  # type: ignore[no-untyped-def]
    return cli.run("calendar", *args, code=code, db=False)


def test_add_working_days_prints_only_the_date(cli: Cli) -> None:
    result = calc(cli, "add-working-days", "2026-04-24", "18")
    assert result.stdout == "2026-05-27\n" and result.stderr == ""
    assert calc(cli, "add-working-days", "2026-04-24", "18", "--calendar", "nl-holidays").stdout == "2026-05-22\n"


def test_explain_lists_every_skipped_day_with_its_reason(cli: Cli) -> None:
    lines = calc(cli, "add-working-days", "2026-04-24", "18", "--explain").stdout.splitlines()
    assert lines[0] == "2026-05-27" and lines[1] == "day 0: vrijdag 2026-04-24 (not counted)"
    koningsdag = "skipped maandag 2026-04-27: holiday, Koningsdag (Algemene termijnenwet (Stb. 1964, 314), art. 3 lid 1)"  # noqa: E501
    assert koningsdag in lines
    decree = "skipped vrijdag 2026-05-15: decree, gelijkgestelde dag (Besluit gelijkstelling"
    assert any(line.startswith(decree) for line in lines)
    assert sum("weekend" in line for line in lines) == 10
    assert lines[-1] == "working day 18: woensdag 2026-05-27 (nl-atw)"
    data = json.loads(calc(cli, "add-working-days", "2026-04-24", "18", "--json").stdout)
    assert data["end"] == "2026-05-27" and len(data["skipped"]) == 15


def test_working_days_counts(cli: Cli) -> None:
    assert calc(cli, "working-days", "2026-04-24", "2026-05-27").stdout == "18\n"
    # 25 Dec and 1 Jan are feestdagen, 26-27 Dec and 2-3 Jan weekends: 28, 29, 30, 31 Dec and 4 Jan count
    assert calc(cli, "working-days", "2026-12-24", "2027-01-04").stdout == "5\n"


def test_unknown_decree_year_warns_on_stderr(cli: Cli) -> None:
    result = calc(cli, "add-working-days", "2030-04-24", "3")
    assert result.stdout == "2030-04-29\n"
    assert result.stderr.startswith("warning: no Besluit gelijkstelling for 2030 is known")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add-working-days", "2026-02-30", "3"), "invalid START: '2026-02-30' is not a calendar date"),
        (("add-working-days", "24-04-2026", "3"), "invalid START: '24-04-2026' is not a date in the form YYYY-MM-DD"),
        (("add-working-days", "2026-04-24", "abc"), "invalid working days: 'abc' must be a whole number"),
        (("add-working-days", "2026-04-24", "2001"), "invalid working days: 2001 must be a whole number"),
        (("add-working-days", "1999-04-24", "3"), "outside the supported years"),
        (("add-working-days", "2026-04-24", "3", "--calendar", "nl-bank"), "'nl-bank' is not a calendar"),
        (("working-days", "2026-05-01", "2026-04-01"), "2026-04-01 is before 2026-05-01"),
        (("add-working-days", "2026-04-24", "3", "--closures", "x.json"), "--closures needs --organisation"),
    ],
)
def test_bad_input_is_one_clear_error(cli: Cli, args: tuple[str, ...], message: str) -> None:
    result = calc(cli, *args, code=1)
    assert result.stdout == "" and result.stderr.count("\n") == 1 and message in result.stderr


def test_closures_file(cli: Cli, tmp_path: Path) -> None:
    good = tmp_path / "closures.json"
    good.write_text(json.dumps([{"organisation": "umcu", "date": "2026-12-31", "reason": "year-end closure"}]))
    args = ("add-working-days", "2026-12-30", "1", "--organisation", "umcu", "--closures", str(good))
    assert calc(cli, *args).stdout == "2027-01-04\n"
    assert "closure, year-end closure" in calc(cli, *args, "--explain").stdout
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"organisation": "umcu", "date": "31-12-2026"}]))
    result = calc(cli, "add-working-days", "2026-12-30", "1", "--organisation", "umcu", "--closures", str(bad), code=1)
    assert "entry 1 needs organisation, date (YYYY-MM-DD) and reason" in result.stderr


def _referred_case(cli: Cli) -> str:
    case_id = cli.open()
    cli.run("fire", case_id, "record_circumstances", "--data",
            '{"treated_abroad": false, "insured_abroad": false, "has_pathology": false, "has_imaging": false}')
    cli.run("fire", case_id, "give_consent", "--role", "patient", "--data", '{"basis": "written", "scope": "all"}')
    cli.run("fire", case_id, "refer", "--role", "gp")  # fmt: skip
    return case_id


def test_deadlines_worker_and_outbox(cli: Cli) -> None:
    case_id = _referred_case(cli)
    (listed,) = cli.json("deadlines")
    assert (listed["id"], listed["state"], listed["due_at"]) == (
        f"{case_id}/domestic-dossier", "running", "2026-12-07T22:59:59.000000Z")  # fmt: skip
    assert cli.json("deadlines", "--overdue") == []
    assert len(cli.json("deadlines", "--due-before", "2026-12-08")) == 1
    assert cli.json("deadlines", "--due-before", "2026-12-07") == []
    later = {**ENV, "SECOND_OPINION_CLOCK": "2026-12-08T09:00:00+01:00"}
    assert len(json.loads(cli.run("deadlines", "--overdue", "--json", env=later).stdout)) == 1
    swept = cli.run("worker", "--once", "--allow-clock-override", env=later).stdout
    assert swept.startswith("swept 1 cases: 1 reminders, 1 breaches; delivered 2, failed 0, dead 0")
    assert cli.run("worker", "--once", "--allow-clock-override", env=later).stdout.startswith("swept 0 cases")
    outbox = cli.json("outbox")
    assert [(n["kind"], n["status"], n["attempts"]) for n in outbox] == [
        ("deadline_reminder", "delivered", 1), ("deadline_breached", "delivered", 1)]  # fmt: skip
    assert cli.json("outbox", "--status", "dead") == []
    shown = cli.json("show", case_id)
    assert shown["deadlines"][0]["state"] == "breached"
    assert "deadline: domestic-dossier" in cli.run("show", case_id).stdout
    assert cli.run("deadlines", "recompute").stdout.strip() == "no deadline changed"


def test_deadline_command_errors_write_nothing(cli: Cli) -> None:
    _referred_case(cli)
    before = snapshot(cli.path)
    for args, message in (
        (("deadlines", "--due-before", "tomorrow"), "invalid --due-before"),
        (("outbox", "--status", "lost"), "'lost' is not one of pending, delivered, dead"),
        (("outbox", "retry", "99"), "99 is not a dead-lettered notification"),
    ):
        result = cli.run(*args, code=1)
        assert message in result.stderr and result.stderr.count("\n") == 1
    webhook = {**ENV, "SECOND_OPINION_WEBHOOK_URL": "ftp://example"}
    assert "is not an http(s) URL" in cli.run("worker", "--once", "--allow-clock-override", code=1, env=webhook).stderr
    assert snapshot(cli.path) == before
