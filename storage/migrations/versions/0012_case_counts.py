"""Cases per (organisation, route, state), kept by triggers on ``cases``, so that a board reads a
handful of rows instead of counting every case of the organisation (issue 16: the board flat from
10k to 100k cases). Filled from the cases that exist; from then on every insert, delete and change
of a case's organisation, route or state moves its count in the same transaction.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# Frozen: this migration's own copy of the triggers (live code may move on; this must not).
_UPSERT = ("INSERT INTO case_counts (organisation, route, state, n) VALUES ({o}, {r}, {s}, 1) "
           "ON CONFLICT (organisation, route, state) DO UPDATE SET n = case_counts.n + 1")  # fmt: skip
_DOWN = "UPDATE case_counts SET n = n - 1 WHERE organisation = {o} AND route = {r} AND state = {s}"
_SQLITE = [
    "CREATE TRIGGER cases_count_insert AFTER INSERT ON cases BEGIN "
    + _UPSERT.format(o="NEW.organisation", r="NEW.route", s="NEW.state") + "; END",
    "CREATE TRIGGER cases_count_delete AFTER DELETE ON cases BEGIN "
    + _DOWN.format(o="OLD.organisation", r="OLD.route", s="OLD.state") + "; END",
    "CREATE TRIGGER cases_count_update AFTER UPDATE OF organisation, route, state ON cases "
    "WHEN OLD.organisation IS NOT NEW.organisation OR OLD.route IS NOT NEW.route OR OLD.state IS NOT NEW.state "
    "BEGIN " + _DOWN.format(o="OLD.organisation", r="OLD.route", s="OLD.state") + "; "
    + _UPSERT.format(o="NEW.organisation", r="NEW.route", s="NEW.state") + "; END",
]
_POSTGRESQL = [
    "CREATE OR REPLACE FUNCTION cases_count() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "IF TG_OP IN ('UPDATE', 'DELETE') THEN "
    + _DOWN.format(o="OLD.organisation", r="OLD.route", s="OLD.state") + "; END IF; "
    "IF TG_OP IN ('UPDATE', 'INSERT') THEN "
    + _UPSERT.format(o="NEW.organisation", r="NEW.route", s="NEW.state") + "; END IF; "
    "RETURN NULL; END $$",
    "CREATE TRIGGER cases_count_insert_delete AFTER INSERT OR DELETE ON cases "
    "FOR EACH ROW EXECUTE FUNCTION cases_count()",
    "CREATE TRIGGER cases_count_update AFTER UPDATE OF organisation, route, state ON cases FOR EACH ROW "
    "WHEN (OLD.organisation IS DISTINCT FROM NEW.organisation OR OLD.route IS DISTINCT FROM NEW.route "
    "OR OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION cases_count()",
]


def upgrade() -> None:
    op.create_table(
        "case_counts",
        sa.Column("organisation", sa.String(64), primary_key=True),
        sa.Column("route", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(64), primary_key=True),
        sa.Column("n", sa.BigInteger(), nullable=False),
    )
    op.execute(
        "INSERT INTO case_counts (organisation, route, state, n) "
        "SELECT organisation, route, state, count(*) FROM cases GROUP BY organisation, route, state"
    )
    for statement in _SQLITE if op.get_bind().dialect.name == "sqlite" else _POSTGRESQL:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("cases_count_insert", "cases_count_delete", "cases_count_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    else:
        op.execute("DROP FUNCTION IF EXISTS cases_count() CASCADE")
    op.drop_table("case_counts")
