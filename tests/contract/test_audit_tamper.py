"""Tampering with the audit trail is refused by the database and, where someone gets around the
database, detected by ``audit verify`` at the first bad record, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from second_opinion.cli import app
from storage.ddl import APPEND_ONLY_TABLES, append_only_ddl, drop_append_only_ddl
from tests.conftest import DESK, SQL_BACKENDS, fire_example, sql_engine
from workflow import AuditIntegrityError, InvalidTransition
from workflow.audit.chain import compute_hash, hash_input

on_sql = pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)


@pytest.fixture
def case_id(service) -> str:
    """Six records: open, give_consent, record_circumstances, a refused hand_back, refer, escalate."""
    case_id = service.open_case("PX-1", actor=DESK).case_id
    fire_example(service, case_id, "give_consent")
    fire_example(service, case_id, "record_circumstances")
    with pytest.raises(InvalidTransition):
        service.fire(case_id, "hand_back", actor=DESK)
    fire_example(service, case_id, "refer")
    fire_example(service, case_id, "escalate")
    assert service.verify().ok
    return case_id


def sql(url: str, *statements: str, bypass: bool = False, **params) -> None:
    """Run statements directly on the database; ``bypass`` lifts the append-only triggers."""
    engine = sql_engine(url)
    dialect = engine.dialect.name
    try:
        with engine.begin() as conn:
            if bypass:
                for table in APPEND_ONLY_TABLES:
                    for ddl in drop_append_only_ddl(dialect, table):
                        conn.exec_driver_sql(ddl)
            for statement in statements:
                conn.execute(text(statement), params)
            if bypass:
                for table in APPEND_ONLY_TABLES:
                    for ddl in append_only_ddl(dialect, table):
                        conn.exec_driver_sql(ddl)
    finally:
        engine.dispose()


@on_sql
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_records SET actor_id = 'someone-else' WHERE seq = 2",
        "DELETE FROM audit_records WHERE seq = 6",
        "UPDATE case_transitions SET to_state = 'declined' WHERE version = 2",
        "DELETE FROM case_transitions",
    ],
)
def test_database_refuses_to_rewrite_history(db_url, case_id, service, statement):
    with pytest.raises(DBAPIError, match="append-only"):
        sql(db_url, statement)
    assert service.verify().ok


@pytest.mark.parametrize("db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_postgres_refuses_truncate(db_url, case_id, service):
    """SQLite has no TRUNCATE (its DELETE is covered above)."""
    with pytest.raises(DBAPIError, match="append-only"):
        sql(db_url, "TRUNCATE audit_records CASCADE")


def first_finding(service):
    report = service.verify()
    assert not report.ok
    return report.findings[0]


@on_sql
def test_edited_record_is_detected_at_that_record(db_url, case_id, service):
    sql(db_url, 'UPDATE audit_records SET payload = \'{"letter":"forged"}\' WHERE seq = 2', bypass=True)
    finding = first_finding(service)
    assert (finding.case_id, finding.seq) == (case_id, 2)
    assert "altered" in finding.problem


@on_sql
def test_edited_record_with_recomputed_hash_is_detected_at_the_next_link(db_url, case_id, service):
    forged = service.history(case_id)[2]  # seq 3
    forged = replace(forged, actor_id="dr-forger")
    sql(
        db_url,
        "UPDATE audit_records SET actor_id = 'dr-forger', hash = :h, body = :b WHERE case_id = :c AND seq = 3",
        bypass=True,
        h=compute_hash(forged),
        b=hash_input(forged).decode(),
        c=case_id,
    )
    finding = first_finding(service)
    assert finding.seq == 4 and "prev_hash" in finding.problem


@on_sql
def test_recomputed_hash_on_the_last_record_is_caught_by_the_case_head(db_url, case_id, service):
    last = service.history(case_id)[-1]
    forged = replace(last, actor_id="dr-forger")
    sql(
        db_url,
        "UPDATE audit_records SET actor_id = 'dr-forger', hash = :h, body = :b WHERE seq = 6",
        bypass=True,
        h=compute_hash(forged),
        b=hash_input(forged).decode(),
    )
    finding = first_finding(service)
    assert finding.seq is None and "head hash" in finding.problem


@on_sql
def test_deleted_middle_record_is_detected(db_url, case_id, service):
    sql(db_url, "DELETE FROM audit_records WHERE seq = 3", bypass=True)
    finding = first_finding(service)
    assert finding.seq == 4 and "where record 3 was expected" in finding.problem


@on_sql
def test_deleted_tail_is_detected(db_url, case_id, service):
    sql(db_url, "DELETE FROM audit_records WHERE seq = 6", bypass=True)
    finding = first_finding(service)
    assert finding.seq is None and "counts 6 records, the chain has 5" in finding.problem


@on_sql
def test_reordered_pair_is_detected(db_url, case_id, service):
    """Swap the storage positions of records 3 and 4: each row is intact, the order is not."""
    sql(db_url, "UPDATE audit_records SET sequence = 1000 WHERE seq = 3", bypass=True)
    finding = first_finding(service)
    assert finding.seq == 4 and "where record 3 was expected" in finding.problem


@on_sql
def test_swapped_numbers_are_detected(db_url, case_id, service):
    sql(
        db_url,
        "UPDATE audit_records SET seq = 100 WHERE seq = 4",
        "UPDATE audit_records SET seq = 4 WHERE seq = 5",
        "UPDATE audit_records SET seq = 5 WHERE seq = 100",
        bypass=True,
    )
    finding = first_finding(service)
    assert finding.seq == 5 and "found where record 4 was expected" in finding.problem


@on_sql
def test_case_state_changed_behind_the_library_is_detected(db_url, case_id, service):
    sql(db_url, "UPDATE cases SET state = 'back_to_first_provider' WHERE id = :c", c=case_id)
    finding = first_finding(service)
    assert "differs from replayed state 'referred'" in finding.problem


@on_sql
def test_deleted_transition_row_is_detected(db_url, case_id, service):
    sql(db_url, "DELETE FROM case_transitions WHERE version = 3", bypass=True)
    finding = first_finding(service)
    assert "transition log" in finding.problem


@on_sql
def test_cli_verify_names_the_first_bad_record(db_url, case_id, service):
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify", "--db", db_url])
    assert ok.exit_code == 0 and "no problems" in ok.output
    sql(db_url, "DELETE FROM audit_records WHERE seq = 3", bypass=True)
    bad = runner.invoke(app, ["audit", "verify", "--db", db_url, "--case", case_id])
    assert bad.exit_code == 1
    assert f"case {case_id}, record 4" in bad.output and "FAILED" in bad.output


@on_sql
def test_unreadable_payload_is_reported_not_crashed_on(db_url, case_id, service):
    sql(db_url, "UPDATE audit_records SET payload = '{not json' WHERE seq = 2", bypass=True)
    finding = first_finding(service)
    assert finding.seq is None and f"audit record 2 of case {case_id} cannot be read" in finding.problem
    with pytest.raises(AuditIntegrityError, match="stored history cannot be trusted: audit record 2"):
        service.history(case_id)
    result = CliRunner().invoke(app, ["history", case_id, "--db", db_url])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.startswith("error: stored history cannot be trusted") and result.stderr.count("\n") == 1
    verify = CliRunner().invoke(app, ["audit", "verify", "--db", db_url])
    assert verify.exit_code == 1 and "cannot be read" in verify.stderr


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_unreadable_timestamp_is_reported(db_url, case_id, service):
    """Only SQLite can hold a non-timestamp in a timestamp column (PostgreSQL refuses it)."""
    sql(db_url, "UPDATE audit_records SET recorded_at = 'last tuesday' WHERE seq = 3", bypass=True)
    assert "audit record 3" in first_finding(service).problem
    sql(db_url, "UPDATE cases SET updated_at = 'soon' WHERE id = :c", c=case_id)
    with pytest.raises(AuditIntegrityError, match=f"row {case_id} of cases cannot be read"):
        service.verify()


@on_sql
def test_facts_changed_behind_the_library_are_detected(db_url, case_id, service):
    sql(db_url, """UPDATE cases SET facts = '{"route_version": 1}' WHERE id = :c""", c=case_id)
    assert "stored facts differ" in first_finding(service).problem
