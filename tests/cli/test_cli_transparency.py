"""The transparency log on the command line: ``audit keygen``, ``audit checkpoint``, ``audit verify
--checkpoint``, ``audit prove`` and ``audit extends``, as an operator and an auditor use them; the
proofs they print check out in the second-language verifier (verifier/verify.mjs) when Node.js is
there; a record changed by the database's owner fails verification naming its position."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

from sqlalchemy import text
from typer.testing import CliRunner

from second_opinion.cli import app
from tests.conftest import sql_engine

ENV: dict[str, str | None] = {
    "SECOND_OPINION_CLOCK": "2026-11-23T10:00:00+01:00", "SECOND_OPINION_ACTOR": "desk-cli",
    "SECOND_OPINION_DB": None, "SECOND_OPINION_ROLE": None, "SECOND_OPINION_LANG": None,
}  # fmt: skip
VERIFIER = Path(__file__).resolve().parents[2] / "verifier" / "verify.mjs"


def test_an_auditors_round_trip(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'log.sqlite3'}"
    runner = CliRunner()

    def run(*args: str, code: int = 0, db_flag: bool = True) -> str:
        result = runner.invoke(app, [*args, *(["--db", db] if db_flag else [])], env=ENV)
        assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.output
        return result.stdout + result.stderr

    key = tmp_path / "log.key"
    run("audit", "keygen", "--out", str(key), "--name", "hospital.example/audit", db_flag=False)
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600 and key.read_text().startswith("PRIVATE+KEY+hospital")
    assert "exists; a key is never overwritten" in run("audit", "keygen", "--out", str(key), code=1, db_flag=False)
    public = str(key) + ".pub"

    run("init")
    case_id = run("open", "--patient-ref", "PX-0001").strip()
    first = tmp_path / "first.cp"
    first.write_text(run("audit", "checkpoint", "--signing-key", str(key)))
    assert first.read_text().startswith("hospital.example/audit\n")
    run("open", "--patient-ref", "PX-0002")
    second = tmp_path / "second.cp"
    second.write_text(run("audit", "checkpoint", "--signing-key", str(key)))
    ok = run("audit", "verify", "--checkpoint", str(first), "--checkpoint", str(second), "--public-key", public)
    assert "transparency log verified: 2 record(s), extending 2 checkpoint(s)" in ok
    assert "give the public key" in run("audit", "verify", "--checkpoint", str(first), code=1)

    inclusion = tmp_path / "inclusion.json"
    inclusion.write_text(run("audit", "prove", "audit:1", "--checkpoint", str(second), "--public-key", public))
    consistency = tmp_path / "consistency.json"
    consistency.write_text(run("audit", "extends", str(first), str(second), "--public-key", public))
    assert json.loads(inclusion.read_text())["index"] == 0
    node = shutil.which("node")
    if node is not None:  # the second-language verifier, on what the CLI printed
        for kind, bundle in (("inclusion", inclusion), ("consistency", consistency)):
            done = subprocess.run([node, str(VERIFIER), kind, str(bundle)], capture_output=True, text=True, timeout=60)
            assert done.returncode == 0 and done.stdout.startswith("OK "), done.stdout

    # the worker signs one too, for the witness directory
    witness = tmp_path / "witness"
    witness.mkdir()
    run("worker", "--once", "--allow-clock-override", "--log-signing-key", str(key), "--witness-dir", str(witness))
    (handed,) = witness.glob("checkpoint-*.txt")
    assert handed.read_text().split("\n")[:2] == ["hospital.example/audit", "2"]
    (leaves,) = witness.glob("leaves-*.txt")  # the leaves it covers, written before it
    assert leaves.name == "leaves-000000000000-000000000002.txt" and leaves.read_text().count("\n") == 2
    ok = run("audit", "verify", "--witness-dir", str(witness), "--public-key", public)
    assert "transparency log verified: 2 record(s), extending 1 checkpoint(s)" in ok
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "holds no checkpoint-*.txt" in run("audit", "verify", "--witness-dir", str(empty), "--public-key", public,
                                              code=1)  # fmt: skip
    (empty / "checkpoint-000000000002-1.txt").write_text(handed.read_text())
    (empty / "leaves-000000000000-000000000002.txt").write_text("0 audit 1 nothex\n")
    assert "line 1 is not '<position> <audit|access> <sequence> <64 hex>'" in run(
        "audit", "verify", "--witness-dir", str(empty), "--public-key", public, code=1)
    refused = run("worker", "--once", "--allow-clock-override", "--witness-url", "ftp://x", code=1)
    assert "must be an http(s) URL" in refused

    # the owner changes the first record's hash (triggers off): named by its position
    engine = sql_engine(db)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER audit_records_no_update")
        conn.execute(text("UPDATE audit_records SET hash = :h WHERE sequence = 1"), {"h": "0" * 64})
    engine.dispose()
    failed = run("audit", "verify", "--checkpoint", str(first), "--public-key", public, code=1)
    assert "transparency log verification FAILED: position 0: audit record 1 changed after it was logged" in failed
    # and the owner who also rebuilds the log is named at that position by the witnessed leaves
    engine = sql_engine(db)
    with engine.begin() as conn:
        for table in ("log_leaves", "log_nodes"):
            triggers = f"SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = '{table}'"
            for (name,) in conn.execute(text(triggers)):
                conn.exec_driver_sql(f"DROP TRIGGER {name}")
            conn.exec_driver_sql(f"DELETE FROM {table}")
    engine.dispose()
    run("audit", "checkpoint", "--signing-key", str(key))  # re-sequences: the log agrees with itself again
    failed = run("audit", "verify", "--witness-dir", str(witness), "--public-key", public, code=1)
    assert "(the first difference at position 0: witnessed as audit record 1; that record was changed" in failed
    assert case_id
