"""The transparency log against an insider (issue 17), on memory, SQLite and PostgreSQL: the
database's owner drops the append-only triggers, changes who fired an event and re-chains the
case with the library's own hash function (so ``audit verify`` passes), deletes a whole case,
erases one patient's access records, or restores an older copy; each is caught by a checkpoint
signed before, with its position named or bounded. A checkpoint by an unknown key is refused; two
checkpoints of one size with different roots are a fork; proofs check out with the reference
implementation."""

from __future__ import annotations

import base64
from dataclasses import replace

import pytest
from sqlalchemy import text

from tests.conftest import BACKENDS, DESK, SQL_BACKENDS, fire_example, sql_engine, walk
from workflow import CaseService
from workflow.access.rules import Principal
from workflow.audit import merkle
from workflow.audit.chain import compute_hash, hash_input
from workflow.audit.checkpoint import Checkpoint, Signer, open_checkpoint
from workflow.audit.transparency import ORIGIN, leaf_of
from workflow.service.access import AccessService
from workflow.service.tokens import TokenService
from workflow.service.transparency import LogService

KEY = Signer.generate("second-opinion.test/audit")
TABLES = ("audit_records", "access_records", "access_cases_shown", "case_transitions", "log_leaves", "log_nodes")


def history(service: CaseService) -> list[str]:
    """Three referred cases, each read once through the access-checked service."""
    ids = []
    for i in range(3):
        case_id = service.open_case(f"PX-T{i}", actor=DESK, organisation="org-a").case_id
        walk(service, case_id, "referred")
        ids.append(case_id)
    _, token = TokenService(service.runtime).create("desk-9", "coordinator", "org-a")
    for case_id in ids:
        AccessService(service.runtime).case(Principal(token, client="10.0.0.9"), case_id)
    return ids


def owner(url: str, *statements: str, **params: object) -> None:
    """Statements run as the database's owner, the append-only triggers off meanwhile."""
    engine = sql_engine(url)
    sqlite = engine.dialect.name == "sqlite"
    try:
        with engine.begin() as conn:
            saved = []
            if sqlite:
                saved = [r[0] for r in conn.execute(text("SELECT sql FROM sqlite_master WHERE type = 'trigger'"))]
                for name in [r[0] for r in conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))]:
                    conn.exec_driver_sql(f"DROP TRIGGER {name}")
            else:
                for table in TABLES:
                    conn.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            for statement in statements:
                conn.execute(text(statement), params)
            for ddl in saved:
                conn.exec_driver_sql(ddl)
            if not sqlite:
                for table in TABLES:
                    conn.exec_driver_sql(f"ALTER TABLE {table} ENABLE TRIGGER USER")
    finally:
        engine.dispose()


def verify(service: CaseService, *notes: str) -> list[str]:
    report = LogService(service.runtime).verify([(f"cp{i}", n) for i, n in enumerate(notes)], [KEY.verifier], ORIGIN)
    return report.problems


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_an_honest_log_verifies_and_its_proofs_check_out(service: CaseService) -> None:
    log = LogService(service.runtime)
    ids = history(service)
    first = log.checkpoint([KEY], ORIGIN)
    fire_example(service, ids[0], "withdraw")
    second = log.checkpoint([KEY], ORIGIN)
    assert verify(service, first, second) == []
    old, _ = open_checkpoint(first, [KEY.verifier])
    new, _ = open_checkpoint(second, [KEY.verifier])
    assert new.size > old.size > 0
    bundle = log.extends(first, second, [KEY.verifier])
    proof = [base64.b64decode(p) for p in bundle["proof"]]
    assert merkle.verify_consistency(old.size, new.size, old.root, new.root, proof)
    record = service.history(ids[1])[0]
    found = log.prove("audit", record.sequence or 0, second, [KEY.verifier])
    leaf = merkle.leaf_hash(base64.b64decode(found["entry"]))
    assert leaf == leaf_of("audit", record.sequence or 0, record.hash)
    assert merkle.verify_inclusion(leaf, found["index"], new.size, [base64.b64decode(p) for p in found["proof"]],
                                   new.root)  # fmt: skip


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
def test_a_record_changed_and_rechained_passes_audit_verify_but_not_the_checkpoint(service: CaseService,
                                                                                    db_url: str) -> None:  # fmt: skip
    ids = history(service)
    note = LogService(service.runtime).checkpoint([KEY], ORIGIN)
    # the owner says another desk referred the case, and re-chains it with the library's hash
    records = service.history(ids[1])
    changed = [replace(records[0], actor_id="desk-evil")]
    for r in records[1:]:
        changed.append(replace(r, prev_hash=changed[-1].hash))
        changed[-1] = replace(changed[-1], hash=compute_hash(changed[-1]))
    changed[0] = replace(changed[0], hash=compute_hash(changed[0]))
    for i in range(1, len(changed)):
        changed[i] = replace(changed[i], prev_hash=changed[i - 1].hash)
        changed[i] = replace(changed[i], hash=compute_hash(changed[i]))
    # ... and writes each record's hashed body too, as the library would have written it
    statements = [f"UPDATE audit_records SET actor_id = :a{i}, prev_hash = :p{i}, hash = :h{i}, body = :b{i} "
                  f"WHERE sequence = :s{i}" for i in range(len(changed))]  # fmt: skip
    params = {k: v for i, r in enumerate(changed)
              for k, v in ((f"a{i}", r.actor_id), (f"p{i}", r.prev_hash), (f"h{i}", r.hash), (f"s{i}", r.sequence),
                           (f"b{i}", hash_input(r).decode()))}
    owner(db_url, *statements, "UPDATE cases SET audit_head = :head WHERE id = :case", **params,
          head=changed[-1].hash, case=ids[1])  # fmt: skip
    assert service.verify(ids[1]).ok  # the chains alone cannot tell
    problems = verify(service, note)
    position = min(int(p.split()[1].rstrip(":")) for p in problems if p.startswith("position"))
    assert f"position {position}: audit record {changed[0].sequence} changed after it was logged" in problems
    assert any(p.startswith("cp0: the log's first") and "do not hash to its root" in p for p in problems)


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
def test_the_owner_who_also_rewrites_the_log_is_caught_by_the_checkpoint(service: CaseService, db_url: str) -> None:
    ids = history(service)
    log = LogService(service.runtime)
    early = log.checkpoint([KEY], ORIGIN)
    fire_example(service, ids[2], "withdraw")
    late = log.checkpoint([KEY], ORIGIN)
    # a case deleted with every row about it, and the log rebuilt without it
    owner(db_url, *[f"DELETE FROM {t} WHERE case_id = :c" for t in ("change_events", "deadlines", "idempotency_keys",
                                                                   "case_transitions", "audit_records")],
          "DELETE FROM access_cases_shown WHERE case_id = :c", "DELETE FROM access_records WHERE case_id = :c",
          "DELETE FROM cases WHERE id = :c", "DELETE FROM log_leaves", "DELETE FROM log_nodes", c=ids[2])  # fmt: skip
    history(service)  # and life goes on: the log grows past both checkpoints' sizes
    log.sequence()  # the rebuilt log: every remaining record, in order, consistent with itself
    problems = verify(service, early, late)
    assert [p for p in problems if not p.startswith("cp")] == []  # the log agrees with itself
    heads = ["cp0: the log's first 18 records", "cp1: the log's first 19 records"]
    assert [p.split(" (")[0] for p in problems] == heads
    assert "(the first difference at a position from 0 to 17)" in problems[0]


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
def test_a_witness_that_kept_the_leaves_names_the_first_position_of_a_rebuilt_log(service: CaseService,
                                                                                   db_url: str) -> None:  # fmt: skip
    """The same attack, against a witness that kept the leaves beside the checkpoints (what the
    worker's witness directory holds): the first position where the rebuilt log departs from them
    is named exactly, not bounded; a witnessed copy that does not match its checkpoint is not believed."""
    ids = history(service)
    log = LogService(service.runtime)
    note = log.checkpoint([KEY], ORIGIN)
    kept = log.leaves()
    deleted = {r.sequence for r in service.history(ids[2])}
    first = min(leaf.position for leaf in kept if leaf.kind == "audit" and leaf.ref in deleted)
    owner(db_url, *[f"DELETE FROM {t} WHERE case_id = :c" for t in ("change_events", "deadlines", "idempotency_keys",
                                                                   "case_transitions", "audit_records")],
          "DELETE FROM access_cases_shown WHERE case_id = :c", "DELETE FROM access_records WHERE case_id = :c",
          "DELETE FROM cases WHERE id = :c", "DELETE FROM log_leaves", "DELETE FROM log_nodes", c=ids[2])  # fmt: skip
    history(service)
    log.sequence()
    report = log.verify([("cp", note)], [KEY.verifier], ORIGIN, [("leaves", kept)])
    (problem,) = report.problems
    assert f"(the first difference at position {first}: witnessed as audit record {min(deleted)}; " in problem
    # a witnessed copy edited to agree with the rebuilt log no longer hashes to the signed root
    forged = [replace(leaf, leaf=b"\0" * 32) if leaf.position == first else leaf for leaf in kept]
    report = log.verify([("cp", note)], [KEY.verifier], ORIGIN, [("leaves", forged)])
    assert report.problems[0] == ("the witnessed leaves do not hash to the root of cp: that copy of the leaves is "
                                  "not to be believed")
    assert "(the first difference at a position from 0 to " in report.problems[1]


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
def test_an_older_copy_restored_and_erased_access_records(service: CaseService, db_url: str) -> None:
    ids = history(service)
    note = LogService(service.runtime).checkpoint([KEY], ORIGIN)
    size = open_checkpoint(note, [KEY.verifier])[0].size
    # who saw the patient of ids[0]: erased from the access log (and its leaves)
    owner(db_url, "DELETE FROM access_records WHERE case_id = :c", c=ids[0])
    problems = verify(service, note)
    assert any(p.endswith("is gone (deleted)") and " access record " in p for p in problems), problems
    # an older copy: the last records and their leaves gone
    owner(db_url, "DELETE FROM log_leaves WHERE position >= :n", n=size - 3)
    problems = verify(service, note)
    assert f"cp0: the log holds {size - 3} records, the checkpoint {size}: records from position {size - 3} on " \
           "were removed, or an older copy of the database was restored" in problems


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_an_unknown_key_and_a_fork(service: CaseService) -> None:
    history(service)
    note = LogService(service.runtime).checkpoint([KEY], ORIGIN)
    stranger = Signer.generate("second-opinion.test/audit")
    forged = LogService(service.runtime).checkpoint([stranger], ORIGIN)
    assert verify(service, forged) == ["cp0: signed by an unknown key (second-opinion.test/audit); give the public "
                                       "key it was signed with"]  # fmt: skip
    cp, _ = open_checkpoint(note, [KEY.verifier])
    other = Checkpoint(ORIGIN, cp.size, merkle.leaf_hash(b"another history")).sign([KEY])
    problems = verify(service, note, other)
    assert any("a fork" in p for p in problems), problems
