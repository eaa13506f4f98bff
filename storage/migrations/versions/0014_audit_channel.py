"""Audit records say through which channel they were written (``channel``: ``api:<token id>``,
``web:<token id>``, ``cli:<user>@<host>``, ``worker:<host>:<pid>``, ``embedded:<label>``) and how
they are hashed (``encoding``: 1 before this, 2 = RFC 8785 canonical JSON with the channel).
Records written before keep encoding 1 and verify as before.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_TRIGGERS_SQLITE = ("audit_records_no_update", "audit_records_no_delete")


def upgrade() -> None:
    # adding nullable/defaulted columns rewrites no row; the append-only triggers stay in place
    op.add_column("audit_records", sa.Column("channel", sa.String(200), nullable=True))
    op.add_column("audit_records", sa.Column("encoding", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite drops a column by copying the table, which the append-only triggers would refuse
        saved = [row[0] for row in op.get_bind().exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_records'")]  # fmt: skip
        for name in _TRIGGERS_SQLITE:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        with op.batch_alter_table("audit_records") as batch:
            batch.drop_column("encoding")
            batch.drop_column("channel")
        for ddl in saved:
            op.execute(ddl)
    else:
        op.drop_column("audit_records", "encoding")
        op.drop_column("audit_records", "channel")
