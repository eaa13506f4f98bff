"""All SQL of the relational backends (SQLite and PostgreSQL), in one place.

The hot path uses SQLAlchemy Core statements built once at import, so each command pays for
parameter binding only, not for an ORM session or statement construction. A write unit of work
takes its lock up front: ``BEGIN IMMEDIATE`` on SQLite (see :mod:`storage.db`), ``SELECT ... FOR
UPDATE`` on the case row on PostgreSQL; either way concurrent commands on one case are
serialised and none is lost.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from types import TracebackType
from typing import Any

from sqlalchemy import Connection, Engine, Row, bindparam, select
from sqlalchemy.exc import IntegrityError

from workflow.audit import AuditRecord
from workflow.case import Case, Transition
from workflow.ports import KeyTaken, StoredResult

from .tables import AuditRow, CaseRow, IdempotencyRow, TransitionRow

CASES = CaseRow.__table__  # type: ignore[attr-defined]
AUDIT = AuditRow.__table__  # type: ignore[attr-defined]
TRANSITIONS = TransitionRow.__table__  # type: ignore[attr-defined]
KEYS = IdempotencyRow.__table__  # type: ignore[attr-defined]

_GET_CASE = select(CASES).where(CASES.c.id == bindparam("id"))
_GET_CASE_FOR_UPDATE = _GET_CASE.with_for_update()
_INSERT_CASE = CASES.insert()
_UPDATE_CASE = (
    CASES.update()
    .where(
        CASES.c.id == bindparam("b_id"),
        CASES.c.version == bindparam("b_version"),
        CASES.c.audit_count == bindparam("b_count"),
    )
    .values(
        state=bindparam("state"),
        version=bindparam("version"),
        updated_at=bindparam("updated_at"),
        audit_head=bindparam("audit_head"),
        audit_count=bindparam("audit_count"),
    )
)
_LIST_CASES = select(CASES).order_by(CASES.c.opened_at, CASES.c.id)
_INSERT_AUDIT = AUDIT.insert()
_AUDIT_FOR_CASE = select(AUDIT).where(AUDIT.c.case_id == bindparam("case_id")).order_by(AUDIT.c.sequence)
_AUDIT_ALL = select(AUDIT).order_by(AUDIT.c.sequence)
_INSERT_TRANSITION = TRANSITIONS.insert()
_TRANSITIONS_FOR_CASE = (
    select(TRANSITIONS).where(TRANSITIONS.c.case_id == bindparam("case_id")).order_by(TRANSITIONS.c.version)
)
_GET_KEY = select(KEYS).where(KEYS.c.key == bindparam("key"))
_INSERT_KEY = KEYS.insert()

# Append-only enforcement, created by the initial migration. The message is what a user sees
# when something tries to rewrite history.
APPEND_ONLY_TABLES = ("audit_records", "case_transitions")
APPEND_ONLY_MESSAGE = "is append-only: history cannot be changed"


def append_only_ddl(dialect: str, table: str) -> list[str]:
    if dialect == "sqlite":
        return [
            f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} {APPEND_ONLY_MESSAGE}'); END"
            for verb in ("UPDATE", "DELETE")
        ]
    return [
        f"CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN RAISE EXCEPTION '{table} {APPEND_ONLY_MESSAGE}'; END $$",
        f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()",
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {table}_append_only()",
    ]


def drop_append_only_ddl(dialect: str, table: str) -> list[str]:
    if dialect == "sqlite":
        return [f"DROP TRIGGER IF EXISTS {table}_no_{verb}" for verb in ("update", "delete")]
    return [f"DROP FUNCTION IF EXISTS {table}_append_only() CASCADE"]


# --- row <-> domain ---------------------------------------------------------------------------


def _case(row: Row[Any]) -> Case:
    m = row._mapping
    return Case(
        id=m["id"],
        patient_ref=m["patient_ref"],
        route=m["route"],
        state=m["state"],
        version=m["version"],
        opened_at=m["opened_at"],
        updated_at=m["updated_at"],
        audit_head=m["audit_head"],
        audit_count=m["audit_count"],
    )


def _record(row: Row[Any]) -> AuditRecord:
    m = dict(row._mapping)
    m["payload"] = json.loads(m["payload"])
    return AuditRecord(**m)


def _transition(row: Row[Any]) -> Transition:
    m = dict(row._mapping)
    del m["id"]
    return Transition(**m)


def encode_payload(payload: Any) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# --- repositories -----------------------------------------------------------------------------


class _SqlCases:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, case_id: str, *, lock: bool = False) -> Case | None:
        row = self._conn.execute(_GET_CASE_FOR_UPDATE if lock else _GET_CASE, {"id": case_id}).first()
        return _case(row) if row else None

    def add(self, case: Case) -> None:
        self._conn.execute(_INSERT_CASE, case.__dict__)

    def update(self, case: Case, *, expected_version: int, expected_audit_count: int) -> bool:
        result = self._conn.execute(
            _UPDATE_CASE,
            {
                "b_id": case.id,
                "b_version": expected_version,
                "b_count": expected_audit_count,
                "state": case.state,
                "version": case.version,
                "updated_at": case.updated_at,
                "audit_head": case.audit_head,
                "audit_count": case.audit_count,
            },
        )
        return result.rowcount == 1

    def list(self, state: str | None = None) -> list[Case]:
        stmt = _LIST_CASES if state is None else _LIST_CASES.where(CASES.c.state == state)
        return [_case(row) for row in self._conn.execute(stmt)]


class _SqlAudit:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def append(self, record: AuditRecord) -> None:
        values = dict(record.__dict__)
        del values["sequence"]
        values["payload"] = encode_payload(record.payload)
        self._conn.execute(_INSERT_AUDIT, values)

    def for_case(self, case_id: str) -> list[AuditRecord]:
        return [_record(row) for row in self._conn.execute(_AUDIT_FOR_CASE, {"case_id": case_id})]

    def since(self, recorded_from: datetime | None) -> Iterator[AuditRecord]:
        stmt = _AUDIT_ALL if recorded_from is None else _AUDIT_ALL.where(AUDIT.c.recorded_at >= recorded_from)
        for row in self._conn.execute(stmt):
            yield _record(row)


class _SqlTransitions:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, transition: Transition) -> None:
        self._conn.execute(_INSERT_TRANSITION, transition.__dict__)

    def for_case(self, case_id: str) -> list[Transition]:
        return [_transition(row) for row in self._conn.execute(_TRANSITIONS_FOR_CASE, {"case_id": case_id})]


class _SqlKeys:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, key: str) -> StoredResult | None:
        row = self._conn.execute(_GET_KEY, {"key": key}).first()
        if row is None:
            return None
        m = row._mapping
        return StoredResult(m["key"], m["fingerprint"], m["case_id"], json.loads(m["result"]), m["created_at"])

    def put(self, stored: StoredResult) -> None:
        # No savepoint: a clash means the whole command reruns (and then replays the key).
        try:
            self._conn.execute(
                _INSERT_KEY,
                {
                    "key": stored.key,
                    "fingerprint": stored.fingerprint,
                    "case_id": stored.case_id,
                    "result": encode_payload(stored.result),
                    "created_at": stored.created_at,
                },
            )
        except IntegrityError:
            raise KeyTaken(stored.key) from None


class SqlUnitOfWork:
    """One connection, one transaction; rolled back unless :meth:`commit` was called."""

    def __init__(self, engine: Engine, write: bool) -> None:
        self._engine = engine
        self._write = write
        self._committed = False

    def __enter__(self) -> SqlUnitOfWork:
        conn = self._engine.connect()
        if self._write:
            conn = conn.execution_options(second_opinion_write=True)
        elif self._engine.dialect.name == "postgresql":
            # verification reads several tables: give it one consistent snapshot
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        self._conn = conn
        self._tx = conn.begin()
        self.cases = _SqlCases(conn)
        self.audit = _SqlAudit(conn)
        self.transitions = _SqlTransitions(conn)
        self.keys = _SqlKeys(conn)
        return self

    def commit(self) -> None:
        self._tx.commit()
        self._committed = True

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if not self._committed and self._tx.is_active:
                self._tx.rollback()
        finally:
            self._conn.close()
