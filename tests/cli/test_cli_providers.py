"""The CLI and providers (issue 15): ``open --provider``, ``providers`` with the operator's contact
values, a bad contacts file refused in one line, and ``show`` rendering the case's provider, its
coverage decision's outcome and the self-paying mark."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_cli import Cli, snapshot
from tests.conftest import CONSENT, COVERAGE_FACTS, NO_CIRCUMSTANCES, migrated_sqlite
from workflow.cases.definitions import DEFINITION
from workflow.cases.providers import PROVIDERS

CONTACTS = "SECOND_OPINION_PROVIDER_CONTACTS"
DOMESTIC = "umc-utrecht, jeroen-bosch, generic-hospital"


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    cli = Cli(tmp_path / "cli.sqlite3")
    migrated_sqlite(cli.path)
    return cli


def counts(cli: Cli) -> tuple[int, int]:
    """Cases and audit records, read from the file itself."""
    with closing(sqlite3.connect(cli.path)) as conn:
        return (conn.execute("SELECT count(*) FROM cases").fetchone()[0],
                conn.execute("SELECT count(*) FROM audit_records").fetchone()[0])  # fmt: skip


def listed(cli: Cli, *args: str, env: dict[str, str] | None = None) -> Any:
    """``providers --json``: a command without a database."""
    return json.loads(cli.run("providers", *args, "--json", db=False, env=env).stdout)


def contacts_file(tmp_path: Path, content: str | bytes) -> dict[str, str]:
    path = tmp_path / "contacts.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return {CONTACTS: str(path)}


# --- opening with a provider ----------------------------------------------------------------------


def test_open_with_a_provider_records_it_and_show_names_it(cli: Cli) -> None:
    case_id = cli.open("--provider", "jeroen-bosch")
    shown = cli.json("show", case_id)
    assert shown["provider"] == {"id": "jeroen-bosch", "version": 1, "name": "Jeroen Bosch Ziekenhuis"}
    assert {k: shown["facts"]["provider"][k] for k in ("id", "version", "by")} == {
        "id": "jeroen-bosch", "version": 1, "by": "coordinator"}  # fmt: skip
    assert (shown["coverage_outcome"], shown["self_paying"]) == (None, False)
    assert cli.json("history", case_id)[0]["payload"]["provider"] == {"id": "jeroen-bosch", "version": 1}
    table = cli.run("show", case_id).stdout
    assert "Jeroen Bosch Ziekenhuis (jeroen-bosch, version 1), chosen by coordinator (2026-11-23 10:00)" in table
    assert "fact: provider" not in table, "shown once, as the provider row"
    # the provider's checklist is the case's: its one item completes the dossier
    for args in (["record_circumstances", "--data", json.dumps(NO_CIRCUMSTANCES)],
                 ["give_consent", "--role", "patient", "--data", json.dumps(CONSENT)], ["refer", "--role", "gp"],
                 ["receive_item", "--role", "second_opinion_doctor", "--data", '{"item": "medical_records"}'],
                 ["receive_dossier", "--role", "second_opinion_doctor"]):  # fmt: skip
        cli.run("fire", case_id, *args)
    assert cli.json("show", case_id)["state"] == "dossier_received"


def test_without_a_provider_show_says_none_is_chosen_until_one_is(cli: Cli) -> None:
    case_id = cli.open()
    shown = cli.json("show", case_id)
    assert shown["provider"] is None and "provider" not in shown["facts"]
    assert "not chosen yet (choose_provider)" in cli.run("show", case_id).stdout
    cli.run("fire", case_id, "choose_provider", "--role", "patient", "--data", '{"provider": "umc-utrecht"}')
    assert cli.json("show", case_id)["provider"] == {"id": "umc-utrecht", "version": 1, "name": "UMC Utrecht"}
    assert "UMC Utrecht (umc-utrecht, version 1), chosen by patient" in cli.run("show", case_id).stdout


def test_a_route_one_provider_serves_implies_it(cli: Cli) -> None:
    royal = cli.open("--route", "royal-doctors")
    assert cli.json("show", royal)["provider"] == {"id": "royal-doctors", "version": 1, "name": "Royal Doctors"}
    online = cli.open("--route", "online", "--provider", "2e-arts-online")
    assert cli.json("show", online)["provider"]["id"] == "2e-arts-online"


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--provider", "moon-clinic"], f"must be a provider serving the domestic route: {DOMESTIC}"),
     (["--provider", "royal-doctors"], f"must be a provider serving the domestic route: {DOMESTIC}"),
     (["--route", "online", "--provider", "umc-utrecht"],
      "must be a provider serving the online route: 2e-arts-online"),
     (["--provider", "x" * 10_000], f"must be a provider serving the domestic route: {DOMESTIC}")],
    ids=["unknown", "another-route's", "not-serving-online", "huge"],
)  # fmt: skip
def test_opening_with_a_bad_provider_is_one_line_and_writes_nothing(cli: Cli, args: list[str], message: str) -> None:
    cli.open()
    before, tables = counts(cli), snapshot(cli.path)
    for as_json in (False, True):
        result = cli.run("open", "--patient-ref", "PX-0002", *args, *(["--json"] if as_json else []), code=1)
        assert result.stderr == f"error: invalid provider: {message}\n"
        if as_json:
            assert json.loads(result.stdout) == {"error": {"type": "ValidationError",
                                                           "message": f"invalid provider: {message}"}}  # fmt: skip
    assert counts(cli) == before == (1, 1) and snapshot(cli.path) == tables
    assert "moon-clinic" not in result.stderr and "xxxx" not in result.stderr, "what was typed is not repeated"


# --- listing providers ----------------------------------------------------------------------------


def newest() -> dict[str, int]:
    found: dict[str, int] = {}
    for p in PROVIDERS:
        found[p.id] = max(found.get(p.id, 0), p.version)
    return found


def test_providers_json_lists_the_newest_version_of_each_with_its_rules(cli: Cli) -> None:
    found = listed(cli)
    assert {p["id"]: p["version"] for p in found} == newest() and [p["id"] for p in found] == list(newest())
    umc = found[0]
    assert {k: umc[k] for k in ("id", "name", "routes", "consultation", "costs_team_first")} == {
        "id": "umc-utrecht", "name": "UMC Utrecht", "routes": ["domestic"], "consultation": "always",
        "costs_team_first": True}  # fmt: skip
    assert [(i["item"], i["required_when"], i["waivable"]) for i in umc["checklist"]] == [
        ("letter", None, True), ("pathology", "has_pathology", True), ("imaging_results", "has_imaging", True),
        ("imaging", "has_imaging", True), ("mrsa", "treated_abroad", True)]  # fmt: skip
    assert [(c["field"], c["value"], c["value_from"]) for c in umc["contacts"]] == [
        ("costs_team_email", "TeamZK@umcutrecht.nl", "seed"), ("costs_team_phone", "(+31) (0)88-75 692 29", "seed"),
        ("appointments_phone", None, None)]  # fmt: skip
    online = next(p for p in found if p["id"] == "2e-arts-online")
    assert (online["consultation"], online["checklist"][0]["waivable"]) == ("never", False)


def test_providers_by_route_and_as_text(cli: Cli) -> None:
    for route in DEFINITION.route_names:
        ids = [p["id"] for p in listed(cli, "--route", route)]
        assert ids == list(DEFINITION.serving(route)) and ids
    assert [p["id"] for p in listed(cli, "--route", "royal-doctors")] == ["royal-doctors"]
    text = cli.run("providers", db=False).stdout
    for expected in ("UMC Utrecht (umc-utrecht, version 1)", "Royal Doctors (royal-doctors, version 1)",
                     "item: mrsa", "when treated_abroad", "always, not waivable", "when the doctor decides",
                     "Team Zorgkosten, e-mail: TeamZK@umcutrecht.nl (seed)", "- (none known)"):  # fmt: skip
        assert expected in text, expected
    bad = cli.run("providers", "--route", "moon", code=1, db=False)
    assert bad.stderr == "error: invalid route: 'moon' is not a route; known: domestic, royal-doctors, online\n"


def test_the_operators_contacts_fill_in_and_override_the_seeds(cli: Cli, tmp_path: Path) -> None:
    values = {"umc-utrecht": {"costs_team_phone": "088 000 00 00", "appointments_phone": "[bold]via the clinic[/]"},
              "2e-arts-online": {"url": "https://example.org/vraag"}}  # fmt: skip
    env = contacts_file(tmp_path, json.dumps(values))
    found = listed(cli, env=env)
    umc, online = found[0], found[-1]
    assert [(c["field"], c["value"], c["value_from"]) for c in umc["contacts"]] == [
        ("costs_team_email", "TeamZK@umcutrecht.nl", "seed"), ("costs_team_phone", "088 000 00 00", "operator"),
        ("appointments_phone", "[bold]via the clinic[/]", "operator")]  # fmt: skip
    assert online["contacts"] == [{"field": "url", "description": "Where the insured put their question",
                                   "value": "https://example.org/vraag", "value_from": "operator"}]  # fmt: skip
    text = cli.run("providers", "--route", "domestic", db=False, env=env).stdout
    assert "088 000 00 00 (operator)" in text and "(+31) (0)88-75 692 29" not in text
    assert "[bold]via the clinic[/] (operator)" in text, "printed as typed, not read as markup"
    assert "2e arts online" not in text


# --- a bad contacts file --------------------------------------------------------------------------

BAD_FILES = [
    pytest.param(b"{not json", "is not JSON", id="not-json"),
    pytest.param(b"\xff\xfe{}", "is not UTF-8 text", id="not-utf8"),
    pytest.param(b'["umc-utrecht"]', "must hold a JSON object", id="a-list"),
    pytest.param(b'{"umcu": {}}', "'umcu' is not a provider; known: umc-utrecht, jeroen-bosch", id="unknown-provider"),
    pytest.param(b'{"umc-utrecht": {"fax": "1"}}',
                 "umc-utrecht: 'fax' is not a contact field; known: appointments_phone", id="unknown-field"),
    pytest.param(b'{"umc-utrecht": ["088"]}', "umc-utrecht: give an object of contact fields", id="not-an-object"),
    pytest.param(b'{"umc-utrecht": {"appointments_phone": 88}}', "umc-utrecht.appointments_phone: give printable text",
                 id="a-number"),
    pytest.param(b'{"umc-utrecht": {"appointments_phone": ""}}', "give printable text of 1 to 200", id="empty"),
    pytest.param(b'{"umc-utrecht": {"appointments_phone": "a\\nb"}}', "give printable text", id="a-line-break"),
    pytest.param(json.dumps({"umc-utrecht": {"appointments_phone": "9" * 201}}).encode(), "1 to 200 characters",
                 id="too-long"),
    pytest.param(b'{"umc-utrecht": {}, "umc-utrecht": {}}', "is not JSON ('umc-utrecht' given twice)", id="twice"),
    pytest.param(b'{"x": "' + b"a" * 70_000 + b'"}', "is over 64 KiB", id="over-64-kib"),
    pytest.param(b"[" * 100_000, "over 64 KiB", id="deep-and-big"),
    pytest.param(b"[" * 60_000, "nests too deeply to be read", id="deep"),
]  # fmt: skip


@pytest.mark.parametrize(("content", "fragment"), BAD_FILES)
@pytest.mark.parametrize("command", [["providers"], ["providers", "--json"],
                                     ["serve", "--allow-clock-override", "--db", "memory://"]],
                         ids=["providers", "providers-json", "serve"])  # fmt: skip
def test_a_bad_contacts_file_stops_the_command_with_one_line(
    cli: Cli, tmp_path: Path, content: bytes, fragment: str, command: list[str]
) -> None:
    result = cli.run(*command, code=1, db=False, env=contacts_file(tmp_path, content))
    where = f"error: provider contacts file {str(tmp_path / 'contacts.json')!r} ({CONTACTS}): "
    assert result.stderr.startswith(where) and result.stderr.count("\n") == 1, result.stderr
    assert fragment in result.stderr
    assert "Traceback" not in result.output and "second-opinion API on" not in result.output, "never served"
    if "--json" in command:
        assert json.loads(result.stdout)["error"]["type"] == "ConfigurationError"


def test_a_contacts_file_that_cannot_be_read_is_named(cli: Cli, tmp_path: Path) -> None:
    for path, problem in ((tmp_path / "missing.json", "No such file or directory"), (tmp_path, "Is a directory")):
        result = cli.run("providers", code=1, db=False, env={CONTACTS: str(path)})
        where = f"provider contacts file {str(path)!r} ({CONTACTS})"
        assert result.stderr == f"error: {where}: cannot be read ({problem})\n"


def test_commands_that_show_no_contacts_do_not_read_the_file(cli: Cli, tmp_path: Path) -> None:
    env = contacts_file(tmp_path, b"{not json")
    case_id = cli.run("open", "--patient-ref", "PX-0001", env=env).stdout.strip()
    assert cli.json("show", case_id)["id"] == case_id


# --- show: coverage outcome and self-paying ------------------------------------------------------


def decide(cli: Cli, case_id: str, policy: str, **facts: object) -> None:
    data = {"policy": policy, "facts": {**COVERAGE_FACTS, **facts}}
    cli.run("fire", case_id, "decide_coverage", "--role", "care_consultant", "--data", json.dumps(data))


def test_show_renders_a_partly_covered_decision_and_the_self_paying_mark(cli: Cli) -> None:
    case_id = cli.open("--provider", "generic-hospital")
    decide(cli, case_id, "generic-basic", referral_by="none")  # only the referral fails: partly (001)
    shown = cli.json("show", case_id)
    assert (shown["coverage_outcome"], shown["facts"]["coverage"]["outcome"], shown["self_paying"]) == (
        "partly", "partly", False)  # fmt: skip
    assert "self-paying" not in cli.run("show", case_id).stdout
    cli.run("fire", case_id, "proceed_self_paying", "--role", "patient")
    shown = cli.json("show", case_id)
    assert (shown["state"], shown["self_paying"], shown["coverage_outcome"]) == ("referred", True, "partly")
    assert {k: shown["facts"]["self_paying"][k] for k in ("by", "decision", "outcome")} == {
        "by": "patient", "decision": 1, "outcome": "partly"}  # fmt: skip
    table = cli.run("show", case_id).stdout
    assert "#1 partly covered under generic-basic (domestic)" in table
    assert "FAILS referred_by_doctor" in table
    assert "yes: the patient pays what decision #1 (partly covered) does not, by patient (2026-11-23 10:00)" in table
    assert "A hospital in the Netherlands (generic-hospital, version 1)" in table


@pytest.mark.parametrize(("facts", "outcome", "text"), [
    ({}, "covered", "#1 covered under pno-basic"),
    ({"same_specialty": False}, "not_covered", "#1 not covered under pno-basic"),
    ({"referral_by": "none"}, "not_covered", "#1 not covered under pno-basic"),  # pno-basic pays no self-arranged one
])  # fmt: skip
def test_show_names_each_outcome(cli: Cli, facts: dict[str, object], outcome: str, text: str) -> None:
    case_id = cli.open("--provider", "umc-utrecht")
    decide(cli, case_id, "pno-basic", **facts)
    assert cli.json("show", case_id)["coverage_outcome"] == outcome
    assert text in cli.run("show", case_id).stdout
    (case,) = cli.json("cases")
    assert (case["coverage_outcome"], case["provider"]["id"]) == (outcome, "umc-utrecht")


def test_coverage_command_says_partly_covered(cli: Cli) -> None:
    facts = json.dumps({**COVERAGE_FACTS, "route": "domestic", "referral_by": "none"})
    decided = json.loads(cli.run("coverage", "--facts", facts, "--policy", "generic-basic", "--json", db=False).stdout)
    assert (decided["outcome"], decided["covered"]) == ("partly", False)
    assert "PARTLY COVERED" in cli.run("coverage", "--facts", facts, "--policy", "generic-basic", db=False).stdout
