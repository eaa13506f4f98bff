"""Cases record facts (consent, checklist, circumstances, route version) as a JSON object.

Cases opened before this revision were opened under version 1 of their route.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("facts", sa.Text(), nullable=False, server_default='{"route_version": 1}'))


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("facts")
