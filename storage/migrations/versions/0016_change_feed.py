"""The change feed and webhook subscriptions per organisation (issue 19): ``change_events`` (one
row per accepted transition or deadline notice, written in its transaction; ``sequence`` is the
pull feed's order and cursor), ``webhook_subscriptions`` (URL, sealed secret, event filter, active
flag), and an index on the outbox for delivering a subscription's events of a case in order.
Existing transitions are not back-filled: the feed starts at this migration.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "change_events",
        sa.Column("sequence", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("id", sa.String(40), nullable=False, unique=True),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("case_id", sa.String(64), sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("organisation", sa.String(64), nullable=False),
        sa.Column("route", sa.String(64), nullable=False),
        sa.Column("from_state", sa.String(64), nullable=True),
        sa.Column("to_state", sa.String(64), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("occurred_at", _TS, nullable=False),
        sa.Column("recorded_at", _TS, nullable=False),
        sa.Column("actor_role", sa.String(64), nullable=False),
    )  # fmt: skip
    op.create_index("ix_change_events_org_sequence", "change_events", ["organisation", "sequence"])
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("organisation", sa.String(64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("event_types", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("rotated_at", _TS, nullable=True),
    )
    op.create_index("ix_webhook_subscriptions_organisation", "webhook_subscriptions", ["organisation"])
    op.create_index("ix_outbox_target_case", "outbox", ["target", "case_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_target_case", "outbox")
    op.drop_index("ix_webhook_subscriptions_organisation", "webhook_subscriptions")
    op.drop_table("webhook_subscriptions")
    op.drop_index("ix_change_events_org_sequence", "change_events")
    op.drop_table("change_events")
