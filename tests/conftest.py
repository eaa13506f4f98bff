"""Shared fixtures: one service per backend (memory, SQLite file, PostgreSQL schema).

PostgreSQL: ``SECOND_OPINION_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432/test``).
Every test that uses it gets a fresh schema, dropped afterwards. When no server answers, those
tests skip with the reason locally; under ``CI=true`` they fail instead, so CI can never pass
on SQLite alone.

Initialised databases are copies: the migrations run once per test process (per xdist worker),
into a template, and every test gets a fresh copy of it (SQLite: the file, copied; PostgreSQL:
the statements the migrations sent, replayed into the test's own schema). Tests of the
migrations and of ``init`` ask for a blank database (``sqlite_url``, ``pg_url``) and migrate it
themselves.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import event as sqlalchemy_event

from second_opinion import connect
from storage import initialise
from storage.db import make_engine
from storage.migrate import upgrade
from workflow import Actor, CaseService, FixedClock

PG_URL = os.environ.get("SECOND_OPINION_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
DESK = Actor("desk-1", "coordinator")
DOCTOR = Actor("dr-1", "second_opinion_doctor")
PATIENT = Actor("pat-1", "patient")
GP = Actor("gp-1", "gp")
FIRST = Actor("fp-1", "first_provider")
CONSULTANT = Actor("zc-1", "care_consultant")
AUDITOR = Actor("aud-1", "auditor")

NO_CIRCUMSTANCES = {"treated_abroad": False, "insured_abroad": False, "has_pathology": False, "has_imaging": False}
CONSENT = {"basis": "written", "scope": "full dossier to the second-opinion provider"}
# Seed 000's five conditions met on the domestic route, for an adult: covered, with eigen risico.
COVERAGE_FACTS = {
    "purpose": "treatment", "care_in_basic_package": True, "same_specialty": True, "referral_by": "gp",
    "returns_to_first_provider": True, "gp_or_obstetric_care": False, "age_band": "adult",
}  # fmt: skip

# A valid command for each event, from a case walked along the happy path (see walk()).
EXAMPLES: dict[str, tuple[Actor, str | None, dict]] = {
    "record_circumstances": (DESK, None, NO_CIRCUMSTANCES),
    "contact_costs_team": (DESK, None, {}),
    "choose_provider": (PATIENT, None, {"provider": "umc-utrecht"}),
    "proceed_self_paying": (PATIENT, None, {}),
    "refuse_referral": (FIRST, "repeated requests without new arguments", {}),
    "escalate": (PATIENT, "disagrees with the first provider", {}),
    "give_consent": (PATIENT, None, CONSENT),
    "withdraw_consent": (PATIENT, None, {}),
    "receive_item": (DOCTOR, None, {"item": "letter"}),
    "waive_item": (DOCTOR, "no pathology was done", {"item": "pathology"}),
    "require_consultation": (DOCTOR, None, {}),
    "record_consultation": (DOCTOR, None, {}),
    "request_information": (DOCTOR, "the pathology report is illegible", {}),
    "receive_information": (DOCTOR, None, {}),
    "upgrade_route": (DESK, None, {"to_version": 2}),
    "decide_coverage": (CONSULTANT, None, {"policy": "pno-basic", "facts": COVERAGE_FACTS}),
    "refer": (GP, None, {}),
    "receive_dossier": (DOCTOR, None, {}),
    "review": (DOCTOR, None, {}),
    "return_advice": (DOCTOR, None, {"outcome": "agrees"}),
    "hand_back": (DESK, None, {}),
    "record_adoption": (FIRST, None, {"adopted": True}),
    "transfer_care": (DESK, "the advised treatment is only offered here", {}),
    "withdraw": (DESK, "patient's wish", {}),
    "decline": (DOCTOR, "outside our specialism", {}),
    "assign": (DESK, None, {"assignee": "desk-2"}),
    "unassign": (DESK, None, {}),
}
# The commands that take a new domestic case to each state, at UMC Utrecht (which sees every patient).
PATHS: dict[str, list[str]] = {
    "requested": [],
    "referred": ["record_circumstances", "give_consent", "choose_provider", "refer"],
}
PATHS["dossier_received"] = [*PATHS["referred"], "receive_item", "receive_dossier"]
PATHS["reviewed"] = [*PATHS["dossier_received"], "record_consultation", "review"]
PATHS["advice_returned"] = [*PATHS["reviewed"], "return_advice"]
PATHS["back_to_first_provider"] = [*PATHS["advice_returned"], "hand_back"]
PATHS["care_transferred"] = [*PATHS["advice_returned"], "transfer_care"]
PATHS["withdrawn"] = ["withdraw"]
PATHS["declined"] = ["decline"]


def fire_example(service, case_id: str, event: str, **overrides):  # type: ignore[no-untyped-def]
    actor, reason, data = EXAMPLES[event]
    kwargs = {"actor": actor, "reason": reason, "data": data, **overrides}
    return service.fire(case_id, event, **kwargs)


def walk(service, case_id: str, to_state: str) -> None:  # type: ignore[no-untyped-def]
    """Fire the happy-path commands that bring a fresh domestic case to ``to_state``; a case on a
    route version without providers (version 1) has none to choose."""
    case = service.case(case_id)
    route = service.definition.route(case.route, case.facts.get("route_version", 1))
    for event in PATHS[to_state]:
        if event != "choose_provider" or route.uses_providers:
            fire_example(service, case_id, event)

BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
SQL_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]

_pg_problem: str | None = None
_pg_checked = False


def _require_postgres() -> None:
    global _pg_checked, _pg_problem
    if not _pg_checked:
        _pg_checked = True
        try:
            psycopg.connect(PG_URL, connect_timeout=3).close()
        except psycopg.Error as exc:
            _pg_problem = f"PostgreSQL at {PG_URL} does not answer: {str(exc).strip().splitlines()[0]}"
    if _pg_problem:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{_pg_problem} (CI=true requires PostgreSQL)")
        pytest.skip(_pg_problem)


@contextmanager
def pg_schema(prefix: str = "t_") -> Iterator[str]:
    """A URL whose search_path is a brand-new, empty schema, dropped afterwards: tests on one
    PostgreSQL server never see each other's rows."""
    _require_postgres()
    schema = f"{prefix}{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(autouse=True)
def _english_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite's expected texts are English: a ``SECOND_OPINION_LANG`` set on the developer's
    machine must not turn them Dutch (the language tests set it themselves)."""
    monkeypatch.delenv("SECOND_OPINION_LANG", raising=False)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A URL whose search_path is a brand-new, empty schema (not initialised: see ``db_url``)."""
    with pg_schema() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A URL of a SQLite file that does not exist yet (not initialised: see ``db_url``)."""
    return f"sqlite:///{tmp_path / 'cases.sqlite3'}"


# --- migrated templates ------------------------------------------------------------------------

_sqlite_template: Path | None = None
_pg_migration: list[tuple[str, Any, bool]] | None = None


def _sqlite_template_file() -> Path:
    """A SQLite file migrated to the head revision, made once per process; its WAL is folded in
    (checkpointed, and removed by closing the last connection), so the file alone is the database."""
    global _sqlite_template
    if _sqlite_template is None:
        directory = Path(tempfile.mkdtemp(prefix="second-opinion-template-"))
        atexit.register(shutil.rmtree, directory, True)
        path = directory / "cases.sqlite3"
        initialise(f"sqlite:///{path}")
        with closing(sqlite3.connect(path)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        for suffix in ("-wal", "-shm", "-journal"):
            assert not Path(f"{path}{suffix}").exists(), f"template left {path}{suffix} behind"
        _sqlite_template = path
    return _sqlite_template


def migrated_sqlite(path: Path) -> str:
    """Create ``path`` as a copy of the migrated template; returns its URL (as ``initialise`` would
    have left it, without running the migrations again)."""
    shutil.copyfile(_sqlite_template_file(), path)
    return f"sqlite:///{path}"


def _schema_of(url: str) -> str:
    return url.rsplit("search_path%3D", 1)[1]


def _pg_signature(schema: str) -> list[tuple[Any, ...]]:
    """Everything the migrations define in ``schema``, with the schema's name taken out."""
    queries = [
        "SELECT table_name, column_name, ordinal_position, data_type, is_nullable, column_default "
        "FROM information_schema.columns WHERE table_schema = %(s)s ORDER BY 1, 3",
        "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = %(s)s ORDER BY 1, 2",
        "SELECT c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid) FROM pg_constraint k "
        "JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %(s)s ORDER BY 1, 2",
        "SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %(s)s AND NOT t.tgisinternal ORDER BY 1, 2",
        "SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = %(s)s ORDER BY 1",
        "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %(s)s ORDER BY 1",
    ]
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        found = [tuple(row) for q in queries for row in conn.execute(q, {"s": schema}).fetchall()]
        found += [("alembic_version", *row) for row in conn.execute(f"SELECT * FROM {schema}.alembic_version")]
    return [tuple(str(v).replace(schema, "<schema>") if isinstance(v, str) else v for v in row) for row in found]


def _replay(url: str, statements: list[tuple[str, Any, bool]]) -> None:
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        for statement, parameters, many in statements:
            if many:
                cursor.executemany(statement, parameters)
            else:
                cursor.execute(statement, parameters)


def _pg_migration_statements() -> list[tuple[str, Any, bool]]:
    """What the migrations send to PostgreSQL (all of it unqualified, so it lands in whatever schema
    the search_path names), recorded once per process from a real ``initialise``; reads are left out.
    Checked once: a schema made by replaying it has the same tables, columns, defaults, indexes,
    constraints, triggers, functions and revision as the migrated one."""
    global _pg_migration
    if _pg_migration is None:
        recorded: list[tuple[str, Any, bool]] = []
        with pg_schema("t_tmpl_") as migrated, pg_schema("t_tmpl_") as replayed:
            engine = make_engine(migrated)

            @sqlalchemy_event.listens_for(engine, "before_cursor_execute")
            def _record(_conn, _cursor, statement, parameters, _context, executemany) -> None:  # type: ignore[no-untyped-def]
                if not statement.lstrip().upper().startswith("SELECT"):
                    recorded.append((statement, parameters, executemany))

            try:
                upgrade(engine)
            finally:
                engine.dispose()
            schema = _schema_of(migrated)
            assert not [s for s, _, _ in recorded if schema in s], "a migration named its schema"
            _replay(replayed, recorded)
            assert _pg_signature(_schema_of(replayed)) == _pg_signature(schema), "replay differs from migrating"
        _pg_migration = recorded
    return _pg_migration


def migrated_pg(url: str) -> str:
    """Bring the empty schema ``url`` names to the head revision (the migrations' statements,
    replayed); returns ``url``."""
    _require_postgres()
    _replay(url, _pg_migration_statements())
    return url


@pytest.fixture
def db_url(request: pytest.FixtureRequest) -> str:
    """URL of an initialised database of the kind named by the test's ``backend`` parameter."""
    kind = request.param if hasattr(request, "param") else "sqlite"
    if kind == "memory":
        return "memory://"
    if kind == "postgres":
        return migrated_pg(request.getfixturevalue("pg_url"))
    url: str = request.getfixturevalue("sqlite_url")
    return migrated_sqlite(Path(url.removeprefix("sqlite:///")))


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def service(db_url: str, clock: FixedClock) -> Iterator[CaseService]:
    with connect(db_url, clock=clock) as svc:
        yield svc


def sql_engine(url: str):  # type: ignore[no-untyped-def]
    """A raw engine on the same database, for tests that must look under the service."""
    return make_engine(url)


LONG_FIRST = (
    "tests/reliability/test_bench.py",
    "tests/reliability/test_worker.py",
    "tests/reliability/test_db_outage.py",
    "tests/reliability/test_sigkill.py",
    "tests/reliability/test_privacy_scan.py",
    "tests/reliability/test_api_servers.py",
    "tests/reliability/test_hostile_clients.py",
    "tests/cli/test_readme_tour.py",
    "tests/contract/test_pre_rebuild.py",
    "tests/api/test_api_docs.py",
)
"""Modules whose tests take tens of seconds each (processes, servers, the benchmark run): handed
out first, so that parallel workers (``-n``) do not end the run waiting on one of them alone."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return LONG_FIRST.index(path) if path in LONG_FIRST else len(LONG_FIRST)

    items.sort(key=rank)  # stable: the order within each module, and of the rest, is kept
