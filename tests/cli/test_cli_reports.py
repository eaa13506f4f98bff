"""``second-opinion report`` as a script sees it: the figures as a table, JSON, CSV or one SVG
chart on stdout; every user error one ``error:`` line and exit 1, nothing written."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from second_opinion import connect
from tests.cli.test_cli import Cli, snapshot
from tests.conftest import T0, migrated_sqlite
from tests.report_data import AT_END, build
from workflow import FixedClock

PERIOD = ("--from", "2026-11-01", "--to", "2026-12-31")
NOW = {"SECOND_OPINION_CLOCK": AT_END.isoformat()}


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    cli = Cli(tmp_path / "cli.sqlite3")
    migrated_sqlite(cli.path)
    clock = FixedClock(T0)
    with connect(cli.db, clock=clock) as service:
        build(service, clock)
    return cli


def test_json_holds_the_hand_computed_figures(cli: Cli) -> None:
    data = json.loads(cli.run("report", *PERIOD, "--json", env=NOW).stdout)
    royal = next(r for r in data["routes"] if r["route"] == "royal-doctors")
    assert royal["lead_time"]["working_days"] == {"n": 3, "median": 9.0, "p90": 17.8}
    assert royal["dossier_to_report"][0]["within_term"] == 2
    assert data["organisation"] is None  # the operator's command: every organisation


def test_route_and_organisation_filters(cli: Cli) -> None:
    data = json.loads(cli.run("report", *PERIOD, "--route", "royal-doctors", "--org", "local", "--json",
                              env=NOW).stdout)  # fmt: skip
    assert [r["route"] for r in data["routes"]] == ["royal-doctors"] and data["organisation"] == "local"
    other = json.loads(cli.run("report", *PERIOD, "--org", "org-b", "--json", env=NOW).stdout)
    assert all(sum(r["cases_per_state"].values()) == 0 for r in other["routes"])


def test_default_period_is_twelve_months_to_today(cli: Cli) -> None:
    data = json.loads(cli.run("report", "--json", env=NOW).stdout)
    assert (data["from"], data["to"]) == ("2026-01-01", "2026-12-21")


def test_table_csv_and_svg(cli: Cli) -> None:
    table = cli.run("report", *PERIOD, env=NOW).stdout
    assert "royal-doctors" in table and "11.0 / 24.6" in table and "66.7% (2/3)" in table
    rows = list(csv.reader(io.StringIO(cli.run("report", *PERIOD, "--csv", env=NOW).stdout)))
    assert rows[0] == ["figure", "route", "key", "value"]
    assert ["deadlines", "royal-doctors", "share_on_time", "0.6667"] in rows
    svg = cli.run("report", *PERIOD, "--svg", "breaches-per-month", env=NOW).stdout
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert "Breaches per month" in svg and "2026-12" in svg


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--from", "2026-02-30"), "error: invalid from: 2026-02-30 is not a date in the calendar"),
        (("--to", "31-12-2026"), "error: invalid to: is not a date written YYYY-MM-DD"),
        (("--from", "2026-12-01", "--to", "2026-11-01"), "error: invalid from: 2026-12-01 is after to 2026-11-01"),
        (("--from", "2020-01-01", "--to", "2026-01-01"), "error: invalid from: the period has 2193 days; at most 1830"),
        (("--route", "nowhere"), "error: invalid route"),
        (("--svg", "pie"), "error: invalid --svg: not one of the charts: lead-time"),
        (("--csv", "--json"), "error: invalid output: give at most one of --json, --csv and --svg"),
    ],
)
def test_bad_parameters_one_line_exit_1_nothing_written(cli: Cli, args: tuple[str, ...], message: str) -> None:
    before = snapshot(cli.path)
    result = cli.run("report", *args, code=1, env=NOW)
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1
    assert result.stdout == "" or ("--json" in args and json.loads(result.stdout)["error"]["type"] == "ValidationError")
    assert snapshot(cli.path) == before
