"""API tokens get an expiry, scopes and a last use; access records say through which channel and
with which credential the read was made, hashed as RFC 8785 JCS with them (``encoding`` 3).

Behaviour for what exists: tokens created before never expire (``expires_at`` NULL) and hold every
scope (their role still bounds what they can do, as before: nothing they could do is taken away);
access records written before keep ``encoding`` 1 and verify exactly as before.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_EVERY_SCOPE = '["cases:read","cases:write","audit:read","reports:read","webhooks:admin"]'
"""Frozen here: the scopes of revision 0015 (``workflow.access.tokens.SCOPES`` may grow later)."""
_TRIGGERS_SQLITE = ("access_records_no_update", "access_records_no_delete")


def upgrade() -> None:
    # adding nullable/defaulted columns rewrites no row; the append-only triggers stay in place
    op.add_column("api_tokens", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("api_tokens", sa.Column("scopes", sa.Text(), nullable=False, server_default=_EVERY_SCOPE))
    op.add_column("api_tokens", sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("access_records", sa.Column("channel", sa.String(16), nullable=True))
    op.add_column("access_records", sa.Column("credential", sa.String(200), nullable=True))
    op.add_column("access_records", sa.Column("encoding", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite drops a column by copying the table, which the append-only triggers would refuse
        saved = [row[0] for row in op.get_bind().exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'access_records'")]  # fmt: skip
        for name in _TRIGGERS_SQLITE:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        with op.batch_alter_table("access_records") as batch:
            for column in ("encoding", "credential", "channel"):
                batch.drop_column(column)
        for ddl in saved:
            op.execute(ddl)
        with op.batch_alter_table("api_tokens") as batch:
            for column in ("last_used_at", "scopes", "expires_at"):
                batch.drop_column(column)
    else:
        for column in ("encoding", "credential", "channel"):
            op.drop_column("access_records", column)
        for column in ("last_used_at", "scopes", "expires_at"):
            op.drop_column("api_tokens", column)
