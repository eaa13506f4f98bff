"""The schema, as SQLModel tables; Alembic migrations must match it (tests check the drift)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Dialect, Index, Integer, Text, UniqueConstraint, text
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC in, aware UTC out, on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so the value is stored as UTC
    text and the zone re-attached on the way out. A naive datetime is refused, never guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: store timezone-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


_BIGINT = BigInteger().with_variant(Integer(), "sqlite")  # SQLite's rowid alias must be INTEGER


def _ts() -> Any:
    return Field(sa_type=UTCDateTime, nullable=False)


class CaseRow(SQLModel, table=True):
    """``provider``, ``assignee`` and ``due_at`` are derived, for the work lists' filters and orders:
    the first two from the facts on every write of the row, the last (the earliest due moment of
    the case's open deadlines, :func:`workflow.listing.case_due_at`) on every write of a deadline."""

    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_org_opened", "organisation", "opened_at", "id"),
        Index("ix_cases_org_updated", "organisation", "updated_at", "id"),
        Index("ix_cases_org_due", "organisation", "due_at", "id"),
        Index("ix_cases_org_state", "organisation", "state"),
    )

    id: str = Field(primary_key=True, max_length=64)
    patient_ref: str = Field(max_length=64, index=True)
    route: str = Field(max_length=32)
    state: str = Field(max_length=64, index=True)
    version: int
    opened_at: datetime = _ts()
    updated_at: datetime = _ts()
    audit_head: str = Field(max_length=64)
    audit_count: int
    facts: str = Field(sa_type=Text, sa_column_kwargs={"server_default": '{"route_version": 1}'})
    bsn_hash: str | None = Field(default=None, max_length=64, index=True)
    organisation: str = Field(max_length=64, index=True, sa_column_kwargs={"server_default": "local"})
    name_hashes: str = Field(sa_type=Text, sa_column_kwargs={"server_default": "[]"})
    provider: str | None = Field(default=None, max_length=64, index=True)
    assignee: str | None = Field(default=None, max_length=64, index=True)
    due_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class TransitionRow(SQLModel, table=True):
    __tablename__ = "case_transitions"
    __table_args__ = (UniqueConstraint("case_id", "version"),)

    id: int | None = Field(default=None, sa_column=Column(_BIGINT, primary_key=True, autoincrement=True))
    case_id: str = Field(foreign_key="cases.id", max_length=64)
    version: int
    event: str = Field(max_length=64)
    from_state: str | None = Field(default=None, max_length=64)
    to_state: str = Field(max_length=64)
    occurred_at: datetime = _ts()
    audit_seq: int


class AuditRow(SQLModel, table=True):
    """Append-only: triggers created by the migration refuse UPDATE and DELETE."""

    __tablename__ = "audit_records"
    __table_args__ = (UniqueConstraint("case_id", "seq"),)

    sequence: int | None = Field(default=None, sa_column=Column(_BIGINT, primary_key=True, autoincrement=True))
    case_id: str = Field(foreign_key="cases.id", max_length=64)
    seq: int
    event: str = Field(max_length=64)
    outcome: str = Field(max_length=16)
    from_state: str | None = Field(default=None, max_length=64)
    to_state: str | None = Field(default=None, max_length=64)
    actor_id: str = Field(max_length=64)
    actor_role: str = Field(max_length=64)
    on_behalf_of: str | None = Field(default=None, max_length=64)
    occurred_at: datetime = _ts()
    recorded_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    idempotency_key: str | None = Field(default=None, max_length=200)
    payload: str = Field(sa_type=Text)
    reason: str | None = Field(default=None, sa_type=Text)
    refusal: str | None = Field(default=None, sa_type=Text)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)
    channel: str | None = Field(default=None, max_length=200)
    encoding: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    body: str | None = Field(default=None, sa_type=Text)
    """The text the hash is taken over, as sealed (revision 0017); NULL on records written before."""


class IdempotencyRow(SQLModel, table=True):
    __tablename__ = "idempotency_keys"

    key: str = Field(primary_key=True, max_length=200)
    fingerprint: str = Field(max_length=64)
    case_id: str = Field(foreign_key="cases.id", max_length=64)
    result: str = Field(sa_type=Text)
    created_at: datetime = _ts()


class DeadlineRow(SQLModel, table=True):
    """One policy's clock on one case; the partial indexes keep the sweep's cost proportional to
    what is due, and the overdue listing's to what is overdue, not to how many cases are open."""

    __tablename__ = "deadlines"
    __table_args__ = (
        Index(
            "ix_deadlines_running_next_action",
            "next_action_at",
            postgresql_where=text("state = 'running'"),
            sqlite_where=text("state = 'running'"),
        ),
        Index(
            "ix_deadlines_running_due_at",
            "due_at",
            "id",
            postgresql_where=text("state = 'running'"),
            sqlite_where=text("state = 'running'"),
        ),
        # open deadlines (running, or breached and not stopped) are those not stopped with a due
        # moment (a paused one has none): the work lists' overdue and due-soon ranges
        Index("ix_deadlines_open_due_at", "stopped_at", "due_at", "id"),
    )

    id: str = Field(primary_key=True, max_length=140)
    case_id: str = Field(foreign_key="cases.id", max_length=64, index=True)
    policy: str = Field(max_length=64)
    state: str = Field(max_length=16)
    calendar: str = Field(max_length=140)
    working_days: int
    started_at: datetime = _ts()
    due_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    next_action_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    reminders_sent: int
    explanation: str = Field(sa_type=Text)
    stopped_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    updated_at: datetime = _ts()


class OutboxRow(SQLModel, table=True):
    """Notifications written in the transaction that decided them, delivered afterwards."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index(
            "ix_outbox_pending_next_attempt",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        # a subscription's deliveries of one case, in order: the claim's "nothing earlier undelivered"
        Index("ix_outbox_target_case", "target", "case_id", "id"),
    )

    id: int | None = Field(default=None, sa_column=Column(_BIGINT, primary_key=True, autoincrement=True))
    key: str = Field(max_length=240, unique=True)
    case_id: str = Field(foreign_key="cases.id", max_length=64)
    kind: str = Field(max_length=64)
    channel: str = Field(max_length=16)
    target: str = Field(sa_type=Text)
    payload: str = Field(sa_type=Text)
    status: str = Field(max_length=16)
    attempts: int
    next_attempt_at: datetime = _ts()
    leased_until: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    last_error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = _ts()
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class TokenRow(SQLModel, table=True):
    """API tokens; the secret itself is never stored, only its SHA-256."""

    __tablename__ = "api_tokens"

    id: str = Field(primary_key=True, max_length=32)
    token_hash: str = Field(max_length=64, unique=True)
    actor: str = Field(max_length=64)
    role: str = Field(max_length=64)
    organisation: str = Field(max_length=64)
    created_at: datetime = _ts()
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    """None: never (tokens created before revision 0015)."""
    scopes: str = Field(sa_type=Text)
    """The token's scopes, a JSON array (:data:`workflow.access.tokens.SCOPES`)."""
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class AccessRow(SQLModel, table=True):
    """The NEN 7513 access log: append-only (triggers), one hash chain over all rows.

    The unique ``prev_hash`` makes a fork impossible: two writers can never both extend the same head.
    """

    __tablename__ = "access_records"

    sequence: int | None = Field(default=None, sa_column=Column(_BIGINT, primary_key=True, autoincrement=True))
    at: datetime = _ts()
    actor_id: str = Field(max_length=64)
    actor_role: str = Field(max_length=64)
    organisation: str = Field(max_length=64)
    on_behalf_of: str | None = Field(default=None, max_length=64)
    kind: str = Field(max_length=32)
    outcome: str = Field(max_length=16)
    client: str | None = Field(default=None, max_length=100)
    case_id: str | None = Field(default=None, max_length=64, index=True)
    patient_ref: str | None = Field(default=None, max_length=64)
    case_organisation: str | None = Field(default=None, max_length=64, index=True)
    prev_hash: str = Field(max_length=64, unique=True)
    hash: str = Field(max_length=64)
    cases_shown: str | None = Field(default=None, sa_type=Text)
    """A page of a list (kind ``list``): the ids of the cases shown, a JSON array; part of the hash.
    Found by case through ``access_cases_shown`` (one row per case shown, written with the record)."""
    channel: str | None = Field(default=None, max_length=16)
    """Through what the read came (``api``, ``web``); None before revision 0015. Part of the hash."""
    credential: str | None = Field(default=None, max_length=200)
    """Which credential proved the caller (a token id, ``oidc:<issuer hash>:<subject>``). Part of the hash."""
    encoding: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    """How the record is hashed (:data:`workflow.access.log.ENCODINGS`)."""
    body: str | None = Field(default=None, sa_type=Text)
    """The text the hash is taken over, as sealed (revision 0017); NULL on records written before."""


class AccessShownRow(SQLModel, table=True):
    """Which access record showed which case in a list: the index behind "who saw this patient"
    for records that name several cases, by the record's ``prev_hash`` (unique in the log, and
    known before storage numbers the record). Append-only, like the log it indexes. The record's own
    hash covers its list; ``access-log verify`` checks that this index agrees with the lists
    (:func:`workflow.access.log.verify_shown`)."""

    __tablename__ = "access_cases_shown"

    prev_hash: str = Field(primary_key=True, max_length=64)
    case_id: str = Field(primary_key=True, max_length=64, index=True)


class WebSessionRow(SQLModel, table=True):
    """The web desk's sessions (:mod:`workflow.access.sessions`): by the SHA-256 of the session id,
    never the id itself; neither the token's secret nor anything about the patient."""

    __tablename__ = "web_sessions"

    key: str = Field(primary_key=True, max_length=64)
    token_id: str = Field(max_length=32, index=True)
    started_at: datetime = _ts()
    seen_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    notices: str | None = Field(default=None, sa_type=Text)


class CaseCountRow(SQLModel, table=True):
    """Cases per (organisation, route, state): what a board reads instead of counting every case.
    Kept by triggers on ``cases`` (migration 0012), in the transaction that writes the case; a row
    may hold 0 once its last case moved on."""

    __tablename__ = "case_counts"

    organisation: str = Field(primary_key=True, max_length=64)
    route: str = Field(primary_key=True, max_length=64)
    state: str = Field(primary_key=True, max_length=64)
    n: int = Field(sa_type=BigInteger)


class LogLeafRow(SQLModel, table=True):
    """The transparency log (:mod:`workflow.audit.transparency`): which record sits at which
    position, and the leaf hash logged for it. Append-only (triggers)."""

    __tablename__ = "log_leaves"
    __table_args__ = (UniqueConstraint("kind", "ref"),)

    position: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    kind: str = Field(max_length=8)
    ref: int = Field(sa_type=BigInteger)
    leaf: str = Field(max_length=64)


class LogNodeRow(SQLModel, table=True):
    """The hash of each complete subtree of the log's tree (2, 4, 8, ... leaves). Append-only."""

    __tablename__ = "log_nodes"

    level: int = Field(primary_key=True)
    idx: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    hash: str = Field(max_length=64)


class LogCheckpointRow(SQLModel, table=True):
    """Every checkpoint signed of the log, as signed (the note). Append-only; the auditor's copy
    outside the database is what counts, this one says which were made."""

    __tablename__ = "log_checkpoints"

    id: int | None = Field(default=None, sa_column=Column(_BIGINT, primary_key=True, autoincrement=True))
    size: int = Field(sa_type=BigInteger)
    root: str = Field(max_length=64)
    note: str = Field(sa_type=Text)
    created_at: datetime = _ts()


class ChangeEventRow(SQLModel, table=True):
    """The change feed (:mod:`workflow.feed.events`): one row per accepted transition or deadline
    notice, written in its transaction; ``sequence`` is the feed's order and its cursor."""

    __tablename__ = "change_events"
    __table_args__ = (Index("ix_change_events_org_sequence", "organisation", "sequence"),)

    sequence: int | None = Field(default=None, sa_column=Column(_BIGINT, primary_key=True, autoincrement=True))
    id: str = Field(max_length=40, unique=True)
    type: str = Field(max_length=32)
    case_id: str = Field(foreign_key="cases.id", max_length=64)
    organisation: str = Field(max_length=64)
    route: str = Field(max_length=64)
    from_state: str | None = Field(default=None, max_length=64)
    to_state: str = Field(max_length=64)
    event: str = Field(max_length=64)
    version: int
    occurred_at: datetime = _ts()
    recorded_at: datetime = _ts()
    actor_role: str = Field(max_length=64)


class SubscriptionRow(SQLModel, table=True):
    """Webhook subscriptions (:mod:`workflow.feed.subscriptions`); ``secret`` is sealed, never clear."""

    __tablename__ = "webhook_subscriptions"

    id: str = Field(primary_key=True, max_length=40)
    organisation: str = Field(max_length=64, index=True)
    url: str = Field(sa_type=Text)
    secret: str = Field(sa_type=Text)
    event_types: str = Field(sa_type=Text)
    active: bool
    created_at: datetime = _ts()
    rotated_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


METADATA = SQLModel.metadata
