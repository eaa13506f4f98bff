"""The NEN 7513 access log: append-only, hash-chained.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# Frozen: this migration's own copy of the append-only triggers (live code: storage.ddl).
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


def upgrade() -> None:
    op.create_table(
        "access_records",
        sa.Column("sequence", _BIGINT, autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.String(64), nullable=False),
        sa.Column("actor_role", sa.String(64), nullable=False),
        sa.Column("organisation", sa.String(64), nullable=False),
        sa.Column("on_behalf_of", sa.String(64), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("client", sa.String(100), nullable=True),
        sa.Column("case_id", sa.String(64), nullable=True),
        sa.Column("patient_ref", sa.String(64), nullable=True),
        sa.Column("case_organisation", sa.String(64), nullable=True),
        sa.Column("prev_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("sequence"),
    )
    op.create_index("ix_access_records_case_id", "access_records", ["case_id"])
    op.create_index("ix_access_records_case_organisation", "access_records", ["case_organisation"])
    for statement in _append_only_ddl(op.get_bind().dialect.name, "access_records"):
        op.execute(statement)


def downgrade() -> None:
    for statement in _drop_append_only_ddl(op.get_bind().dialect.name, "access_records"):
        op.execute(statement)
    op.drop_index("ix_access_records_case_organisation", table_name="access_records")
    op.drop_index("ix_access_records_case_id", table_name="access_records")
    op.drop_table("access_records")
