"""The append-only triggers, as live code: for tests and tools that lift and restore them.

The migrations that created them carry their own frozen copy of this text (0001, 0007), so a
change here can never change what an old migration does.
"""

from __future__ import annotations

APPEND_ONLY_TABLES = ("audit_records", "case_transitions")
"""The tables the initial migration made append-only (``access_records`` followed in 0007)."""
APPEND_ONLY_MESSAGE = "is append-only: history cannot be changed"
"""What a user sees when something tries to rewrite history."""


def append_only_ddl(dialect: str, table: str) -> list[str]:
    """The statements that make ``table`` refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL)."""
    if dialect == "sqlite":
        return [
            f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} {APPEND_ONLY_MESSAGE}'); END"
            for verb in ("UPDATE", "DELETE")
        ]
    return [
        f"CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN RAISE EXCEPTION '{table} {APPEND_ONLY_MESSAGE}'; END $$",
        f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()",
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {table}_append_only()",
    ]


def drop_append_only_ddl(dialect: str, table: str) -> list[str]:
    """The statements that undo :func:`append_only_ddl`."""
    if dialect == "sqlite":
        return [f"DROP TRIGGER IF EXISTS {table}_no_{verb}" for verb in ("update", "delete")]
    return [f"DROP FUNCTION IF EXISTS {table}_append_only() CASCADE"]
