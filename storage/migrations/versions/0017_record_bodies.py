"""Audit and access records keep the very text their hash is taken over (``body``), written when
they are sealed. Verification hashes those stored bytes, as a transparency log hashes its entries,
and checks apart that the columns say what the body says (``workflow.audit.chain.body_problem``).

Behaviour for what exists: records written before have no body (NULL) and verify exactly as
before, their hash rebuilt from their columns; no row is rewritten (the tables are append-only).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_TABLES = ("audit_records", "access_records")


def upgrade() -> None:
    # adding a nullable column rewrites no row; the append-only triggers stay in place
    for table in _TABLES:
        op.add_column(table, sa.Column("body", sa.Text(), nullable=True))


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        for table in _TABLES:
            op.drop_column(table, "body")
        return
    for table in _TABLES:
        # SQLite drops a column by copying the table, which the append-only triggers would refuse
        saved = [row[0] for row in op.get_bind().exec_driver_sql(
            f"SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = '{table}'")]  # fmt: skip
        for name in (f"{table}_no_update", f"{table}_no_delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        with op.batch_alter_table(table) as batch:
            batch.drop_column("body")
        for ddl in saved:
            op.execute(ddl)
