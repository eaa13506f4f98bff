"""A board's counts per state come from ``case_counts``, kept by triggers on ``cases`` (migration
0012), on SQLite and PostgreSQL: after opening and moving cases of two organisations on two routes
the kept counts equal a count of the cases; the board's filters read them (a changed row shows,
which proves the read); any other filter counts the cases; and the migration fills the counts of
cases written before it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import text

from storage import initialise
from tests.conftest import DESK, SQL_BACKENDS, fire_example, sql_engine, walk
from workflow import CaseService
from workflow.service.worklists import WorkListQuery

KEPT = "SELECT organisation, route, state, n FROM case_counts WHERE n > 0 ORDER BY 1, 2, 3"
COUNTED = ("SELECT organisation, route, state, count(*) FROM cases GROUP BY organisation, route, state "
           "ORDER BY 1, 2, 3")  # fmt: skip


def rows(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = sql_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
def test_the_kept_counts_follow_every_case_and_the_board_reads_them(service: CaseService, db_url: str) -> None:
    for i, (org, state) in enumerate([("org-a", "requested"), ("org-a", "referred"), ("org-a", "referred"),
                                      ("org-b", "referred"), ("org-a", "withdrawn")]):  # fmt: skip
        case_id = service.open_case(f"PX-C{i}", actor=DESK, organisation=org).case_id
        if state == "withdrawn":
            fire_example(service, case_id, "withdraw")
        elif state != "requested":
            walk(service, case_id, state)
    service.open_case("PX-RD", actor=DESK, organisation="org-a", route="royal-doctors")
    assert rows(db_url, KEPT) == rows(db_url, COUNTED)
    assert service.case_counts(WorkListQuery(organisation="org-a")) == {"requested": 2, "referred": 2, "withdrawn": 1}
    assert service.case_counts(WorkListQuery(organisation="org-a", route="domestic", state="referred")) == {
        "referred": 2}
    # the board's filters read the kept row: changing it (as only a trigger should) shows in the answer
    engine = sql_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE case_counts SET n = 99 WHERE organisation = 'org-b' AND state = 'referred'"))
    engine.dispose()
    assert service.case_counts(WorkListQuery(organisation="org-b")) == {"referred": 99}
    # another filter counts the cases themselves
    assert service.case_counts(WorkListQuery(organisation="org-b", patient_ref="PX-C3")) == {"referred": 1}


def test_the_migration_fills_the_counts_of_cases_written_before_it(tmp_path: Path) -> None:
    from tests.fixtures import make_pre_rebuild as maker

    copy = tmp_path / maker.DB_NAME
    shutil.copy(Path(__file__).resolve().parents[1] / "fixtures" / maker.DB_NAME, copy)
    url = f"sqlite:///{copy}"
    initialise(url)
    kept, counted = rows(url, KEPT), rows(url, COUNTED)
    assert kept == counted and sum(int(r[3]) for r in kept) > 1  # type: ignore[call-overload]
