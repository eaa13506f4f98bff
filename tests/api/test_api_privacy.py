"""What the HTTP side writes about a request never carries a BSN in clear, and the access log
survives scrutiny: its chain is checked end to end, and a tampered record is named."""

from __future__ import annotations

import logging
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy.exc import DBAPIError

from second_opinion import connect
from second_opinion.api.request_target import RequestTarget
from second_opinion.cli.serve import redact_bsn as _redact_bsn
from storage.ddl import drop_append_only_ddl
from tests.api_support import Api, problem
from tests.cli.test_cli import Cli
from tests.conftest import SQL_BACKENDS
from tests.contract.test_audit_tamper import sql
from workflow import CaseService

BSN = "123456782"  # passes the elfproef: the shape a real BSN has


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_a_bsn_typed_into_a_request_does_not_come_back(service: CaseService) -> None:
    api = Api(service)
    desk = api.auth("coordinator")
    found = problem(api.client.get(f"/cases/{BSN}", headers=desk), 404, "unknown-case")
    assert BSN not in str(found) and "[BSN removed]" in found["detail"]
    opened = problem(api.client.post("/cases", json={"patient_ref": BSN}, headers=desk), 422, "validation-error")
    assert BSN not in str(opened)
    fired = api.client.post(f"/cases/{api.open()}/events", json={"event": "withdraw", "reason": f"bsn {BSN}"},
                            headers=desk)  # fmt: skip
    assert BSN not in fired.text
    with service.unit_of_work(False) as uow:
        assert BSN not in str(uow.access.all()) and BSN not in str(uow.audit.since(None))


def test_request_log_lines_are_masked() -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", f"/cases/{BSN}?x=1", "1.1", 404), None)  # fmt: skip
    assert _redact_bsn(record) is True
    assert BSN not in record.getMessage() and "[BSN removed]" in record.getMessage()


def test_access_log_verify_names_an_edited_and_a_removed_record(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "access.sqlite3")
    cli.run("init")
    with connect(cli.db) as service:
        api = Api(service)
        case_id = api.open()
        auditor = api.auth("auditor")
        for _ in range(3):
            assert api.client.get(f"/cases/{case_id}/access-log", headers=auditor).status_code == 200
    ok = cli.run("access-log", "verify")
    assert ok.stdout == "access log verified: 3 record(s), no problems\n"
    assert cli.json("access-log", "verify") == {"ok": True, "records": 3, "problems": []}
    with closing(sqlite3.connect(cli.path)) as conn, conn:
        for ddl in drop_append_only_ddl("sqlite", "access_records"):
            conn.execute(ddl)
        conn.execute("UPDATE access_records SET actor_id = 'someone-else' WHERE sequence = 2")
    edited = cli.run("access-log", "verify", code=1)
    assert "access record 2: its content does not match its hash" in edited.stderr
    with closing(sqlite3.connect(cli.path)) as conn, conn:
        conn.execute("DELETE FROM access_records WHERE sequence = 2")
    removed = cli.json("access-log", "verify", code=1)
    assert removed["ok"] is False and removed["records"] == 2
    assert removed["problems"] == ["access record 3: does not follow the record before it (a record was removed "
                                   "or reordered)"]  # fmt: skip


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
def test_access_log_refuses_updates_and_deletes(service: CaseService, db_url: str) -> None:
    api = Api(service)
    api.client.get(f"/cases/{api.open()}", headers=api.auth("coordinator"))
    statements = ["UPDATE access_records SET kind = 'list'", "DELETE FROM access_records"]
    if not db_url.startswith("sqlite"):
        statements.append("TRUNCATE access_records")
    for statement in statements:
        with pytest.raises(DBAPIError, match="append-only"):
            sql(db_url, statement)
    with service.unit_of_work(False) as uow:
        assert len(uow.access.all()) == 1


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_a_case_id_shaped_segment_holding_a_bsn_is_masked_in_logged_paths(service: CaseService) -> None:
    """The logged path keeps case-id-shaped segments, and a case id's alphabet holds the digits 2-7:
    nine of them can be a BSN (222222232 passes the elfproef), so the kept path is masked too."""
    target = RequestTarget.of(Api(service).app).target("/cases/so-222222232aaaaaaa/history")
    assert "222222232" not in target and "[BSN removed]" in target
