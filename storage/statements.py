"""Every statement of the relational backends, each named once, beside its SQL.

Statements are SQLAlchemy Core against the SQLModel tables, compiled once per dialect
(:class:`Compiled`); a unit of work runs the SQL text on the pooled DBAPI connection itself (a
``fire`` is five short statements, and SQLAlchemy's per-statement machinery would cost more than
the database work: ``bench/fire_vs_raw.py``). Where the backends differ, each has one place:
:data:`SQLITE` and :data:`POSTGRESQL` hold the transaction statements and the access-log lock,
and the ``IN (the ids bound as :case_ids)`` of the several-cases reads compiles to ``json_each``
on SQLite and ``= ANY`` on PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, bindparam, case, exists, func, or_, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, ColumnElement, Select
from sqlalchemy.types import NullType

from workflow.deadlines.policies import RUNNING
from workflow.ports import SUBSCRIPTION

from .codec import Codec
from .feed_statements import FEED_STATEMENTS
from .log_statements import LOG_STATEMENTS
from .session_statements import SESSION_STATEMENTS
from .tables import (
    AccessRow,
    AccessShownRow,
    AuditRow,
    CaseRow,
    DeadlineRow,
    IdempotencyRow,
    OutboxRow,
    TokenRow,
    TransitionRow,
)
from .worklist_statements import WORKLIST_STATEMENTS, worklist_statement

CASES = CaseRow.__table__  # type: ignore[attr-defined]
AUDIT = AuditRow.__table__  # type: ignore[attr-defined]
AUDIT_EXPORTED = [column for column in AUDIT.c if column.name != "body"]
"""What an export reads of a record: all but the stored body, which only verification needs (a
record's body is as long as the rest of it: an export on PostgreSQL took 10% longer with it)."""
TRANSITIONS = TransitionRow.__table__  # type: ignore[attr-defined]
KEYS = IdempotencyRow.__table__  # type: ignore[attr-defined]
DEADLINES = DeadlineRow.__table__  # type: ignore[attr-defined]
OUTBOX = OutboxRow.__table__  # type: ignore[attr-defined]
TOKENS = TokenRow.__table__  # type: ignore[attr-defined]
ACCESS = AccessRow.__table__  # type: ignore[attr-defined]
SHOWN = AccessShownRow.__table__  # type: ignore[attr-defined]


# --- where the backends differ ------------------------------------------------------------------


@dataclass(frozen=True)
class BackendSql:
    """The statements one backend spells its own way, outside the catalogue's compiled SQL."""

    begin_write: str
    """Starts a write unit of work, with its lock or isolation level."""
    begin_read: str
    """Starts a read unit of work."""
    access_lock: str | None
    """Taken before reading the access log's head, so one appender at a time extends the chain."""
    audit_lock: str | None
    """Taken before reading the audit log's last record and appending to it, so that appenders
    commit one at a time: ``sequence`` order is then commit order and ``recorded_at`` order, and
    no record with a lower sequence becomes visible after a higher one (exports by cursor)."""
    log_lock: str | None
    """Taken by the transparency log's sequencer before it reads the log's size, so one sequencer
    at a time appends (appenders of records never take it)."""
    driver_transactions: bool
    """Whether commit and rollback are the driver connection's (psycopg) rather than SQL text."""


SQLITE = BackendSql(
    # the single write lock before the first read, so two writers never both read a case
    begin_write="BEGIN IMMEDIATE",
    begin_read="BEGIN",
    access_lock=None,  # the write lock already serialises appenders
    audit_lock=None,  # likewise
    log_lock=None,  # likewise
    driver_transactions=False,
)
POSTGRESQL = BackendSql(
    # writes rely on READ COMMITTED (a row lock, then a fresh look at what it guards), so it is set
    # here rather than left to the server's default; reads see their rows as of one instant
    begin_write="SET TRANSACTION ISOLATION LEVEL READ COMMITTED",
    begin_read="SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
    # transaction-scoped advisory locks, keyed by the log and by the very table its statements
    # write (its oid, found as they find it): advisory locks belong to the whole database, and two
    # schemas in it (two deployments, two tests side by side) hold two logs that must not wait on
    # each other, while every role's session on one schema takes the same key whatever its
    # search_path (a missing table is an error, never a lock taken on nothing)
    access_lock="SELECT pg_advisory_xact_lock(7513, 'access_records'::regclass::oid::int)",  # 7513: the standard
    audit_lock="SELECT pg_advisory_xact_lock(7514, 'audit_records'::regclass::oid::int)",  # the access log's key + 1
    log_lock="SELECT pg_advisory_xact_lock(7515, 'log_leaves'::regclass::oid::int)",  # the transparency log's sequencer
    driver_transactions=True,
)


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


# --- the catalogue --------------------------------------------------------------------------------


def _columns(table: Any, *skip: str) -> list[str]:
    return [c.name for c in table.columns if c.name not in skip]


DEADLINE_COLUMNS = _columns(DEADLINES, "id")
"""The columns a deadline's save writes (its id is derived from case and policy)."""

_CASE_FILTERS = (("organisation", "_of_organisation"), ("state", "_in_state"), ("route", "_on_route"))


def case_listing(*, organisation: bool, state: bool, route: bool) -> str:
    """The name of the case listing with those filters (each an equality, bound by its name)."""
    given = {"organisation": organisation, "state": state, "route": route}
    return "list_cases" + "".join(suffix for column, suffix in _CASE_FILTERS if given[column])


def _case_listings() -> dict[str, tuple[ClauseElement, list[str] | None]]:
    """One statement per combination of filters, each a plain conjunction of equalities, so the
    database can use the index on any of them (``ix_cases_state``, ``ix_cases_organisation``)."""
    listings: dict[str, tuple[ClauseElement, list[str] | None]] = {}
    for mask in range(8):
        on = {column: bool(mask & (1 << i)) for i, (column, _) in enumerate(_CASE_FILTERS)}
        statement: Select[Any] = select(CASES)
        for column, _ in _CASE_FILTERS:
            if on[column]:
                statement = statement.where(CASES.c[column] == bindparam(column))
        listings[case_listing(**on)] = (statement.order_by(CASES.c.opened_at, CASES.c.id), None)
    return listings


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
_BY_DUE = (DEADLINES.c.due_at, DEADLINES.c.id)
# The overdue listing (``deadlines_in_state_due_before``): running deadlines due before a moment,
# read through the partial index on running deadlines by (due_at, id), which also gives the order;
# its cost follows the overdue deadlines, not every running one.
_DUE_BEFORE = DEADLINES.c.due_at < bindparam("due_before")
# A delivery to a subscription waits while an earlier one of the same subscription and case is not
# delivered (pending, leased, or dead until an operator retries it): a case's events arrive in order.
_EARLIER = OUTBOX.alias("earlier")
_WAITING = exists().where(
    _EARLIER.c.target == OUTBOX.c.target,
    _EARLIER.c.case_id == OUTBOX.c.case_id,
    _EARLIER.c.id < OUTBOX.c.id,
    _EARLIER.c.channel == SUBSCRIPTION,
    _EARLIER.c.status != "delivered",
)
# Leasing outbox rows: the LIMIT is the number leased, so the claim locks no row it does not lease
# (a row locked and not leased would be skipped by every other worker until this claim commits).
_CLAIM_OUTBOX = (
    select(OUTBOX)
    .where(
        OUTBOX.c.status == "pending",
        OUTBOX.c.next_attempt_at <= bindparam("now"),
        or_(OUTBOX.c.leased_until.is_(None), OUTBOX.c.leased_until <= bindparam("now")),
        or_(OUTBOX.c.channel != SUBSCRIPTION, ~_WAITING),
    )
    .order_by(OUTBOX.c.next_attempt_at, OUTBOX.c.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
_OUTBOX_OUTCOME = ("status", "attempts", "next_attempt_at", "leased_until", "last_error", "delivered_at")
_CASE_MOVE = ("state", "version", "updated_at", "audit_head", "audit_count", "facts", "provider", "assignee")
_OF_ORGANISATION = or_(
    ACCESS.c.case_organisation == bindparam("organisation"),
    (ACCESS.c.case_organisation.is_(None)) & (ACCESS.c.organisation == bindparam("organisation")),
)

STATEMENTS: dict[str, tuple[ClauseElement, list[str] | None]] = {
    # name: (statement, the columns an INSERT binds, or None)
    "get_case": (select(CASES).where(CASES.c.id == bindparam("id")), None),
    "get_case_for_update": (select(CASES).where(CASES.c.id == bindparam("id")).with_for_update(), None),
    "insert_case": (CASES.insert().inline(), _columns(CASES)),
    "update_case": (
        CASES.update()
        .where(
            CASES.c.id == bindparam("b_id"),
            CASES.c.version == bindparam("b_version"),
            CASES.c.audit_count == bindparam("b_count"),
        )
        .values({name: bindparam(name) for name in _CASE_MOVE}),
        None,
    ),
    **_case_listings(),
    "cases_by_bsn": (
        select(CASES).where(CASES.c.bsn_hash == bindparam("bsn_hash")).order_by(CASES.c.opened_at, CASES.c.id),
        None,
    ),
    "insert_audit": (AUDIT.insert().inline(), _columns(AUDIT, "sequence")),
    "audit_for_case": (select(AUDIT).where(AUDIT.c.case_id == bindparam("case_id")).order_by(AUDIT.c.sequence), None),
    "audit_for_cases": (select(AUDIT).where(_InCases(AUDIT.c.case_id)).order_by(AUDIT.c.sequence), None),
    "audit_all": (select(*AUDIT_EXPORTED).order_by(AUDIT.c.sequence), None),
    "audit_since": (
        select(*AUDIT_EXPORTED).where(AUDIT.c.recorded_at >= bindparam("since")).order_by(AUDIT.c.sequence), None
    ),
    "audit_after": (
        select(*AUDIT_EXPORTED).where(AUDIT.c.sequence > bindparam("after")).order_by(AUDIT.c.sequence), None
    ),
    "audit_since_after": (
        select(*AUDIT_EXPORTED)
        .where(AUDIT.c.recorded_at >= bindparam("since"), AUDIT.c.sequence > bindparam("after"))
        .order_by(AUDIT.c.sequence),
        None,
    ),
    # the last record by the primary key: one index probe, whatever the log's length
    "audit_last": (select(AUDIT.c.recorded_at).order_by(AUDIT.c.sequence.desc()).limit(1), None),
    "insert_transition": (TRANSITIONS.insert().inline(), _columns(TRANSITIONS, "id")),
    "transitions_for_case": (
        select(TRANSITIONS).where(TRANSITIONS.c.case_id == bindparam("case_id")).order_by(TRANSITIONS.c.version),
        None,
    ),
    "transitions_for_cases": (
        select(TRANSITIONS).where(_InCases(TRANSITIONS.c.case_id)).order_by(TRANSITIONS.c.version),
        None,
    ),
    # a report's finished cases: the transitions of one event in a window of time (half-open)
    "transitions_of_event_between": (
        select(TRANSITIONS)
        .where(
            TRANSITIONS.c.event == bindparam("event"),
            TRANSITIONS.c.occurred_at >= bindparam("since"),
            TRANSITIONS.c.occurred_at < bindparam("until"),
        )
        .order_by(TRANSITIONS.c.occurred_at, TRANSITIONS.c.case_id),
        None,
    ),
    "get_key": (select(KEYS).where(KEYS.c.key == bindparam("key")), None),
    "insert_key": (KEYS.insert().inline(), _columns(KEYS)),
    "deadlines_for_case": (
        select(DEADLINES).where(DEADLINES.c.case_id == bindparam("case_id")).order_by(DEADLINES.c.id),
        None,
    ),
    "deadlines_for_cases": (select(DEADLINES).where(_InCases(DEADLINES.c.case_id)).order_by(DEADLINES.c.id), None),
    "insert_deadline": (DEADLINES.insert().inline(), _columns(DEADLINES)),
    "update_deadline": (
        DEADLINES.update()
        .where(DEADLINES.c.id == bindparam("b_id"))
        .values({name: bindparam(name) for name in DEADLINE_COLUMNS}),
        None,
    ),
    "claim_due": (_CLAIM_DUE, None),
    "deadlines_all": (select(DEADLINES).order_by(*_BY_DUE), None),
    "deadlines_in_state": (select(DEADLINES).where(DEADLINES.c.state == bindparam("state")).order_by(*_BY_DUE), None),
    "deadlines_due_before": (select(DEADLINES).where(_DUE_BEFORE).order_by(*_BY_DUE), None),
    "deadlines_in_state_due_before": (
        select(DEADLINES).where(DEADLINES.c.state == bindparam("state"), _DUE_BEFORE).order_by(*_BY_DUE),
        None,
    ),
    "insert_outbox": (OUTBOX.insert().inline(), _columns(OUTBOX, "id")),
    "claim_outbox": (_CLAIM_OUTBOX, None),
    "update_outbox": (
        OUTBOX.update().where(OUTBOX.c.id == bindparam("b_id")).values({n: bindparam(n) for n in _OUTBOX_OUTCOME}),
        None,
    ),
    # the scrape-time gauges (workflow.service.readings): deadlines not stopped, through the index
    # on (stopped_at, due_at, id), so their cost follows the open deadlines, not the history; and
    # the pending outbox rows, through its partial index on pending rows
    "deadline_tally": (
        select(
            DEADLINES.c.policy,
            DEADLINES.c.state,
            func.count(),
            func.sum(case((and_(DEADLINES.c.state == RUNNING, DEADLINES.c.due_at < bindparam("soon")), 1), else_=0)),
        )
        .where(DEADLINES.c.stopped_at.is_(None))
        .group_by(DEADLINES.c.policy, DEADLINES.c.state)
        .order_by(DEADLINES.c.policy, DEADLINES.c.state),
        None,
    ),
    "outbox_backlog": (select(func.count(), func.min(OUTBOX.c.created_at)).where(OUTBOX.c.status == "pending"), None),
    "outbox_all": (select(OUTBOX).order_by(OUTBOX.c.id), None),
    "outbox_in_status": (select(OUTBOX).where(OUTBOX.c.status == bindparam("status")).order_by(OUTBOX.c.id), None),
    "insert_token": (TOKENS.insert().inline(), _columns(TOKENS)),
    "get_token": (select(TOKENS).where(TOKENS.c.id == bindparam("id")), None),
    "token_by_hash": (select(TOKENS).where(TOKENS.c.token_hash == bindparam("token_hash")), None),
    "revoke_token": (
        TOKENS.update().where(TOKENS.c.id == bindparam("b_id")).values(revoked_at=bindparam("revoked_at")),
        None,
    ),
    # at most once a minute per token, even when concurrent uses all read an old last_used_at
    "touch_token": (
        TOKENS.update()
        .where(TOKENS.c.id == bindparam("b_id"))
        .where(or_(TOKENS.c.last_used_at.is_(None), TOKENS.c.last_used_at <= bindparam("not_since")))
        .values(last_used_at=bindparam("last_used_at")),
        None,
    ),
    "tokens_all": (select(TOKENS).order_by(TOKENS.c.created_at, TOKENS.c.id), None),
    "insert_access": (ACCESS.insert().inline(), _columns(ACCESS, "sequence")),
    "access_head": (select(ACCESS.c.hash, ACCESS.c.at).order_by(ACCESS.c.sequence.desc()).limit(1), None),
    "access_all": (select(ACCESS).order_by(ACCESS.c.sequence), None),
    # a record about the case, or a list page that showed it (found through access_cases_shown)
    "access_for_case": (
        select(ACCESS)
        .where(
            or_(
                ACCESS.c.case_id == bindparam("case_id"),
                ACCESS.c.prev_hash.in_(select(SHOWN.c.prev_hash).where(SHOWN.c.case_id == bindparam("case_id"))),
            )
        )
        .order_by(ACCESS.c.sequence),
        None,
    ),
    "insert_access_shown": (SHOWN.insert().inline(), _columns(SHOWN)),
    "access_shown_all": (select(SHOWN.c.prev_hash, SHOWN.c.case_id).order_by(SHOWN.c.prev_hash, SHOWN.c.case_id),
                         None),
    **WORKLIST_STATEMENTS,
    **SESSION_STATEMENTS,
    **LOG_STATEMENTS,
    **FEED_STATEMENTS,
    "access_for_organisation": (select(ACCESS).where(_OF_ORGANISATION).order_by(ACCESS.c.sequence), None),
}

_SQLITE_NAMED = sqlite.dialect(paramstyle="named")


class Compiled:
    """Every statement of the catalogue as SQL text for one engine's dialect, with that dialect's
    own statements (:class:`BackendSql`) and value conversions (:class:`~storage.codec.Codec`)."""

    def __init__(self, engine: Engine) -> None:
        self.dialect: str = engine.dialect.name
        self.backend = SQLITE if self.dialect == "sqlite" else POSTGRESQL
        self.codec = Codec(self.dialect)
        self.ts_in = self.codec.ts_in
        self.params = self.codec.params
        compile_for = _SQLITE_NAMED if self.dialect == "sqlite" else engine.dialect
        compiled = {
            name: stmt.compile(dialect=compile_for, column_keys=keys) for name, (stmt, keys) in STATEMENTS.items()
        }
        self.sql: dict[str, str] = {name: str(c) for name, c in compiled.items()}
        # constants written into a statement (a state name, LIMIT 1) become bound parameters
        # with fixed values; they are merged in at execution, for the few statements that have them
        self.constants: dict[str, dict[str, Any]] = {
            name: fixed
            for name, c in compiled.items()
            if (fixed := {k: v for k, v in c.params.items() if type(v) in (str, int)})
        }
        self.sql = _Lazily(compile_for, self.sql, self.constants)
        self.integrity_error: type[Exception] = engine.dialect.loaded_dbapi.IntegrityError
        self.readers: dict[tuple[str, frozenset[str]], Any] = {}
        """Row decoders by statement (and lazy columns), made on first use (storage.repositories.Runner)."""


class _Lazily(dict[str, str]):
    """The compiled catalogue; a work-list statement (:func:`worklist_statement`: one per combination
    of filters and order, too many to compile up front) is compiled when first run, then kept."""

    def __init__(self, dialect: Any, compiled: dict[str, str], constants: dict[str, dict[str, Any]]) -> None:
        super().__init__(compiled)
        self._dialect = dialect
        self._constants = constants

    def __missing__(self, name: str) -> str:
        if not name.startswith(("case_page:", "case_counts:", "board_counts:")):
            raise KeyError(name)
        compiled = worklist_statement(name).compile(dialect=self._dialect)
        fixed = {k: v for k, v in compiled.params.items() if type(v) in (str, int)}
        if fixed:
            self._constants[name] = fixed
        self[name] = text = str(compiled)
        return text
