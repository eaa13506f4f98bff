"""The ``second-opinion`` CLI as a script sees it: every command on a SQLite file, the JSON contract of
docs/cli.md (UTC timestamps with ``Z``), and every user error as exactly one ``error:`` line on stderr,
exit 1, no traceback, ``{"error": ...}`` on stdout under ``--json``, and nothing written to the database
but the audit record of a refusal (checked on the raw tables, not through the code under test). Also: the
examples in docs/cli.md are what its reproduction script really prints."""

from __future__ import annotations

import csv
import io
import json
import re
import shlex
import sqlite3
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from second_opinion.cli import app
from second_opinion.render import AUDIT_COLUMNS
from storage.ddl import drop_append_only_ddl
from storage.migrate import head_revision
from tests.conftest import COVERAGE_FACTS, EXAMPLES, PATHS, migrated_sqlite
from workflow.cases.definitions import DEFINITION
from workflow.docs import mermaid, states_markdown

CLOCK = "2026-11-23T10:00:00+01:00"
NOW = "2026-11-23T09:00:00.000000Z"  # CLOCK in UTC, as JSON shows it
BSN = "111222333"  # passes the eleven-test
ENV = {
    "SECOND_OPINION_CLOCK": CLOCK,
    "SECOND_OPINION_ACTOR": "desk-7",
    # unset, whatever the developer's shell holds
    **dict.fromkeys(("SECOND_OPINION_DB", "SECOND_OPINION_ROLE", "SECOND_OPINION_SECRET",
                     "SECOND_OPINION_SECRET_FILE", "SECOND_OPINION_WEBHOOK_URL", "SECOND_OPINION_CLOSURES",
                     "SECOND_OPINION_ORGANISATION", "SECOND_OPINION_PROVIDER_CONTACTS")),
}  # fmt: skip
TABLES = ("cases", "case_transitions", "audit_records", "idempotency_keys", "deadlines", "outbox")
CASE_KEYS = {"id", "patient_ref", "route", "organisation", "state", "version", "opened_at", "updated_at",
             "audit_count", "audit_head", "bsn_recorded", "facts", "provider", "coverage_outcome", "self_paying",
             "allowed_events", "deadlines"}  # fmt: skip
RECEIPT_KEYS = {"case_id", "event", "from_state", "to_state", "version", "seq", "occurred_at", "recorded_at",
                "replayed"}  # fmt: skip
Snapshot = dict[str, list[dict[str, Any]]]  # table name -> rows


class Cli:
    """Runs the app on one SQLite file with the clock pinned; checks exit code and the absence of tracebacks."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = f"sqlite:///{path}"
        self.runner = CliRunner(env=ENV)

    def run(self, *args: str, code: int = 0, db: bool = True, env: Mapping[str, str | None] | None = None) -> Result:
        result = self.runner.invoke(app, [*args, *(["--db", self.db] if db else [])], env=env)
        assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.output
        return result

    def json(self, *args: str, code: int = 0) -> Any:
        return json.loads(self.run(*args, "--json", code=code).stdout)

    def open(self, *extra: str) -> str:
        return self.run("open", "--patient-ref", "PX-0001", *extra).stdout.strip()


@pytest.fixture
def cli(tmp_path: Path, request: pytest.FixtureRequest) -> Cli:
    """A CLI on an initialised file: a copy of the migrated template, or, for a test marked
    ``migrate`` (about ``init`` itself), made by ``second-opinion init`` on a new file."""
    cli = Cli(tmp_path / "cli.sqlite3")
    if request.node.get_closest_marker("migrate"):
        cli.run("init")
    else:
        migrated_sqlite(cli.path)
    return cli


def snapshot(path: Path) -> Snapshot:
    with closing(sqlite3.connect(path)) as conn:
        conn.row_factory = sqlite3.Row
        return {t: [dict(r) for r in conn.execute(f"SELECT * FROM {t} ORDER BY rowid")] for t in TABLES}


def added_records(before: Snapshot, after: Snapshot) -> list[dict[str, Any]]:
    """The audit records a command appended, after checking that it changed nothing else than the
    chain-head pointer (audit_count, audit_head) of the case those records belong to."""
    assert after["case_transitions"] == before["case_transitions"]
    assert after["idempotency_keys"] == before["idempotency_keys"]
    old = before["audit_records"]
    assert after["audit_records"][: len(old)] == old
    new = after["audit_records"][len(old) :]
    expected_cases = [dict(c) for c in before["cases"]]
    for case in expected_cases:
        for record in new:
            if record["case_id"] == case["id"]:
                case.update(audit_count=record["seq"], audit_head=record["hash"])
    assert after["cases"] == expected_cases
    return new


def fire_args(case_id: str, event: str) -> list[str]:
    """The CLI form of conftest's valid example command for ``event``."""
    actor, reason, data = EXAMPLES[event]
    args = ["fire", case_id, event, "--actor", actor.id, "--role", actor.role]
    return args + (["--reason", reason] if reason else []) + (["--data", json.dumps(data)] if data else [])


# --- every command -------------------------------------------------------------------------------


@pytest.mark.migrate
def test_init_is_idempotent(cli: Cli) -> None:
    case_id = cli.open()
    before = snapshot(cli.path)
    assert cli.run("init").stdout == f"initialised {cli.db} at schema revision {head_revision()}\n"
    assert snapshot(cli.path) == before and before["cases"][0]["id"] == case_id


def test_open_prints_the_case_id_or_a_receipt(cli: Cli) -> None:
    plain = cli.run("open", "--patient-ref", "PX-0001").stdout
    assert plain.startswith("so-") and plain == plain.strip() + "\n"
    receipt = cli.json("open", "--patient-ref", "PX-0002", "--route", "royal-doctors")
    assert receipt == {"case_id": receipt["case_id"], "event": "open", "from_state": None, "to_state": "requested",
                       "version": 1, "seq": 1, "occurred_at": NOW, "recorded_at": NOW, "replayed": False}  # fmt: skip
    shown = cli.json("show", receipt["case_id"])
    assert (shown["route"], shown["patient_ref"], shown["opened_at"]) == ("royal-doctors", "PX-0002", NOW)


def test_open_with_a_used_idempotency_key_replays_and_writes_nothing(cli: Cli) -> None:
    first = cli.open("--idempotency-key", "intake-1")
    before = snapshot(cli.path)
    assert cli.open("--idempotency-key", "intake-1") == first
    replay = cli.json("open", "--patient-ref", "PX-0001", "--idempotency-key", "intake-1")
    assert (replay["case_id"], replay["replayed"], replay["version"]) == (first, True, 1)
    assert snapshot(cli.path) == before
    assert len(cli.json("cases")) == 1 and len(cli.json("history", first)) == 1


def test_fire_walks_the_main_path(cli: Cli) -> None:
    case_id = cli.open()
    state = "requested"
    for version, event in enumerate(PATHS["back_to_first_provider"], start=2):
        receipt = cli.json(*fire_args(case_id, event))
        assert set(receipt) == RECEIPT_KEYS and receipt["recorded_at"] == NOW
        assert (receipt["event"], receipt["from_state"], receipt["version"]) == (event, state, version)
        state = receipt["to_state"]
    assert state == "back_to_first_provider"  # closed; what remains is seed 001's "Vervolg second opinion"
    assert cli.json("show", case_id)["allowed_events"] == ["escalate", "record_adoption"]
    other = cli.open()
    assert cli.run(*fire_args(other, "withdraw")).stdout == f"{other}: requested -> withdrawn (version 2)\n"
    declined = cli.open()
    assert cli.json(*fire_args(declined, "decline"))["to_state"] == "declined"
    assert cli.json("history", declined)[-1]["reason"] == EXAMPLES["decline"][1]


def test_fire_options_are_recorded(cli: Cli) -> None:
    case_id = cli.open("--occurred-at", "2026-11-23T08:15:00+01:00")
    circumstances = json.dumps(EXAMPLES["record_circumstances"][2])
    receipt = cli.json("fire", case_id, "record_circumstances", "--data", circumstances, "--expect-version", "1",
                       "--occurred-at", "2026-11-23T09:30:00+01:00", "--idempotency-key", "circ-1",
                       "--actor", "zc-9", "--role", "care_consultant", "--on-behalf-of", "pat-9")  # fmt: skip
    assert (receipt["version"], receipt["occurred_at"]) == (2, "2026-11-23T08:30:00.000000Z")
    before = snapshot(cli.path)
    again = cli.run("fire", case_id, "record_circumstances", "--data", circumstances, "--expect-version", "1",
                    "--occurred-at", "2026-11-23T09:30:00+01:00", "--idempotency-key", "circ-1",
                    "--actor", "zc-9", "--role", "care_consultant", "--on-behalf-of", "pat-9")  # fmt: skip
    assert again.stdout.endswith("(version 2) (replayed: nothing new written)\n") and snapshot(cli.path) == before
    opened, recorded = cli.json("history", case_id)
    assert (opened["actor_id"], opened["actor_role"], opened["occurred_at"]) == (
        "desk-7", "coordinator", "2026-11-23T07:15:00.000000Z")  # fmt: skip
    assert {k: recorded[k] for k in ("actor_id", "actor_role", "on_behalf_of", "idempotency_key", "payload")} == {
        "actor_id": "zc-9", "actor_role": "care_consultant", "on_behalf_of": "pat-9", "idempotency_key": "circ-1",
        "payload": EXAMPLES["record_circumstances"][2]}  # fmt: skip


def test_show_json_and_table(cli: Cli) -> None:
    case_id = cli.open()
    shown = cli.json("show", case_id)
    assert set(shown) == CASE_KEYS and shown["allowed_events"] == list(DEFINITION.events_from("requested"))
    assert (shown["state"], shown["version"], shown["audit_count"], shown["updated_at"]) == ("requested", 1, 1, NOW)
    table = cli.run("show", case_id).stdout
    assert "2026-11-23 10:00" in table and "refer" in table  # Amsterdam time, allowed events


def test_cases_filter_by_state(cli: Cli) -> None:
    second = cli.open()
    first = cli.open("--occurred-at", "2026-11-23T09:59:00+01:00")  # opened earlier, listed first
    cli.run(*fire_args(second, "withdraw"))
    assert [c["id"] for c in cli.json("cases")] == [first, second]
    assert [c["id"] for c in cli.json("cases", "--state", "withdrawn")] == [second]
    assert cli.json("cases", "--state", "reviewed") == []
    table = cli.run("cases", "--state", "requested").stdout
    assert first in table and second not in table and "2026-11-23 09:59" in table and "Europe/Amsterdam" in table


def test_history_includes_refusals(cli: Cli) -> None:
    case_id = cli.open()
    cli.run("fire", case_id, "hand_back", code=1)
    cli.run("fire", case_id, "refer", "--role", "auditor", code=1)
    records = cli.json("history", case_id)
    assert all(set(r) == {*AUDIT_COLUMNS, "channel", "encoding"} for r in records)  # encoding 2: with its channel
    assert {r["channel"].split(":")[0] for r in records} == {"cli"} and {r["encoding"] for r in records} == {2}
    assert [(r["seq"], r["event"], r["outcome"]) for r in records] == [
        (1, "open", "accepted"), (2, "hand_back", "rejected"), (3, "refer", "denied")]  # fmt: skip
    assert records[1]["refusal"].startswith("InvalidTransition: cannot hand_back a case in state 'requested'")
    assert records[2]["refusal"].startswith("PermissionDenied: role 'auditor' may not refer")
    assert records[2]["to_state"] == records[2]["from_state"] == "requested" and records[2]["payload"] == {}
    assert "denied" in cli.run("history", case_id).stdout


def test_audit_verify_passes_then_names_a_tampered_record(cli: Cli) -> None:
    case_id = cli.open()
    cli.run(*fire_args(case_id, "withdraw"))
    ok = cli.run("audit", "verify")
    assert ok.stdout == "audit trail verified: 1 case(s), 2 record(s), no problems\n" and ok.stderr == ""
    assert cli.json("audit", "verify", "--case", case_id) == {"ok": True, "cases": 1, "records": 2, "findings": []}
    with closing(sqlite3.connect(cli.path)) as conn, conn:
        for ddl in drop_append_only_ddl("sqlite", "audit_records"):
            conn.execute(ddl)
        conn.execute("UPDATE audit_records SET reason = 'another reason' WHERE case_id = ? AND seq = 2", (case_id,))
    failed = cli.run("audit", "verify", code=1)
    assert failed.stderr.startswith(f"audit verification FAILED: case {case_id}, record 2")
    assert "verified" not in failed.stdout
    report = cli.json("audit", "verify", code=1)
    assert report["ok"] is False and (report["findings"][0]["case_id"], report["findings"][0]["seq"]) == (case_id, 2)


def test_audit_export_jsonl_and_csv(cli: Cli) -> None:
    case_id = cli.open()
    cli.run(*fire_args(case_id, "record_circumstances"))
    cli.run("fire", case_id, "hand_back", code=1)
    rows = [json.loads(line) for line in cli.run("audit", "export", "--format", "jsonl").stdout.splitlines()]
    assert [list(r) for r in rows] == [sorted([*AUDIT_COLUMNS, "channel", "encoding"])] * 3  # encoding 2
    assert [(r["seq"], r["outcome"], r["recorded_at"]) for r in rows] == [
        (1, "accepted", NOW), (2, "accepted", NOW), (3, "rejected", NOW)]  # fmt: skip
    assert rows[1]["prev_hash"] == rows[0]["hash"] and rows[2]["hash"] == cli.json("show", case_id)["audit_head"]
    assert cli.run("audit", "export").stdout == cli.run("audit", "export", "--format", "jsonl").stdout
    text = cli.run("audit", "export", "--format", "csv").stdout
    assert text.splitlines()[0] == ",".join([*AUDIT_COLUMNS, "channel", "encoding"])
    table = list(csv.DictReader(io.StringIO(text)))
    assert [r["hash"] for r in table] == [r["hash"] for r in rows]
    assert [(r["channel"], r["encoding"]) for r in table] == [(r["channel"], "2") for r in rows]
    assert json.loads(table[1]["payload"]) == EXAMPLES["record_circumstances"][2]
    assert cli.run("audit", "export", "--since", "2026-11-24").stdout == ""
    assert cli.run("audit", "export", "--format", "csv", "--since", "2026-11-24").stdout.count("\n") == 1  # header
    assert len(cli.run("audit", "export", "--since", "2026-11-01").stdout.splitlines()) == 3
    assert len(cli.run("audit", "export", "--since", "2026-11-23T10:00:00+01:00").stdout.splitlines()) == 3


FORMULAS = ['=HYPERLINK("http://x","y")', "+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1+1"]


def test_audit_export_csv_escapes_formula_cells(cli: Cli) -> None:
    """A cell a spreadsheet would run as a formula arrives as text: a single quote before it, and
    quoted (OWASP, CSV injection). Everything else is written as before (see test_pre_rebuild)."""
    case_id = cli.open()
    for formula in FORMULAS:
        cli.run("fire", case_id, "contact_costs_team", f"--reason={formula}")
    text = cli.run("audit", "export", "--format", "csv").stdout
    reasons = [r["reason"] for r in csv.DictReader(io.StringIO(text))][1:]
    escaped = ["'" + f.replace("\t=", "\t'=") for f in FORMULAS]  # a tab is a separator to some readers
    assert reasons == escaped
    for kept in escaped:
        assert '"' + kept.replace('"', '""') + '"' in text  # quoted, with the quote inside
    cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]


def test_diagram_is_generated(cli: Cli) -> None:
    diagram = cli.run("diagram", db=False).stdout
    assert diagram.startswith("stateDiagram-v2") and diagram == mermaid()
    assert cli.run("diagram", "--markdown", db=False).stdout == states_markdown()


def test_demo_runs_on_a_fresh_file(tmp_path: Path) -> None:
    demo = Cli(tmp_path / "demo.sqlite3")
    out = demo.run("demo").stdout
    assert "refused, and recorded: GuardRefused: cannot receive_dossier a case in state 'referred'" in out
    assert "audit trail verified: 3 case(s)" in out
    assert demo.run("audit", "verify").stdout.startswith("audit trail verified: 3 case(s)")


def test_environment_variables_stand_in_for_options(cli: Cli) -> None:
    env = {"SECOND_OPINION_DB": cli.db, "SECOND_OPINION_ROLE": "gp", "SECOND_OPINION_ACTOR": "gp-44"}
    case_id = cli.run("open", "--patient-ref", "PX-0001", "--role", "coordinator", db=False, env=env).stdout.strip()
    cli.run(*fire_args(case_id, "record_circumstances"))
    cli.run(*fire_args(case_id, "give_consent"))
    cli.run("fire", case_id, "refer", db=False, env=env)
    refer = cli.json("history", case_id)[-1]
    assert (refer["event"], refer["actor_id"], refer["actor_role"]) == ("refer", "gp-44", "gp")


# --- every user error ----------------------------------------------------------------------------

# (arguments, error type, part of the message, outcome of the refusal record or None when nothing is written)
ERRORS = [
    pytest.param(["fire", "so-x", "refer"], "UnknownCase", "unknown case 'so-x'", None, id="fire-unknown-case"),
    pytest.param(["show", "so-x"], "UnknownCase", "unknown case 'so-x'", None, id="show-unknown-case"),
    pytest.param(["history", "so-x"], "UnknownCase", "unknown case 'so-x'", None, id="history-unknown-case"),
    pytest.param(["audit", "verify", "--case", "so-x"], "UnknownCase", "unknown case 'so-x'", None,
                 id="verify-unknown-case"),
    pytest.param(["fire", "{case}", "fly"], "UnknownEvent", "unknown event 'fly'; known events: record_circumstances,",
                 "rejected", id="unknown-event"),
    pytest.param(["fire", "{case}", "hand_back"], "InvalidTransition",
                 "cannot hand_back a case in state 'requested'; allowed there: record_circumstances,", "rejected",
                 id="invalid-transition"),
    pytest.param(["fire", "{case}", "withdraw"], "ValidationError", "withdraw requires a reason", "rejected",
                 id="withdraw-without-reason"),
    pytest.param(["fire", "{case}", "refer", "--data", "{oops"], "ValidationError", "invalid --data: not valid JSON",
                 None, id="data-not-json"),
    pytest.param(["fire", "{case}", "refer", "--data", "[1, 2]"], "ValidationError", "must be a JSON object", None,
                 id="data-not-object"),
    pytest.param(["fire", "{case}", "record_circumstances", "--data", f'{{"note": "{BSN}"}}'], "ValidationError",
                 "invalid data.note: contains what looks like a BSN", "rejected", id="bsn-in-data"),
    pytest.param(["fire", "{case}", "refer", "--occurred-at", "yesterday"], "ValidationError",
                 "'yesterday' is not an ISO 8601 timestamp", None, id="occurred-at-unparsable"),
    pytest.param(["fire", "{case}", "refer", "--occurred-at", "2026-11-23T10:00:00"], "ValidationError",
                 "has no timezone", None, id="occurred-at-naive"),
    pytest.param(["fire", "{case}", "refer", "--occurred-at", "2030-01-01T00:00:00Z"], "ValidationError",
                 f"2030-01-01T00:00:00.000000Z is in the future (now is {NOW})", "rejected", id="occurred-at-future"),
    pytest.param(["fire", "{case}", "withdraw", "--reason", "x", "--expect-version", "4"], "ConcurrentUpdate",
                 "is at version 1, not the expected 4", "rejected", id="expect-version-mismatch"),
    pytest.param(["fire", "{case}", "withdraw", "--reason", "x", "--idempotency-key", "open-key"],
                 "IdempotencyConflict", "idempotency key 'open-key' was already used for a different request",
                 "rejected", id="idempotency-key-reused"),
    pytest.param(["fire", "{case}", "refer", "--role", "nurse"], "ValidationError", "'nurse' is not a role; known:",
                 None, id="unknown-role"),
    pytest.param(["open", "--patient-ref", "PX-0002", "--role", "nurse"], "ValidationError", "'nurse' is not a role",
                 None, id="open-unknown-role"),
    pytest.param(["fire", "{case}", "refer", "--role", "auditor"], "PermissionDenied", "role 'auditor' may not refer",
                 "denied", id="permission-denied"),
    pytest.param(["fire", "{case}", "refer", "--role", "patient"], "GuardRefused",
                 "on this route the referral is made by: first_provider, gp", "rejected", id="patient-may-not-refer"),
    pytest.param(["open", "--patient-ref", "Jan Jansen"], "ValidationError", "invalid patient reference", None,
                 id="patient-ref-name"),
    pytest.param(["open", "--patient-ref", BSN], "ValidationError", "invalid patient reference: looks like a BSN",
                 None, id="patient-ref-bsn"),
    pytest.param(["open", "--patient-ref", "PX-0002", "--route", "abroad"], "ValidationError",
                 "'abroad' is not a route", None, id="unknown-route"),
    pytest.param(["open", "--patient-ref", "PX-0002", "--provider", "moon-clinic"], "ValidationError",
                 "invalid provider: must be a provider serving the domestic route: umc-utrecht, jeroen-bosch, "
                 "generic-hospital", None, id="unknown-provider"),
    pytest.param(["open", "--patient-ref", "PX-0002", "--route", "online", "--provider", "umc-utrecht"],
                 "ValidationError", "must be a provider serving the online route: 2e-arts-online", None,
                 id="provider-not-serving-the-route"),
    pytest.param(["cases", "--state", "nowhere"], "ValidationError", "'nowhere' is not a state; known: requested",
                 None, id="unknown-state-filter"),
    pytest.param(["show", BSN], "UnknownCase", "unknown case '[BSN removed]'", None, id="bsn-as-case-id"),
    pytest.param(["fire", "{case}", BSN], "ValidationError", "invalid event: must be a lower-case name", None,
                 id="bsn-as-event"),
    pytest.param(["fire", "{case}", "refer", "--idempotency-key", BSN], "ValidationError",
                 "invalid idempotency key: contains what looks like a BSN", None, id="bsn-as-idempotency-key"),
    pytest.param(["cases", "--state", BSN], "ValidationError", "'[BSN removed]' is not a state", None,
                 id="bsn-as-state"),
    pytest.param(["audit", "export", "--since", "2026-13-45"], "ValidationError", "not a calendar date", None,
                 id="export-since-not-a-date"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "error_type", "fragment", "outcome"), ERRORS)
def test_every_error_is_one_line_and_writes_only_its_refusal(
    cli: Cli, args: list[str], error_type: str, fragment: str, outcome: str | None
) -> None:
    case_id = cli.open("--idempotency-key", "open-key")
    args = [a.replace("{case}", case_id) for a in args]
    takes_json = args[:2] != ["audit", "export"]
    for as_json in (False, True) if takes_json else (False,):
        before = snapshot(cli.path)
        result = cli.run(*args, *(["--json"] if as_json else []), code=1)
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1 and result.stderr.endswith("\n")
        message = result.stderr.removeprefix("error: ").removesuffix("\n")
        assert fragment in message
        expected_stdout = {"error": {"type": error_type, "message": message}} if as_json else None
        assert (json.loads(result.stdout) if as_json else None) == expected_stdout
        assert as_json or result.stdout == ""
        new = added_records(before, after := snapshot(cli.path))
        assert [r["outcome"] for r in new] == ([outcome] if outcome else [])
        for record in new:
            assert (record["case_id"], record["payload"], record["to_state"]) == (case_id, "{}", "requested")
            assert record["refusal"] == f"{error_type}: {message}"
        assert BSN not in result.output and BSN not in json.dumps(after), "a BSN is never echoed nor stored"


@pytest.mark.parametrize("as_json", [False, True])
@pytest.mark.parametrize(
    "args", [["open", "--patient-ref", "PX-0001"], ["fire", "so-x", "refer"], ["show", "so-x"], ["cases"],
             ["history", "so-x"], ["audit", "verify"], ["audit", "export"]]
)  # fmt: skip
def test_an_uninitialised_database_is_refused_and_not_created(tmp_path: Path, args: list[str], as_json: bool) -> None:
    missing, empty = Cli(tmp_path / "missing.sqlite3"), Cli(tmp_path / "empty.sqlite3")
    empty.path.touch()
    flag = ["--json"] if as_json and args[:2] != ["audit", "export"] else []
    for cli, problem in ((missing, "does not exist"), (empty, "is not initialised")):
        result = cli.run(*args, *flag, code=1)
        assert result.stderr == f"error: database {cli.db} {problem}: run `second-opinion init` first\n"
        if flag:
            assert json.loads(result.stdout)["error"] == {"type": "StorageNotReady", "message": result.stderr[7:-1]}
    assert not missing.path.exists()
    with closing(sqlite3.connect(empty.path)) as conn:
        assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,), "no schema was created"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.sqlite3"]


@pytest.mark.parametrize("as_json", [False, True])
@pytest.mark.parametrize(
    ("url", "problem"),
    [("mysql://x/y", "backend 'mysql' is not supported"), ("nonsense", "'nonsense' is not a URL")],
)
def test_a_bad_database_url_is_one_error_line(url: str, problem: str, as_json: bool) -> None:
    result = CliRunner(env=ENV).invoke(app, ["cases", "--db", url, *(["--json"] if as_json else [])])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.startswith("error: invalid database URL: ") and result.stderr.count("\n") == 1
    assert problem in result.stderr
    if as_json:
        assert json.loads(result.stdout)["error"]["type"] == "ValidationError"


@pytest.mark.parametrize(
    "args",
    [["fire"], ["fire", "so-x"], ["open"], ["show", "so-x", "--colour"], ["audit", "export", "--format", "xml"],
     ["fire", "so-x", "refer", "--expect-version", "two"], ["teleport"]],
)  # fmt: skip
def test_usage_errors_exit_2_and_write_nothing(cli: Cli, args: list[str]) -> None:
    before = snapshot(cli.path)
    cli.run(*args, code=2)
    assert snapshot(cli.path) == before


# --- docs/cli.md shows real output ---------------------------------------------------------------

DOC = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()


def doc_block(heading: str, lang: str, index: int = 0) -> str:
    """The ``index``-th fenced ``lang`` block of the docs/cli.md section starting at ``heading``."""
    section = DOC.split(f"\n{heading}", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    return section.split(f"```{lang}\n")[index + 1].split("```", 1)[0]


def anonymous(text: str) -> str:
    """Case ids are random, so hashes differ on every run; everything else must be equal."""
    text = re.sub(r'"channel": "cli:[^"]*"', '"channel": "cli:<user>@<host>"', text)  # the machine's
    text = re.sub(r",cli:[^,\n]*,2$", ",cli:<user>@<host>,2", text, flags=re.M)  # in the CSV
    return re.sub(r"\b[0-9a-f]{64}\b", "<hash>", re.sub(r"\bso-[a-z0-9]{16}\b", "<case>", text))


def test_the_documented_examples_are_what_the_documented_script_prints(cli: Cli) -> None:
    script = doc_block("### Reproducing the examples", "sh").replace("\\\n", "")
    assert f"SECOND_OPINION_CLOCK={CLOCK} SECOND_OPINION_ACTOR={ENV['SECOND_OPINION_ACTOR']}" in script
    printed: list[Result] = []
    case_id = ""
    for line in script.splitlines():
        if line.startswith("export "):
            continue
        words = shlex.split(re.sub(r"^CASE=\$\((.*)\)$", r"\1", line), comments=True)
        assert words[0] == "second-opinion", line
        result = cli.run(*[w.replace("$CASE", case_id) for w in words[1:]], code=1 if "exit 1" in line else 0)
        case_id = case_id or (result.stdout.strip() if line.startswith("CASE=") else "")
        printed.append(result)
    receipt, case, error, history, verified, export = (r.stdout for r in printed[4:])
    assert anonymous(receipt) == anonymous(doc_block("### Receipt", "json"))
    assert anonymous(case) == anonymous(doc_block("### Case", "json"))
    assert anonymous(error) == anonymous(doc_block("### Error", "json"))
    assert anonymous(json.dumps(json.loads(history)[-1], indent=2) + "\n") == anonymous(doc_block("### Audit", "json"))
    assert verified == doc_block("### Verification", "json")
    rows = export.splitlines()
    assert anonymous("\n".join([rows[0], rows[1], rows[-1]]) + "\n") == anonymous(doc_block("### Exports", "text"))
    refer = cli.run("audit", "export").stdout.splitlines()[3] + "\n"
    assert anonymous(refer) == anonymous(doc_block("### Exports", "json"))
    with closing(sqlite3.connect(cli.path)) as conn, conn:
        for ddl in drop_append_only_ddl("sqlite", "audit_records"):
            conn.execute(ddl)
        conn.execute("UPDATE audit_records SET actor_role = 'second_opinion_doctor' WHERE seq = 5")
    failed = cli.run("audit", "verify", "--json", code=1)
    assert anonymous(failed.stdout) == anonymous(doc_block("### Verification", "json", 1))
    assert anonymous(failed.stderr) == anonymous(doc_block("### Verification", "text"))


def test_audit_export_csv_quotes_a_cell_a_dutch_spreadsheet_would_split(cli: Cli) -> None:
    """Found by review: Dutch spreadsheets split CSV on ``;`` (and ignore our quotes, which are not
    at the start of their cells), so ``x;=cmd|' /C calc'!A0;`` opened a cell holding a formula. A
    formula character after a ``;`` or a tab is escaped like one at the start of a cell."""
    case_id = cli.open()
    for reason in ("wish;=1+1", "x;=cmd|' /C calc'!A0;", "a\t@SUM(A1)"):
        cli.run("fire", case_id, "contact_costs_team", f"--reason={reason}")
    text = cli.run("audit", "export", "--format", "csv").stdout
    for delimiter in (";", "\t"):
        cells = [cell for row in csv.reader(io.StringIO(text), delimiter=delimiter) for cell in row]
        assert not [c for c in cells if c.lstrip('"')[:1] in ("=", "+", "@")], (delimiter, cells)
    reasons = [r["reason"] for r in csv.DictReader(io.StringIO(text))][1:]
    assert reasons == ["wish;'=1+1", "x;'=cmd|' /C calc'!A0;", "a\t'@SUM(A1)"]


def test_show_and_history_give_the_latest_coverage_decision(cli: Cli) -> None:
    """Issue 15: the insurer's decision (seed 000's conditions) is on the case; ``show`` gives the
    latest one in JSON and text, the history says each decision's outcome."""
    case_id = cli.open()
    assert "coverage" not in cli.json("show", case_id)["facts"]
    for purpose in ("treatment", "work_disability"):  # 000: work disability is never covered
        data = json.dumps({"policy": "pno-basic", "facts": {**COVERAGE_FACTS, "purpose": purpose}})
        cli.run("fire", case_id, "decide_coverage", "--actor", "zc-1", "--role", "care_consultant", "--data", data)
    shown = cli.json("show", case_id)["facts"]["coverage"]
    assert (shown["number"], shown["outcome"], shown["policy"]) == (2, "not_covered", "pno-basic")
    assert shown["facts"]["purpose"] == "work_disability"
    text = cli.run("show", case_id).stdout
    assert "#2 not covered under pno-basic (domestic)" in text and "FAILS not_work_disability (seed 000)" in text
    assert "eigen risico" not in text  # nothing said when it does not apply
    history = cli.run("history", case_id).stdout
    assert "covered under pno-basic (domestic); eigen" in history and "not covered under pno-basic" in history
