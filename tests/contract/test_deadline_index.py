"""The sweep's claim reads through the partial index on running deadlines, on both databases,
so its cost follows the deadlines that are due rather than every deadline ever opened."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text

from storage.db import make_engine
from storage.statements import Compiled
from tests.conftest import SQL_BACKENDS, T0

INDEX = "ix_deadlines_running_next_action"


def _plan(db_url: str, statement: str, params: Callable[[Compiled], dict[str, Any]]) -> str:
    """The database's query plan of one of storage.statements. compiled statements, as one string."""
    engine = make_engine(db_url)
    compiled = Compiled(engine)
    try:
        raw = engine.raw_connection()
        try:
            cursor = raw.driver_connection.cursor()  # type: ignore[union-attr]
            if compiled.dialect == "sqlite":
                cursor.execute("EXPLAIN QUERY PLAN " + compiled.sql[statement], params(compiled))
            else:
                cursor.execute("SET enable_seqscan = off")  # an empty table would otherwise be scanned
                cursor.execute("EXPLAIN " + compiled.sql[statement], params(compiled))
            return " ".join(str(row) for row in cursor.fetchall())
        finally:
            raw.close()
    finally:
        engine.dispose()


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
def test_claim_uses_the_partial_index(db_url: str) -> None:
    plan = _plan(db_url, "claim_due", lambda c: {**c.constants["claim_due"], "now": c.ts_in(T0)})
    assert INDEX in plan, plan


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
def test_the_index_is_partial(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                ddl = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = :n"), {"n": INDEX}).scalar()
            else:
                ddl = conn.execute(text("SELECT indexdef FROM pg_indexes WHERE indexname = :n"), {"n": INDEX}).scalar()
    finally:
        engine.dispose()
    assert ddl is not None and "WHERE" in ddl.upper() and "running" in ddl


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
def test_the_overdue_listing_uses_the_due_index(db_url: str) -> None:
    """``deadlines --overdue``: running deadlines due before now, read through the partial index
    on running deadlines by due moment (which also gives their order), not every running one."""
    plan = _plan(db_url, "deadlines_in_state_due_before", lambda c: {"state": "running", "due_before": c.ts_in(T0)})
    assert "ix_deadlines_running_due_at" in plan, plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan  # the index gives the order
