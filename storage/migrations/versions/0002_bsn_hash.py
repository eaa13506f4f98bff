"""Cases may carry a keyed hash (HMAC) of the patient's BSN, never the BSN itself.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("bsn_hash", sa.String(length=64), nullable=True))
        batch.create_index("ix_cases_bsn_hash", ["bsn_hash"])


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_index("ix_cases_bsn_hash")
        batch.drop_column("bsn_hash")
