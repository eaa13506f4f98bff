"""Initial schema: cases, transitions, the append-only audit trail, idempotency keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# Frozen: this migration's own copy of the append-only triggers (live code: storage.ddl), so that
# no later change to the code can change what it creates.
_APPEND_ONLY_TABLES = ("audit_records", "case_transitions")
_MESSAGE = "is append-only: history cannot be changed"


def _append_only_ddl(dialect: str, table: str) -> list[str]:
    if dialect == "sqlite":
        return [
            f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} {_MESSAGE}'); END"
            for verb in ("UPDATE", "DELETE")
        ]
    return [
        f"CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN RAISE EXCEPTION '{table} {_MESSAGE}'; END $$",
        f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()",
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {table}_append_only()",
    ]


def _drop_append_only_ddl(dialect: str, table: str) -> list[str]:
    if dialect == "sqlite":
        return [f"DROP TRIGGER IF EXISTS {table}_no_{verb}" for verb in ("update", "delete")]
    return [f"DROP FUNCTION IF EXISTS {table}_append_only() CASCADE"]


def _ts(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def _str(name: str, length: int, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.String(length=length), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "cases",
        _str("id", 64),
        _str("patient_ref", 64),
        _str("route", 32),
        _str("state", 64),
        sa.Column("version", sa.Integer(), nullable=False),
        _ts("opened_at"),
        _ts("updated_at"),
        _str("audit_head", 64),
        sa.Column("audit_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_cases_state", "cases", ["state"])
    op.create_table(
        "audit_records",
        sa.Column("sequence", _BIGINT, autoincrement=True, nullable=False),
        _str("case_id", 64),
        sa.Column("seq", sa.Integer(), nullable=False),
        _str("event", 64),
        _str("outcome", 16),
        _str("from_state", 64, nullable=True),
        _str("to_state", 64, nullable=True),
        _str("actor_id", 64),
        _str("actor_role", 64),
        _str("on_behalf_of", 64, nullable=True),
        _ts("occurred_at"),
        _ts("recorded_at"),
        _str("idempotency_key", 200, nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("refusal", sa.Text(), nullable=True),
        _str("prev_hash", 64),
        _str("hash", 64),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("sequence"),
        sa.UniqueConstraint("case_id", "seq"),
    )
    op.create_index("ix_audit_records_recorded_at", "audit_records", ["recorded_at"])
    op.create_table(
        "case_transitions",
        sa.Column("id", _BIGINT, autoincrement=True, nullable=False),
        _str("case_id", 64),
        sa.Column("version", sa.Integer(), nullable=False),
        _str("event", 64),
        _str("from_state", 64, nullable=True),
        _str("to_state", 64),
        _ts("occurred_at"),
        sa.Column("audit_seq", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "version"),
    )
    op.create_table(
        "idempotency_keys",
        _str("key", 200),
        _str("fingerprint", 64),
        _str("case_id", 64),
        sa.Column("result", sa.Text(), nullable=False),
        _ts("created_at"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("key"),
    )
    dialect = op.get_bind().dialect.name
    for table in _APPEND_ONLY_TABLES:
        for statement in _append_only_ddl(dialect, table):
            op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in _APPEND_ONLY_TABLES:
        for statement in _drop_append_only_ddl(dialect, table):
            op.execute(statement)
    op.drop_table("idempotency_keys")
    op.drop_table("case_transitions")
    op.drop_index("ix_audit_records_recorded_at", table_name="audit_records")
    op.drop_table("audit_records")
    op.drop_index("ix_cases_state", table_name="cases")
    op.drop_table("cases")
