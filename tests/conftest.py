"""Shared fixtures: one service per backend (memory, SQLite file, PostgreSQL schema).

PostgreSQL: ``SECOND_OPINION_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432/test``).
Every test that uses it gets a fresh schema, dropped afterwards. When no server answers, those
tests skip with the reason locally; under ``CI=true`` they fail instead, so CI can never pass
on SQLite alone.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from second_opinion import connect
from storage import initialise
from storage.db import make_engine
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

# A valid command for each event, from a case walked along the happy path (see walk()).
EXAMPLES: dict[str, tuple[Actor, str | None, dict]] = {
    "record_circumstances": (DESK, None, NO_CIRCUMSTANCES),
    "contact_costs_team": (DESK, None, {}),
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
    "refer": (GP, None, {}),
    "receive_dossier": (DOCTOR, None, {}),
    "review": (DOCTOR, None, {}),
    "return_advice": (DOCTOR, None, {}),
    "hand_back": (DESK, None, {}),
    "transfer_care": (DESK, "the advised treatment is only offered here", {}),
    "withdraw": (DESK, "patient's wish", {}),
    "decline": (DOCTOR, "outside our specialism", {}),
}
# The commands that take a new domestic case to each state.
PATHS: dict[str, list[str]] = {
    "requested": [],
    "referred": ["record_circumstances", "give_consent", "refer"],
}
PATHS["dossier_received"] = [*PATHS["referred"], "receive_item", "receive_dossier"]
PATHS["reviewed"] = [*PATHS["dossier_received"], "review"]
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
    """Fire the happy-path commands that bring a fresh domestic case to ``to_state``."""
    for event in PATHS[to_state]:
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


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A URL whose search_path is a brand-new schema, initialised to the head revision."""
    with pg_schema() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cases.sqlite3'}"


@pytest.fixture
def db_url(request: pytest.FixtureRequest) -> str:
    """URL of an initialised database of the kind named by the test's ``backend`` parameter."""
    kind = request.param if hasattr(request, "param") else "sqlite"
    if kind == "memory":
        return "memory://"
    url = request.getfixturevalue("pg_url" if kind == "postgres" else "sqlite_url")
    initialise(url)
    return url


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
