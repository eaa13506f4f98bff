"""A database written by the code before the rebuild (issue 13) reads and verifies the same today.

``fixtures/pre_rebuild.sqlite3`` and the answers in ``fixtures/pre_rebuild.json`` were made by
``fixtures/make_pre_rebuild.py`` at commit 63601ea. Every read is made on a copy, with the clock,
key and terminal width pinned as they were then; CLI text, CLI JSON, HTTP answers and audit
hashes must be byte-for-byte what the old code printed.

Three exceptions, each written down: :data:`ALLOWED_SINCE`, event by event (``allowed_events`` is read
from today's table, and a rule deliberately changed since then lets a state allow more), and
:data:`ADDED_SINCE`, key by key (fields a case's JSON gained, with the value an old case has), and the CSV export's
two columns added at the end by issue 17 (an empty channel and encoding 1 for an old record). The old
answer is patched with exactly those, and the rest stays byte-for-byte.
"""

from __future__ import annotations

import json
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures import make_pre_rebuild as maker

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ANSWERS: dict[str, Any] = json.loads((FIXTURES / maker.ANSWERS_NAME).read_text())

_ASSIGNMENT = ("assign", "unassign")  # issue 16: a case is assigned to a person in every open state
ALLOWED_SINCE: dict[str, tuple[str, ...]] = {
    # issue 15, seed 001: the patient turns to the insurer after the return to their own doctor
    "back_to_first_provider": ("escalate", "record_adoption"),
    # issue 15, seed 003: insured abroad, the costs team is contacted before the appointment
    "dossier_received": ("contact_costs_team", *_ASSIGNMENT),
    **{state: _ASSIGNMENT for state in ("requested", "referred", "reviewed", "advice_returned")},
}
"""Events a state allows today that it did not when the fixture was made; nothing else may differ."""

ADDED_SINCE: dict[str, Any] = {
    # issue 15: the case's provider, the latest coverage outcome and the self-paying mark, summed up
    # from its facts; a case written before providers has none of them
    "provider": None,
    "coverage_outcome": None,
    "self_paying": False,
}
"""Keys a case's JSON gained since the fixture was made, inserted before ``allowed_events``, with the
value every case of the fixture has."""

TOKEN_ADDED_SINCE: dict[str, Any] = {
    # issue 19 (migration 0015): a token written before has no expiry, every scope and no last use
    "expires_at": None,
    "scopes": ["cases:read", "cases:write", "audit:read", "reports:read", "webhooks:admin"],
    "last_used_at": None,
}
"""Keys a token's JSON gained since the fixture was made, appended, with the value every old token has."""
ACCESS_ADDED_SINCE: dict[str, Any] = {"channel": None, "credential": None}
"""Keys an access record's JSON gained since (issue 19), with the value every record written before has.
The one record an API read writes today (at :data:`maker.READ_AT`) is written in today's encoding
(``v`` 3, with its channel and credential in the hash): :func:`written_today` says what it must be."""


def _allowed_now(state: str, old: list[str]) -> list[str]:
    from workflow import DEFINITION

    now = list(DEFINITION.events_from(state))
    assert set(now) - set(old) == set(ALLOWED_SINCE.get(state, ())) and set(old) <= set(now), state
    return now


def patched(value: Any) -> Any:
    """An old JSON answer with each case's ``allowed_events`` as :data:`ALLOWED_SINCE` changed it, and
    the keys of :data:`ADDED_SINCE` added."""
    if isinstance(value, list):
        return [patched(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: patched(v) for k, v in value.items()}
    if {"actor", "role", "organisation", "revoked_at"} <= set(out):
        assert not set(TOKEN_ADDED_SINCE) & set(out), "the fixture already has a key listed as added since"
        out |= TOKEN_ADDED_SINCE
    if {"prev_hash", "kind", "outcome"} <= set(out):
        out = written_today(out) if out["at"] == _READ_AT_UTC else out | ACCESS_ADDED_SINCE
    if "allowed_events" in out and "state" in out:
        assert not set(ADDED_SINCE) & set(out), "the fixture already has a key listed as added since"
        at = list(out).index("allowed_events")
        items = list(out.items())
        out = dict(items[:at] + list(ADDED_SINCE.items()) + items[at:])
        out["allowed_events"] = _allowed_now(out["state"], out["allowed_events"])
    return out


def _utc_text(text: str) -> str:
    from workflow.clock import parse_instant, utc_iso

    return utc_iso(parse_instant(text, "at"))


_READ_AT_UTC = _utc_text(maker.READ_AT)


def written_today(old: dict[str, Any]) -> dict[str, Any]:
    """The access record the API read writes, as today writes it: the old record's fields, through
    channel ``api`` with the auditor's token as credential, hashed as encoding 3 (issue 19)."""
    import sqlite3
    from contextlib import closing

    from workflow.access import log as access_log
    from workflow.access.tokens import hash_secret
    from workflow.clock import parse_instant

    with closing(sqlite3.connect(FIXTURES / maker.DB_NAME)) as conn:
        (token_id,) = conn.execute("SELECT id FROM api_tokens WHERE token_hash = ?",
                                   (hash_secret(ANSWERS["secrets"]["auditor"]),)).fetchone()  # fmt: skip
    fields = {k: v for k, v in old.items() if k not in ("v", "hash", "sequence", "cases")}
    today = {"channel": "api", "credential": token_id, "encoding": access_log.ENCODING_VERSION}
    record = access_log.AccessRecord(**{**fields, "at": parse_instant(old["at"], "at")}, hash="", **today)
    new = access_log.as_dict(record)
    return {**new, "sequence": old["sequence"], "hash": access_log.compute_hash(record)}


_ALLOWED_ROW = re.compile(r"^│ allowed events .*\n(?:│\s+│.*\n)*", re.MULTILINE)


def masked(name: str, answer: dict[str, Any], old: bool) -> dict[str, Any]:
    """An old answer's JSON patched and re-printed the way the CLI prints it (indent 2); in old and
    new text alike the table's allowed-events row masked: its --json twin or the API read checks it."""
    stdout = answer["stdout"]
    if old and name.endswith("--json") and stdout.startswith(("{", "[")):
        stdout = json.dumps(patched(json.loads(stdout)), indent=2) + "\n"
    if old and name.endswith("--format csv") and stdout:  # issue 17 added two columns at the end
        header, _, rows = stdout.partition("\n")
        stdout = header + ",channel,encoding\n" + re.sub(r"(?m)(,[0-9a-f]{64})$", r"\1,,1", rows)
    return {**answer, "stdout": _ALLOWED_ROW.sub("│ allowed events (checked in JSON)\n", stdout)}


@pytest.fixture
def old_file(tmp_path: Path) -> Path:
    """A copy of the fixture, upgraded by ``init`` to this version's schema (what an operator runs
    after installing a release with a new migration): every answer must still be the old one."""
    from storage import initialise

    copy = tmp_path / maker.DB_NAME
    shutil.copy(FIXTURES / maker.DB_NAME, copy)
    initialise(f"sqlite:///{copy}")
    return copy


def test_every_cli_read_answers_as_before(old_file: Path) -> None:
    ids = ANSWERS["cases"]
    commands = {name: [part.format(**ids) for part in argv] for name, argv in
                ((" ".join(argv), argv) for argv in maker.CLI_READS)}  # fmt: skip
    with ThreadPoolExecutor(4) as pool:
        got = dict(zip(commands, pool.map(lambda argv: maker.run_cli(old_file, argv), commands.values()), strict=True))
    assert set(got) == set(ANSWERS["cli"])
    for name, answer in got.items():
        assert masked(name, answer, old=False) == masked(name, ANSWERS["cli"][name], old=True), name


def run_api(db: Path, secret: str, target: str) -> dict[str, Any]:
    """``maker.run_api`` with today's import paths: one read on a fresh copy of the file."""
    from fastapi.testclient import TestClient

    from second_opinion import connect
    from second_opinion.api import create_app
    from workflow.clock import FixedClock, parse_instant

    copy = db.with_name(f"api-{maker.DB_NAME}")
    shutil.copy(db, copy)
    service = connect(f"sqlite:///{copy}", clock=FixedClock(parse_instant(maker.READ_AT, "at")),
                      identity_key=maker.KEY.encode())  # fmt: skip
    client = TestClient(create_app(service), raise_server_exceptions=False)
    answer = client.get(target, headers={"Authorization": f"Bearer {secret}"})
    service.close()
    copy.unlink()
    body = answer.json()
    if isinstance(body, dict):
        body.pop("request_id", None)  # issue 18: a problem document quotes the request's id, new on each request
    return {"status": answer.status_code, "body": body, "etag": answer.headers.get("etag")}


def test_every_api_read_answers_as_before(old_file: Path) -> None:
    ids = ANSWERS["cases"]
    for target in maker.API_READS:
        assert run_api(old_file, ANSWERS["secrets"]["auditor"], target.format(**ids)) == patched(ANSWERS["api"][target])


def test_the_old_file_verifies_with_its_hashes(old_file: Path) -> None:
    from second_opinion import connect

    with connect(f"sqlite:///{old_file}", identity_key=maker.KEY.encode()) as service:
        report = service.verify()
        assert report.ok and report.cases == 4 and report.records == 36
        heads = {case.id: case.audit_head for case in service.cases()}
    exported = [json.loads(line) for line in ANSWERS["cli"]["audit export"]["stdout"].splitlines()]
    last = {record["case_id"]: record["hash"] for record in exported}
    assert heads == last
