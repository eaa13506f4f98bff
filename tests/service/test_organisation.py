"""Cases belong to an organisation: recorded at opening, listed by it, and checked by verify."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.conftest import BACKENDS, DESK, SQL_BACKENDS, sql_engine
from workflow import CaseService, IdempotencyConflict, ValidationError


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_organisation_is_recorded_and_listed(service: CaseService) -> None:
    a = service.open_case("PX-O1", actor=DESK, organisation="zilveren-kruis.desk").case_id
    b = service.open_case("PX-O2", actor=DESK).case_id
    assert service.case(a).organisation == "zilveren-kruis.desk" and service.case(b).organisation == "local"
    assert service.history(a)[0].payload["organisation"] == "zilveren-kruis.desk"
    assert [c.id for c in service.cases(organisation="zilveren-kruis.desk")] == [a]
    assert [c.id for c in service.cases(organisation="local")] == [b]
    assert service.verify().ok


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
@pytest.mark.parametrize("bad", ["x", "a b c", "org/1", "999999990"])  # too short, space, slash, a BSN
def test_bad_organisation_ids_are_refused_and_nothing_is_written(service: CaseService, bad: str) -> None:
    with pytest.raises(ValidationError, match="organisation"):
        service.open_case("PX-O3", actor=DESK, organisation=bad)
    assert service.cases() == []


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_the_organisation_is_part_of_an_idempotent_request(service: CaseService) -> None:
    service.open_case("PX-O4", actor=DESK, organisation="org-a", idempotency_key="k-1")
    with pytest.raises(IdempotencyConflict):
        service.open_case("PX-O4", actor=DESK, organisation="org-b", idempotency_key="k-1")


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
def test_a_case_moved_to_another_organisation_is_reported(db_url: str, service: CaseService) -> None:
    case_id = service.open_case("PX-O5", actor=DESK, organisation="org-a").case_id
    engine = sql_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE cases SET organisation = 'org-b' WHERE id = :c"), {"c": case_id})
    engine.dispose()
    (finding,) = service.verify().findings
    assert "organisation differs from the one recorded when it was opened" in finding.problem


def test_cli_open_and_list_by_organisation(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.cli.test_cli import ENV, Cli

    cli = Cli(tmp_path / "org.sqlite3")
    cli.run("init")
    mine = cli.open("--org", "umcu-desk")
    cli.open()
    env = {**ENV, "SECOND_OPINION_ORG": "umcu-desk"}
    other = cli.run("open", "--patient-ref", "PX-0002", env=env).stdout.strip()
    # the clock is pinned, so both opened at one instant and list by id: compare as a set
    assert {c["id"] for c in cli.json("cases", "--org", "umcu-desk")} == {mine, other}
    assert cli.json("show", mine)["organisation"] == "umcu-desk"
    assert "invalid organisation" in cli.run("open", "--patient-ref", "PX-3", "--org", "a b", code=1).stderr
