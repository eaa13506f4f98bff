"""``access-log verify`` checks the index of cases shown (``access_cases_shown``) against the list
pages it indexes, on memory, SQLite and PostgreSQL: "who saw this patient" finds a page through
that index, which no hash covers, so a row removed (the page vanishes from the case's access log)
or a row added (a page seems to have shown a case it did not) must be named by position."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from storage.ddl import append_only_ddl, drop_append_only_ddl
from tests.conftest import BACKENDS, DESK, SQL_BACKENDS, sql_engine, walk
from workflow import CaseService
from workflow.access.log import AccessRecord
from workflow.access.rules import Principal
from workflow.service.access import AccessService
from workflow.service.tokens import TokenService
from workflow.service.worklists import WorkListQuery


def two_pages(service: CaseService) -> tuple[AccessService, list[str]]:
    """Three referred cases, listed by a coordinator in pages of two: two list records."""
    ids = []
    for i in range(3):
        case_id = service.open_case(f"PX-I{i}", actor=DESK, organisation="org-a").case_id
        walk(service, case_id, "referred")
        ids.append(case_id)
    _, token = TokenService(service.runtime).create("desk-1", "coordinator", "org-a")
    access, desk = AccessService(service.runtime), Principal(token, client="10.0.0.1")
    first = access.worklist(desk, WorkListQuery(limit=2, sort="opened"))
    access.worklist(desk, WorkListQuery(limit=2, sort="opened", cursor=first.next_cursor))
    return access, ids


def sql(url: str, statement: str, *, bypass: bool = False, **params: str) -> None:
    """One statement straight on the database, as its owner; ``bypass`` lifts the index's
    append-only triggers for it and puts them back."""
    engine = sql_engine(url)
    dialect, table = engine.dialect.name, "access_cases_shown"
    try:
        with engine.begin() as conn:
            for ddl in drop_append_only_ddl(dialect, table) if bypass else []:
                conn.exec_driver_sql(ddl)
            conn.execute(text(statement), params)
            for ddl in append_only_ddl(dialect, table) if bypass else []:
                conn.exec_driver_sql(ddl)
    finally:
        engine.dispose()


def pages(service: CaseService) -> list[AccessRecord]:
    with service.unit_of_work(False) as uow:
        return [r for r in uow.access.all() if r.kind == "list"]


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_an_untouched_index_verifies_and_agrees_with_every_page(service: CaseService) -> None:
    access, ids = two_pages(service)
    assert access.verify_log()[1] == []
    with service.unit_of_work(False) as uow:
        shown = uow.access.shown()
    listed = pages(service)
    assert sorted(shown) == sorted((r.prev_hash, c) for r in listed for c in r.cases or ())
    assert sorted(c for _, c in shown) == sorted(ids)


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
def test_a_row_removed_from_the_index_is_named_by_the_page(service: CaseService, db_url: str) -> None:
    access, _ = two_pages(service)
    second = pages(service)[1]
    alone = second.cases[0]  # type: ignore[index]  # the case the second page showed
    assert second.hash in about(service, alone)  # the page is found from the case before the row goes
    sql(db_url, "DELETE FROM access_cases_shown WHERE case_id = :c", bypass=True, c=alone)
    count, problems = access.verify_log()
    assert problems == [f"access record {second.sequence}: the index of cases shown lacks case {alone} "
                        "(a row was removed: the case's access log no longer finds this page)"]  # fmt: skip
    assert count > 0
    assert second.hash not in about(service, alone)  # what the removal hid, and verify now names


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
def test_a_row_added_to_the_index_is_named(service: CaseService, db_url: str) -> None:
    access, ids = two_pages(service)
    first, second = pages(service)
    other = second.cases[0]  # type: ignore[index]  # shown by the second page, not the first
    # no trigger refuses an insert: the index is append-only, and a forged row is an append
    sql(db_url, "INSERT INTO access_cases_shown (prev_hash, case_id) VALUES (:p, :c)", p=first.prev_hash, c=other)
    sql(db_url, "INSERT INTO access_cases_shown (prev_hash, case_id) VALUES (:p, :c)", p="f" * 64, c=ids[0])
    problems = access.verify_log()[1]
    assert problems == [
        f"access record {first.sequence}: the index of cases shown names case {other}, which the page did not "
        "show (a row was added)",
        f"the index of cases shown names case {ids[0]} for a record that is not in the log (a row was added)",
    ]


def about(service: CaseService, case_id: str) -> set[str]:
    """The hashes of the records an auditor of the case's organisation sees about it."""
    _, token = TokenService(service.runtime).create("aud-1", "auditor", "org-a")
    return {r.hash for r in AccessService(service.runtime).access_records(Principal(token), case_id)}
