"""The schema: migrations match the SQLModel tables, init is repeatable, and an un-initialised
or outdated database is refused with a message that says what to run."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from storage import initialise, open_backend
from storage.db import make_engine
from storage.migrate import alembic_config, head_revision
from storage.tables import METADATA
from tests.conftest import SQL_BACKENDS
from workflow.errors import StorageNotReady


@pytest.fixture(params=SQL_BACKENDS)
def blank_url(request: pytest.FixtureRequest) -> str:
    """An empty database (no schema yet) of each SQL kind."""
    return request.getfixturevalue("pg_url" if request.param == "postgres" else "sqlite_url")


def test_models_and_migrations_do_not_drift(blank_url: str) -> None:
    initialise(blank_url)
    engine = make_engine(blank_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), METADATA)
    engine.dispose()
    assert diff == []


def test_init_is_repeatable_and_reaches_head(blank_url: str) -> None:
    assert initialise(blank_url) == head_revision()
    assert initialise(blank_url) == head_revision()
    open_backend(blank_url).close()


def test_downgrade_then_upgrade_round_trips(blank_url: str) -> None:
    initialise(blank_url)
    engine = make_engine(blank_url)
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
    engine.dispose()
    with pytest.raises(StorageNotReady, match="not initialised"):
        open_backend(blank_url)
    assert initialise(blank_url) == head_revision()


def test_uninitialised_database_is_refused(blank_url: str) -> None:
    make_engine(blank_url).connect().close()  # the database exists but has no schema
    with pytest.raises(StorageNotReady, match=r"not initialised: run `second-opinion init`"):
        open_backend(blank_url)


def test_missing_sqlite_file_is_refused_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.sqlite3"
    with pytest.raises(StorageNotReady, match="does not exist: run `second-opinion init`"):
        open_backend(f"sqlite:///{path}")
    assert not path.exists()


def test_outdated_schema_is_refused(blank_url: str) -> None:
    initialise(blank_url)
    engine = make_engine(blank_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0000'"))
    engine.dispose()
    with pytest.raises(StorageNotReady, match=f"schema revision 0000, this version needs {head_revision()}"):
        open_backend(blank_url)


def test_sqlite_connections_use_wal_and_a_busy_timeout(sqlite_url: str) -> None:
    initialise(sqlite_url)
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_the_schema_head_constant_is_the_migrations_head() -> None:
    """Opening storage compares the database with ``SCHEMA_HEAD`` rather than asking Alembic."""
    from storage.revision import SCHEMA_HEAD

    assert head_revision() == SCHEMA_HEAD


def test_opening_and_checking_storage_do_not_import_alembic(sqlite_url: str) -> None:
    import subprocess
    import sys

    initialise(sqlite_url)
    probe = (
        "import sys, storage\n"
        f"storage.open_backend({sqlite_url!r}).check()\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'alembic'], 'alembic imported'\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True)


def test_the_work_list_migration_fills_the_derived_columns_of_existing_cases(tmp_path: Path) -> None:
    """0010 on a database written before it (the pre-rebuild fixture, at 0009): each case's provider
    and assignee come from its facts, its due moment from its open deadlines, and the work lists
    read the upgraded file as they read a new one."""
    import json
    import shutil

    from second_opinion import connect
    from tests.fixtures import make_pre_rebuild as maker
    from workflow.listing import case_due_at, provider_of
    from workflow.service.worklists import WorkListQuery

    copy = tmp_path / maker.DB_NAME
    shutil.copy(Path(__file__).resolve().parents[1] / "fixtures" / maker.DB_NAME, copy)
    url = f"sqlite:///{copy}"
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0009"
    assert initialise(url) == head_revision()
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(text("SELECT id, facts, provider, assignee, due_at FROM cases"))}
    engine.dispose()
    with connect(url) as service:
        for case_id, row in rows.items():
            assert row.provider == provider_of(json.loads(row.facts)) and row.assignee is None
            due = case_due_at(service.deadlines_of(case_id))
            assert (row.due_at is None) == (due is None), case_id
        assert any(row.due_at is not None for row in rows.values())  # the fixture has a running deadline
        listed = service.worklist(WorkListQuery(sort="due"))
        assert {r.case.id for r in listed.rows} == set(rows)
        assert [r.due_at for r in listed.rows if r.due_at] == sorted(r.due_at for r in listed.rows if r.due_at)
