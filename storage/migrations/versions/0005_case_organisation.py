"""Cases belong to an organisation (the team that owns them); earlier cases to "local".

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("organisation", sa.String(64), nullable=False, server_default="local"))
        batch.create_index("ix_cases_organisation", ["organisation"])


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_index("ix_cases_organisation")
        batch.drop_column("organisation")
