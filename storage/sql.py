"""All SQL of the relational backends (SQLite and PostgreSQL), in one place.

Statements are written once, as SQLAlchemy Core against the SQLModel tables, and compiled once
per dialect (:class:`Compiled`). A unit of work then runs them on the pooled DBAPI connection
itself: a ``fire`` is five short statements, and SQLAlchemy's per-statement execution machinery
would cost more than the database work (``bench/fire_vs_raw.py`` measures the difference).
Values crossing that boundary are converted here, in one place: timestamps go in as aware UTC
and come out as aware UTC on both backends, naive ones are refused.

A write unit of work takes its lock up front: ``BEGIN IMMEDIATE`` on SQLite, ``SELECT ... FOR
UPDATE`` on the case row on PostgreSQL; either way concurrent commands on one case are
serialised and none is lost. Write units on PostgreSQL run at READ COMMITTED whatever the
server's default, so that what a lock guards is read after the lock is granted; read units run
at REPEATABLE READ so that a verification sees the case rows and their records as of one instant.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from types import TracebackType
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine, bindparam, or_, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, ColumnElement
from sqlalchemy.types import NullType

from workflow.access.log import AccessRecord
from workflow.access.tokens import ApiToken
from workflow.audit.chain import GENESIS, AuditRecord
from workflow.cases.case import Case, Transition
from workflow.deadlines.policies import RUNNING, Deadline
from workflow.errors import AuditIntegrityError
from workflow.ports import ByCase, KeyTaken, Notification, StoredResult, UnreadableRow

from .tables import AccessRow, AuditRow, CaseRow, DeadlineRow, IdempotencyRow, OutboxRow, TokenRow, TransitionRow

CASES = CaseRow.__table__  # type: ignore[attr-defined]
AUDIT = AuditRow.__table__  # type: ignore[attr-defined]
TRANSITIONS = TransitionRow.__table__  # type: ignore[attr-defined]
KEYS = IdempotencyRow.__table__  # type: ignore[attr-defined]
DEADLINES = DeadlineRow.__table__  # type: ignore[attr-defined]
OUTBOX = OutboxRow.__table__  # type: ignore[attr-defined]
TOKENS = TokenRow.__table__  # type: ignore[attr-defined]
ACCESS = AccessRow.__table__  # type: ignore[attr-defined]


class _InCases(ColumnElement[bool]):
    """``column IN (the ids bound as :case_ids)``: an array on PostgreSQL (``= ANY``), a JSON
    array on SQLite (``json_each``), so that one compiled statement serves any number of cases."""

    inherit_cache = True

    def __init__(self, column: Any) -> None:
        self.column = column
        self.param: Any = bindparam("case_ids")
        self.type: Any = NullType()


@compiles(_InCases)
def _in_cases_sqlite(element: _InCases, compiler: SQLCompiler, **kw: Any) -> str:
    column, param = compiler.process(element.column, **kw), compiler.process(element.param, **kw)
    return f"{column} IN (SELECT value FROM json_each({param}))"


@compiles(_InCases, "postgresql")
def _in_cases_postgresql(element: _InCases, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{compiler.process(element.column, **kw)} = ANY({compiler.process(element.param, **kw)})"


_GET_CASE = select(CASES).where(CASES.c.id == bindparam("id"))
_GET_CASE_FOR_UPDATE = _GET_CASE.with_for_update()
_INSERT_CASE = CASES.insert().inline()
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
        facts=bindparam("facts"),
    )
)
_LIST_CASES = select(CASES).order_by(CASES.c.opened_at, CASES.c.id)
_CASES_BY_BSN = select(CASES).where(CASES.c.bsn_hash == bindparam("bsn_hash")).order_by(CASES.c.opened_at, CASES.c.id)
_LIST_CASES_IN_STATE = select(CASES).where(CASES.c.state == bindparam("state")).order_by(CASES.c.opened_at, CASES.c.id)
_INSERT_AUDIT = AUDIT.insert().inline()
_AUDIT_FOR_CASE = select(AUDIT).where(AUDIT.c.case_id == bindparam("case_id")).order_by(AUDIT.c.sequence)
_AUDIT_FOR_CASES = select(AUDIT).where(_InCases(AUDIT.c.case_id)).order_by(AUDIT.c.sequence)
_AUDIT_ALL = select(AUDIT).order_by(AUDIT.c.sequence)
_AUDIT_SINCE = select(AUDIT).where(AUDIT.c.recorded_at >= bindparam("since")).order_by(AUDIT.c.sequence)
_INSERT_TRANSITION = TRANSITIONS.insert().inline()
_TRANSITIONS_FOR_CASE = (
    select(TRANSITIONS).where(TRANSITIONS.c.case_id == bindparam("case_id")).order_by(TRANSITIONS.c.version)
)
_TRANSITIONS_FOR_CASES = select(TRANSITIONS).where(_InCases(TRANSITIONS.c.case_id)).order_by(TRANSITIONS.c.version)
_GET_KEY = select(KEYS).where(KEYS.c.key == bindparam("key"))
_INSERT_KEY = KEYS.insert().inline()
_DEADLINE_COLUMNS = [c.name for c in DEADLINES.columns if c.name != "id"]
_DEADLINES_FOR_CASE = select(DEADLINES).where(DEADLINES.c.case_id == bindparam("case_id")).order_by(DEADLINES.c.id)
_DEADLINES_FOR_CASES = select(DEADLINES).where(_InCases(DEADLINES.c.case_id)).order_by(DEADLINES.c.id)
_INSERT_DEADLINE = DEADLINES.insert().inline()
_UPDATE_DEADLINE = (
    DEADLINES.update()
    .where(DEADLINES.c.id == bindparam("b_id"))
    .values({name: bindparam(name) for name in _DEADLINE_COLUMNS})
)
# The sweep's claim: the case of the earliest due deadline, locked, skipping cases another
# worker or a command holds. Locking the case (not the deadline) first keeps the lock order of
# ``fire`` (case, then its deadlines), so the two can never deadlock. The partial index on
# running deadlines by next_action_at serves the WHERE and the ORDER BY.
_CLAIM_DUE = (
    select(CASES.c.id)
    .select_from(DEADLINES.join(CASES, CASES.c.id == DEADLINES.c.case_id))
    .where(DEADLINES.c.state == RUNNING, DEADLINES.c.next_action_at <= bindparam("now"))
    .order_by(DEADLINES.c.next_action_at)
    .limit(1)
    .with_for_update(of=CASES, skip_locked=True)
)
_DEADLINES_ALL = select(DEADLINES).order_by(DEADLINES.c.due_at, DEADLINES.c.id)
_DEADLINES_IN_STATE = (
    select(DEADLINES).where(DEADLINES.c.state == bindparam("state")).order_by(DEADLINES.c.due_at, DEADLINES.c.id)
)
# The overdue listing: running deadlines due before a moment, read through the partial index on
# running deadlines by (due_at, id), which also gives the order; its cost follows the overdue
# deadlines, not every running one.
_DEADLINES_DUE_BEFORE = (
    select(DEADLINES).where(DEADLINES.c.due_at < bindparam("due_before")).order_by(DEADLINES.c.due_at, DEADLINES.c.id)
)
_DEADLINES_IN_STATE_DUE_BEFORE = (
    select(DEADLINES)
    .where(DEADLINES.c.state == bindparam("state"), DEADLINES.c.due_at < bindparam("due_before"))
    .order_by(DEADLINES.c.due_at, DEADLINES.c.id)
)
_INSERT_OUTBOX = OUTBOX.insert().inline()
_CLAIM_OUTBOX = (
    select(OUTBOX)
    .where(
        OUTBOX.c.status == "pending",
        OUTBOX.c.next_attempt_at <= bindparam("now"),
        or_(OUTBOX.c.leased_until.is_(None), OUTBOX.c.leased_until <= bindparam("now")),
    )
    .order_by(OUTBOX.c.next_attempt_at, OUTBOX.c.id)
    .limit(100)
    .with_for_update(skip_locked=True)
)
_UPDATE_OUTBOX = (
    OUTBOX.update()
    .where(OUTBOX.c.id == bindparam("b_id"))
    .values(
        status=bindparam("status"),
        attempts=bindparam("attempts"),
        next_attempt_at=bindparam("next_attempt_at"),
        leased_until=bindparam("leased_until"),
        last_error=bindparam("last_error"),
        delivered_at=bindparam("delivered_at"),
    )
)
_OUTBOX_ALL = select(OUTBOX).order_by(OUTBOX.c.id)
_INSERT_TOKEN = TOKENS.insert().inline()
_GET_TOKEN = select(TOKENS).where(TOKENS.c.id == bindparam("id"))
_TOKEN_BY_HASH = select(TOKENS).where(TOKENS.c.token_hash == bindparam("token_hash"))
_REVOKE_TOKEN = TOKENS.update().where(TOKENS.c.id == bindparam("b_id")).values(revoked_at=bindparam("revoked_at"))
_TOKENS_ALL = select(TOKENS).order_by(TOKENS.c.created_at, TOKENS.c.id)
_INSERT_ACCESS = ACCESS.insert().inline()
_ACCESS_HEAD = select(ACCESS.c.hash).order_by(ACCESS.c.sequence.desc()).limit(1)
_ACCESS_ALL = select(ACCESS).order_by(ACCESS.c.sequence)
_ACCESS_FOR_CASE = select(ACCESS).where(ACCESS.c.case_id == bindparam("case_id")).order_by(ACCESS.c.sequence)
_ACCESS_FOR_ORGANISATION = (
    select(ACCESS)
    .where(
        or_(
            ACCESS.c.case_organisation == bindparam("organisation"),
            (ACCESS.c.case_organisation.is_(None)) & (ACCESS.c.organisation == bindparam("organisation")),
        )
    )
    .order_by(ACCESS.c.sequence)
)
# One appender at a time extends the chain: SQLite's write lock already serialises; PostgreSQL
# takes this transaction-scoped advisory lock (7513, after the standard) before reading the head.
_PG_ACCESS_LOCK = "SELECT pg_advisory_xact_lock(7513)"
_OUTBOX_IN_STATUS = select(OUTBOX).where(OUTBOX.c.status == bindparam("status")).order_by(OUTBOX.c.id)

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


# --- compiled statements and value conversion --------------------------------------------------

_TIMESTAMPS = frozenset(
    {"opened_at", "updated_at", "occurred_at", "recorded_at", "created_at", "started_at", "due_at", "next_action_at",
     "stopped_at", "now", "next_attempt_at", "leased_until", "delivered_at", "revoked_at", "at"}
)  # fmt: skip
# stored as canonical JSON text (audit payloads are handled by _SqlAudit)
_JSON = frozenset({"facts", "explanation", "name_hashes"})
_SQLITE_NAMED = sqlite.dialect(paramstyle="named")


def _columns(table: Any, *skip: str) -> list[str]:
    return [c.name for c in table.columns if c.name not in skip]


_STATEMENTS: dict[str, tuple[ClauseElement, list[str] | None]] = {
    "get_case": (_GET_CASE, None),
    "get_case_for_update": (_GET_CASE_FOR_UPDATE, None),
    "insert_case": (_INSERT_CASE, _columns(CASES)),
    "update_case": (_UPDATE_CASE, None),
    "list_cases": (_LIST_CASES, None),
    "list_cases_in_state": (_LIST_CASES_IN_STATE, None),
    "cases_by_bsn": (_CASES_BY_BSN, None),
    "insert_audit": (_INSERT_AUDIT, _columns(AUDIT, "sequence")),
    "audit_for_case": (_AUDIT_FOR_CASE, None),
    "audit_for_cases": (_AUDIT_FOR_CASES, None),
    "audit_all": (_AUDIT_ALL, None),
    "audit_since": (_AUDIT_SINCE, None),
    "insert_transition": (_INSERT_TRANSITION, _columns(TRANSITIONS, "id")),
    "transitions_for_case": (_TRANSITIONS_FOR_CASE, None),
    "transitions_for_cases": (_TRANSITIONS_FOR_CASES, None),
    "get_key": (_GET_KEY, None),
    "insert_key": (_INSERT_KEY, _columns(KEYS)),
    "deadlines_for_case": (_DEADLINES_FOR_CASE, None),
    "deadlines_for_cases": (_DEADLINES_FOR_CASES, None),
    "insert_deadline": (_INSERT_DEADLINE, _columns(DEADLINES)),
    "update_deadline": (_UPDATE_DEADLINE, None),
    "claim_due": (_CLAIM_DUE, None),
    "deadlines_all": (_DEADLINES_ALL, None),
    "deadlines_in_state": (_DEADLINES_IN_STATE, None),
    "deadlines_due_before": (_DEADLINES_DUE_BEFORE, None),
    "deadlines_in_state_due_before": (_DEADLINES_IN_STATE_DUE_BEFORE, None),
    "insert_outbox": (_INSERT_OUTBOX, _columns(OUTBOX, "id")),
    "claim_outbox": (_CLAIM_OUTBOX, None),
    "update_outbox": (_UPDATE_OUTBOX, None),
    "outbox_all": (_OUTBOX_ALL, None),
    "outbox_in_status": (_OUTBOX_IN_STATUS, None),
    "insert_token": (_INSERT_TOKEN, _columns(TOKENS)),
    "get_token": (_GET_TOKEN, None),
    "token_by_hash": (_TOKEN_BY_HASH, None),
    "revoke_token": (_REVOKE_TOKEN, None),
    "tokens_all": (_TOKENS_ALL, None),
    "insert_access": (_INSERT_ACCESS, _columns(ACCESS, "sequence")),
    "access_head": (_ACCESS_HEAD, None),
    "access_all": (_ACCESS_ALL, None),
    "access_for_case": (_ACCESS_FOR_CASE, None),
    "access_for_organisation": (_ACCESS_FOR_ORGANISATION, None),
}


class Compiled:
    """Every statement above as SQL text for one engine's dialect, and its value conversions."""

    def __init__(self, engine: Engine) -> None:
        self.dialect = engine.dialect.name
        compile_for = _SQLITE_NAMED if self.dialect == "sqlite" else engine.dialect
        compiled = {
            name: stmt.compile(dialect=compile_for, column_keys=keys) for name, (stmt, keys) in _STATEMENTS.items()
        }
        self.sql = {name: str(c) for name, c in compiled.items()}
        # constants written into a statement (a state name, LIMIT 1) become bound parameters
        # with fixed values; they are merged in at execution, for the few statements that have them
        self.constants = {
            name: fixed
            for name, c in compiled.items()
            if (fixed := {k: v for k, v in c.params.items() if type(v) in (str, int)})
        }
        self.integrity_error: type[Exception] = engine.dialect.loaded_dbapi.IntegrityError

    def ts_in(self, value: datetime) -> Any:
        if value.tzinfo is UTC:  # what the domain hands over: no conversion needed
            if self.dialect == "sqlite":
                return value.isoformat(sep=" ", timespec="microseconds")[:-6]  # without "+00:00"
            return value
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime refused: store timezone-aware UTC")
        value = value.astimezone(UTC)
        # SQLite has no timestamp type: fixed-width UTC text sorts and compares correctly
        if self.dialect == "sqlite":
            return value.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        return value

    def ts_out(self, value: Any) -> datetime:
        if isinstance(value, str):
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        return value.astimezone(UTC)  # type: ignore[no-any-return]

    def params(self, values: dict[str, Any]) -> dict[str, Any]:
        """Values as the driver takes them; only the few keys that need it are converted."""
        out = dict(values)
        for name in _TIMESTAMPS.intersection(out):
            if out[name] is not None:
                out[name] = self.ts_in(out[name])
        for name in _JSON.intersection(out):
            if out[name] is not None:
                out[name] = encode_payload(out[name])
        return out

    def row(self, names: Sequence[str], values: Sequence[Any]) -> dict[str, Any]:
        out = dict(zip(names, values, strict=True))
        for name in _TIMESTAMPS.intersection(out):
            if out[name] is not None:
                out[name] = self.ts_out(out[name])
        for name in _JSON.intersection(out):
            if out[name] is not None:
                out[name] = json.loads(out[name])
        return out


def encode_payload(payload: Any) -> str:
    return _PAYLOAD_ENCODER.encode(payload)


_PAYLOAD_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
"""What ``json.dumps`` with these options would build on every call (several per command), built once."""


# --- repositories -----------------------------------------------------------------------------


class _Runner:
    """Executes compiled statements on one DBAPI cursor."""

    def __init__(self, compiled: Compiled, cursor: Any) -> None:
        self.compiled = compiled
        self.cursor = cursor

    def run(self, name: str, values: dict[str, Any]) -> Any:
        params = self.compiled.params(values)
        if name in self.compiled.constants:
            params = {**self.compiled.constants[name], **params}
        self.cursor.execute(self.compiled.sql[name], params)
        return self.cursor

    def rows(self, name: str, values: dict[str, Any]) -> list[dict[str, Any]]:
        cursor = self.run(name, values)
        names = [d[0] for d in cursor.description]
        out = []
        for raw in cursor.fetchall():
            try:
                row = self.compiled.row(names, raw)
                if "payload" in row:
                    row["payload"] = json.loads(row["payload"])
            except (ValueError, TypeError, AttributeError) as exc:
                raise UnreadableRow(_describe(dict(zip(names, raw, strict=True))), str(exc)) from None
            out.append(row)
        return out


def _describe(raw: dict[str, Any]) -> str:
    if "hash" in raw:
        return f"audit record {raw['seq']} of case {raw['case_id']}"
    if "audit_seq" in raw:
        return f"transition {raw['version']} of case {raw['case_id']}"
    if "explanation" in raw:
        return f"deadline {raw['id']}"
    return f"row {raw.get('id') or raw.get('key')} of {'cases' if 'patient_ref' in raw else 'idempotency_keys'}"


def _ts_sqlite(value: Any) -> datetime:
    """:meth:`Compiled.ts_out` for SQLite's fixed-width UTC text, in one C call rather than two."""
    if isinstance(value, str):
        try:
            found = datetime.fromisoformat(value + "+00:00")
        except ValueError:
            found = None
        if found is not None and found.tzinfo is UTC:  # otherwise not text this module wrote: judge it as ts_out does
            return found
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value.astimezone(UTC)  # type: ignore[no-any-return]


class LazyJson(Mapping[str, Any]):
    """A JSON object stored as text, decoded on first use. Listings of deadlines carry their
    explanation (about 1 KB of JSON each) this way, so it costs nothing unless it is read; text
    that is not a JSON object raises :class:`AuditIntegrityError` there, naming its row."""

    __slots__ = ("_text", "_value", "_what")

    def __init__(self, text: str, what: Callable[[], str]) -> None:
        self._text = text
        self._value: dict[str, Any] | None = None
        self._what = what

    def decoded(self) -> dict[str, Any]:
        if self._value is None:
            try:
                value = json.loads(self._text)
                if not isinstance(value, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                raise AuditIntegrityError(str(UnreadableRow(self._what(), str(exc)))) from None
            self._value = value
        return self._value

    def __getitem__(self, key: str) -> Any:
        return self.decoded()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.decoded())

    def __len__(self) -> int:
        return len(self.decoded())

    def __repr__(self) -> str:
        return repr(self.decoded())


_R = TypeVar("_R")


class _Reader(Generic[_R]):
    """Reads one statement's rows into instances of the dataclass ``make`` (its columns but
    ``drop`` are its fields), the per-column conversions worked out once per statement rather
    than once per row: verification reads every record there is, a listing every row it lists.
    Columns in ``lazy`` (JSON objects) become :class:`LazyJson`."""

    def __init__(
        self, runner: _Runner, name: str, values: dict[str, Any], make: type[_R], drop: tuple[str, ...] = (),
        lazy: frozenset[str] = frozenset(),
    ) -> None:  # fmt: skip
        self._cursor = runner.run(name, values)
        self._names: list[str] = [d[0] for d in self._cursor.description]
        self._drop = drop
        # when the columns are exactly the fields, an instance is made as unpickling makes one
        # (its __dict__ filled in), several times faster than the frozen dataclass's __init__
        fields = {f.name for f in dataclasses.fields(make)}  # type: ignore[arg-type]
        self._fill = set(self._names) - set(drop) == fields and not hasattr(make, "__post_init__")
        ts = _ts_sqlite if runner.compiled.dialect == "sqlite" else runner.compiled.ts_out
        self._steps: list[tuple[int, Callable[[Any], Any]]] = [
            (i, ts if column in _TIMESTAMPS else json.loads)
            for i, column in enumerate(self._names)
            if column in _TIMESTAMPS or (column not in lazy and (column in _JSON or column == "payload"))
        ]
        self._lazy = [i for i, column in enumerate(self._names) if column in lazy]
        self._make = make

    def _describe(self, raw: Sequence[Any]) -> str:
        return _describe(dict(zip(self._names, raw, strict=True)))

    def convert(self, raw: Sequence[Any]) -> _R:
        values = list(raw)
        try:
            for i, step in self._steps:
                if values[i] is not None:
                    values[i] = step(values[i])
        except (ValueError, TypeError, AttributeError) as exc:
            raise UnreadableRow(self._describe(raw), str(exc)) from None
        for i in self._lazy:
            if values[i] is not None:
                values[i] = LazyJson(values[i], partial(_describe_column, self._names, i, raw))
        state = dict(zip(self._names, values, strict=True))
        for name in self._drop:
            del state[name]
        if not self._fill:
            return self._make(**state)
        made = object.__new__(self._make)
        made.__dict__.update(state)
        return made

    def all(self) -> list[_R]:
        return [self.convert(raw) for raw in self._cursor.fetchall()]

    def by_case(self) -> ByCase[_R]:
        """Rows grouped by their ``case_id``, in the statement's order within each case. An
        unreadable row becomes its case's error: the first one, where a single-case read stops."""
        rows: dict[str, list[_R]] = {}
        unreadable: dict[str, UnreadableRow] = {}
        at = self._names.index("case_id")
        for raw in self._cursor.fetchall():
            case_id = raw[at]
            if case_id in unreadable:
                continue
            try:
                rows.setdefault(case_id, []).append(self.convert(raw))
            except UnreadableRow as problem:
                unreadable[case_id] = problem
        return ByCase(rows, unreadable)


def _describe_column(names: list[str], i: int, raw: Sequence[Any]) -> str:
    return f"the {names[i]} of {_describe(dict(zip(names, raw, strict=True)))}"


def _ids(runner: _Runner, case_ids: Sequence[str]) -> dict[str, Any]:
    return {"case_ids": json.dumps(list(case_ids)) if runner.compiled.dialect == "sqlite" else list(case_ids)}


def _case(m: dict[str, Any]) -> Case:
    return Case(**{**m, "name_hashes": tuple(m["name_hashes"])})


def _record(m: dict[str, Any]) -> AuditRecord:
    return AuditRecord(**m)


def _transition(m: dict[str, Any]) -> Transition:
    del m["id"]
    return Transition(**m)


class _SqlCases:
    def __init__(self, runner: _Runner) -> None:
        self._run = runner

    def get(self, case_id: str, *, lock: bool = False) -> Case | None:
        found = self._run.rows("get_case_for_update" if lock else "get_case", {"id": case_id})
        return _case(found[0]) if found else None

    def add(self, case: Case) -> None:
        self._run.run("insert_case", dict(case.__dict__))

    def update(self, case: Case, *, expected_version: int, expected_audit_count: int) -> bool:
        values = {
            "b_id": case.id,
            "b_version": expected_version,
            "b_count": expected_audit_count,
            "state": case.state,
            "version": case.version,
            "updated_at": case.updated_at,
            "audit_head": case.audit_head,
            "audit_count": case.audit_count,
            "facts": case.facts,
        }
        return self._run.run("update_case", values).rowcount == 1  # type: ignore[no-any-return]

    def find_by_bsn_hash(self, bsn_hash: str) -> list[Case]:
        return [_case(m) for m in self._run.rows("cases_by_bsn", {"bsn_hash": bsn_hash})]

    def list(self, state: str | None = None) -> list[Case]:
        if state is None:
            return [_case(m) for m in self._run.rows("list_cases", {})]
        return [_case(m) for m in self._run.rows("list_cases_in_state", {"state": state})]


class _SqlAudit:
    def __init__(self, runner: _Runner) -> None:
        self._run = runner

    def append(self, record: AuditRecord) -> None:
        values = dict(record.__dict__)
        del values["sequence"]
        values["payload"] = encode_payload(record.payload)
        self._run.run("insert_audit", values)

    def for_case(self, case_id: str) -> list[AuditRecord]:
        return [_record(m) for m in self._run.rows("audit_for_case", {"case_id": case_id})]

    def for_cases(self, case_ids: Sequence[str]) -> ByCase[AuditRecord]:
        return _Reader(self._run, "audit_for_cases", _ids(self._run, case_ids), AuditRecord).by_case()

    def since(self, recorded_from: datetime | None) -> Iterator[AuditRecord]:
        rows = (
            self._run.rows("audit_all", {})
            if recorded_from is None
            else self._run.rows("audit_since", {"since": recorded_from})
        )
        return (_record(m) for m in rows)


class _SqlTransitions:
    def __init__(self, runner: _Runner) -> None:
        self._run = runner

    def add(self, transition: Transition) -> None:
        self._run.run("insert_transition", dict(transition.__dict__))

    def for_case(self, case_id: str) -> list[Transition]:
        return [_transition(m) for m in self._run.rows("transitions_for_case", {"case_id": case_id})]

    def for_cases(self, case_ids: Sequence[str]) -> ByCase[Transition]:
        return _Reader(self._run, "transitions_for_cases", _ids(self._run, case_ids), Transition, ("id",)).by_case()


class _SqlKeys:
    def __init__(self, runner: _Runner) -> None:
        self._run = runner

    def get(self, key: str) -> StoredResult | None:
        found = self._run.rows("get_key", {"key": key})
        if not found:
            return None
        m = found[0]
        try:
            result = json.loads(m["result"])
        except ValueError as exc:
            raise UnreadableRow(f"idempotency key {key!r}", str(exc)) from None
        return StoredResult(m["key"], m["fingerprint"], m["case_id"], result, m["created_at"])

    def put(self, stored: StoredResult) -> None:
        values = {
            "key": stored.key,
            "fingerprint": stored.fingerprint,
            "case_id": stored.case_id,
            "result": encode_payload(stored.result),
            "created_at": stored.created_at,
        }
        # No savepoint: a clash means the whole command reruns (and then replays the key).
        try:
            self._run.run("insert_key", values)
        except self._run.compiled.integrity_error:
            raise KeyTaken(stored.key) from None


def _deadline(m: dict[str, Any]) -> Deadline:
    del m["id"]
    return Deadline(**m)


class _SqlDeadlines:
    def __init__(self, runner: _Runner) -> None:
        self._run = runner

    def for_case(self, case_id: str) -> list[Deadline]:
        return [_deadline(m) for m in self._run.rows("deadlines_for_case", {"case_id": case_id})]

    def for_cases(self, case_ids: Sequence[str]) -> ByCase[Deadline]:
        return _Reader(self._run, "deadlines_for_cases", _ids(self._run, case_ids), Deadline, ("id",)).by_case()

    def save(self, deadline: Deadline, *, new: bool = False) -> None:
        values = {name: getattr(deadline, name) for name in _DEADLINE_COLUMNS}
        if isinstance(deadline.explanation, LazyJson):  # one from a listing, saved as it is
            values["explanation"] = deadline.explanation.decoded()
        if new or self._run.run("update_deadline", {"b_id": deadline.id, **values}).rowcount == 0:
            self._run.run("insert_deadline", {"id": deadline.id, **values})

    def claim_due(self, now: datetime) -> str | None:
        found = self._run.run("claim_due", {"now": now}).fetchone()
        return None if found is None else str(found[0])

    def list(self, state: str | None = None, due_before: datetime | None = None) -> list[Deadline]:
        # the filters are the SQL's; explanations stay undecoded until someone reads one
        values: dict[str, Any] = {} if state is None else {"state": state}
        name = "deadlines_all" if state is None else "deadlines_in_state"
        if due_before is not None:
            try:
                values["due_before"] = self._run.compiled.ts_in(due_before)
            except OverflowError:  # a bound past either end of time in UTC: before every moment, or after
                if due_before.year == datetime.min.year:
                    return []
                values["due_before"] = self._run.compiled.ts_in(datetime.max.replace(tzinfo=UTC))
            name = "deadlines_due_before" if state is None else "deadlines_in_state_due_before"
        return _Reader(self._run, name, values, Deadline, ("id",), lazy=frozenset({"explanation"})).all()


def _notification(m: dict[str, Any]) -> Notification:
    return Notification(**m)


def _outbox_outcome(notification: Notification) -> dict[str, Any]:
    return {
        "b_id": notification.id,
        "status": notification.status,
        "attempts": notification.attempts,
        "next_attempt_at": notification.next_attempt_at,
        "leased_until": notification.leased_until,
        "last_error": notification.last_error,
        "delivered_at": notification.delivered_at,
    }


class _SqlOutbox:
    def __init__(self, runner: _Runner) -> None:
        self._run = runner

    def add(self, notification: Notification) -> None:
        values = dict(notification.__dict__)
        del values["id"]
        values["payload"] = encode_payload(notification.payload)
        self._run.run("insert_outbox", values)

    def claim(self, now: datetime, lease_until: datetime, limit: int) -> list[Notification]:
        rows = self._run.rows("claim_outbox", {"now": now})[:limit]
        claimed = [_notification({**m, "leased_until": lease_until}) for m in rows]
        self.save_all(claimed)
        return claimed

    def save(self, notification: Notification) -> None:
        self._run.run("update_outbox", _outbox_outcome(notification))

    def save_all(self, notifications: Sequence[Notification]) -> None:
        # executemany: psycopg pipelines the statements, one round trip rather than one each
        if notifications:
            params = [self._run.compiled.params(_outbox_outcome(n)) for n in notifications]
            self._run.cursor.executemany(self._run.compiled.sql["update_outbox"], params)

    def list(self, status: str | None = None) -> list[Notification]:
        rows = (
            self._run.rows("outbox_all", {})
            if status is None
            else self._run.rows("outbox_in_status", {"status": status})
        )
        return [_notification(m) for m in rows]


class _SqlTokens:
    def __init__(self, runner: _Runner) -> None:
        self._run = runner

    def add(self, token: ApiToken) -> None:
        self._run.run("insert_token", dict(token.__dict__))

    def get(self, token_id: str) -> ApiToken | None:
        found = self._run.rows("get_token", {"id": token_id})
        return ApiToken(**found[0]) if found else None

    def by_hash(self, token_hash: str) -> ApiToken | None:
        found = self._run.rows("token_by_hash", {"token_hash": token_hash})
        return ApiToken(**found[0]) if found else None

    def save(self, token: ApiToken) -> None:
        self._run.run("revoke_token", {"b_id": token.id, "revoked_at": token.revoked_at})

    def list(self) -> list[ApiToken]:
        return [ApiToken(**m) for m in self._run.rows("tokens_all", {})]


class _SqlAccess:
    def __init__(self, runner: _Runner) -> None:
        self._run = runner

    def head(self) -> str:
        if self._run.compiled.dialect != "sqlite":
            self._run.cursor.execute(_PG_ACCESS_LOCK)
        found = self._run.rows("access_head", {})
        return str(found[0]["hash"]) if found else GENESIS

    def append(self, records: list[AccessRecord]) -> None:
        rows = [self._run.compiled.params({k: v for k, v in r.__dict__.items() if k != "sequence"}) for r in records]
        if rows:
            self._run.cursor.executemany(self._run.compiled.sql["insert_access"], rows)

    def all(self) -> list[AccessRecord]:
        return [AccessRecord(**m) for m in self._run.rows("access_all", {})]

    def for_case(self, case_id: str) -> list[AccessRecord]:
        return [AccessRecord(**m) for m in self._run.rows("access_for_case", {"case_id": case_id})]

    def for_organisation(self, organisation: str) -> list[AccessRecord]:
        return [AccessRecord(**m) for m in self._run.rows("access_for_organisation", {"organisation": organisation})]


class SqlUnitOfWork:
    """One pooled DBAPI connection, one transaction; rolled back unless :meth:`commit` ran."""

    def __init__(self, engine: Engine, compiled: Compiled, write: bool) -> None:
        self._engine = engine
        self._compiled = compiled
        self._write = write
        self._committed = False
        self._dbapi: Any = None

    def __enter__(self) -> SqlUnitOfWork:
        self._pooled = self._engine.raw_connection()
        try:
            self._dbapi = self._pooled.driver_connection
            cursor = self._dbapi.cursor()
            if self._compiled.dialect == "sqlite":
                cursor.execute("BEGIN IMMEDIATE" if self._write else "BEGIN")
            else:
                # writes rely on READ COMMITTED (a row lock, then a fresh look at what it guards),
                # so it is set here rather than left to the server's default
                level = "READ COMMITTED" if self._write else "REPEATABLE READ"
                cursor.execute(f"SET TRANSACTION ISOLATION LEVEL {level}")
        except BaseException:
            self._pooled.close()
            raise
        runner = _Runner(self._compiled, cursor)
        self._cursor = cursor
        self.cases = _SqlCases(runner)
        self.audit = _SqlAudit(runner)
        self.transitions = _SqlTransitions(runner)
        self.keys = _SqlKeys(runner)
        self.deadlines = _SqlDeadlines(runner)
        self.outbox = _SqlOutbox(runner)
        self.tokens = _SqlTokens(runner)
        self.access = _SqlAccess(runner)
        return self

    def commit(self) -> None:
        if self._compiled.dialect == "sqlite":
            self._cursor.execute("COMMIT")
        else:
            self._dbapi.commit()
        self._committed = True

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if not self._committed:
                if self._compiled.dialect == "sqlite":
                    if self._dbapi.in_transaction:
                        self._cursor.execute("ROLLBACK")
                else:
                    self._dbapi.rollback()
        finally:
            self._cursor.close()
            if self._compiled.dialect == "sqlite" and self._dbapi.in_transaction:
                # the ROLLBACK above did not happen (interrupted): the pool does not reset SQLite
                # connections (storage.db), so this one would go back holding the write lock
                self._pooled.invalidate()
            self._pooled.close()
