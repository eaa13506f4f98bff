"""A partial index on running deadlines by due moment, for the overdue listing.

``deadlines --overdue`` and ``GET /cases?overdue=true`` ask for the running deadlines due before
now, by due moment; this index serves that WHERE and that ORDER BY, so the listing reads the
overdue rows rather than every running one.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_deadlines_running_due_at",
        "deadlines",
        ["due_at", "id"],
        postgresql_where=sa.text("state = 'running'"),
        sqlite_where=sa.text("state = 'running'"),
    )


def downgrade() -> None:
    op.drop_index("ix_deadlines_running_due_at", table_name="deadlines")
