"""Work lists: derived columns on cases (provider, assignee, due_at) with the indexes the lists
read, an index on open deadlines by due moment, and page records in the access log.

``provider`` and ``assignee`` are the ids in the case's facts (``facts.provider.id``,
``facts.assignee.id``); ``due_at`` is the earliest due moment of the case's open deadlines
(running, or breached and not stopped). Existing rows are filled here; from then on storage keeps
them in step on every write. ``access_records.cases_shown`` holds the case ids a list page showed
(one record per page instead of one per case), and ``access_cases_shown`` finds those records by case.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# Frozen: this migration's own copy of the append-only triggers (live code: storage.ddl).
_MESSAGE = "is append-only: history cannot be changed"
_CASE_INDEXES = {
    "ix_cases_org_opened": ["organisation", "opened_at", "id"],
    "ix_cases_org_updated": ["organisation", "updated_at", "id"],
    "ix_cases_org_due": ["organisation", "due_at", "id"],
    "ix_cases_org_state": ["organisation", "state"],
    "ix_cases_patient_ref": ["patient_ref"],
    "ix_cases_provider": ["provider"],
    "ix_cases_assignee": ["assignee"],
}


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


def _id_in(facts: Any, key: str) -> str | None:
    found = facts.get(key) if isinstance(facts, dict) else None
    value = found.get("id") if isinstance(found, dict) else None
    return value if isinstance(value, str) else None


def _fill_from_facts(bind: Any) -> None:
    """provider and assignee of every existing case, read from its facts in Python: a row whose
    facts are not JSON (only tampering makes one, and `audit verify` reports it) is left empty
    rather than failing the upgrade."""
    rows = bind.execute(sa.text("SELECT id, facts FROM cases")).fetchall()
    changes = []
    for case_id, text in rows:
        try:
            facts = json.loads(text)
        except (TypeError, ValueError):
            continue
        provider, assignee = _id_in(facts, "provider"), _id_in(facts, "assignee")
        if provider is not None or assignee is not None:
            changes.append({"id": case_id, "provider": provider, "assignee": assignee})
    if changes:
        bind.execute(sa.text("UPDATE cases SET provider = :provider, assignee = :assignee WHERE id = :id"), changes)


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("provider", sa.String(64), nullable=True))
        batch.add_column(sa.Column("assignee", sa.String(64), nullable=True))
        batch.add_column(sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
    _fill_from_facts(bind)
    op.execute(
        "UPDATE cases SET due_at = (SELECT MIN(d.due_at) FROM deadlines d WHERE d.case_id = cases.id "
        "AND d.state IN ('running', 'breached') AND d.stopped_at IS NULL)"
    )
    for name, columns in _CASE_INDEXES.items():
        op.create_index(name, "cases", columns)
    op.create_index("ix_deadlines_open_due_at", "deadlines", ["stopped_at", "due_at", "id"])
    with op.batch_alter_table("access_records") as batch:
        batch.add_column(sa.Column("cases_shown", sa.Text(), nullable=True))
    op.create_table(
        "access_cases_shown",
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("prev_hash", "case_id"),
    )
    op.create_index("ix_access_cases_shown_case_id", "access_cases_shown", ["case_id"])
    for statement in _append_only_ddl(bind.dialect.name, "access_cases_shown"):
        op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    for statement in _drop_append_only_ddl(bind.dialect.name, "access_cases_shown"):
        op.execute(statement)
    op.drop_index("ix_access_cases_shown_case_id", table_name="access_cases_shown")
    op.drop_table("access_cases_shown")
    with op.batch_alter_table("access_records") as batch:
        batch.drop_column("cases_shown")
    op.drop_index("ix_deadlines_open_due_at", table_name="deadlines")
    for name in _CASE_INDEXES:
        op.drop_index(name, table_name="cases")
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("due_at")
        batch.drop_column("assignee")
        batch.drop_column("provider")
