"""The work lists' storage contract (issue 16), on memory, SQLite and PostgreSQL: case pages
filtered, ordered and continued after a position (keyset) exactly as the domain's own filter
(:meth:`workflow.listing.CaseFilter.keeps`) would, per-state counts, open deadlines by due moment
(breached and not stopped included), the derived columns in step with facts and deadlines, and
access-log page records found by every case they name."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from storage import open_backend
from tests.conftest import BACKENDS, SQL_BACKENDS, sql_engine
from tests.contract.test_deadline_index import _plan
from workflow import Case
from workflow.access import log as access_log
from workflow.audit.chain import GENESIS
from workflow.deadlines.policies import BREACHED, MET, PAUSED, RUNNING, Deadline
from workflow.listing import CaseFilter, Position, case_due_at

T = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)


@pytest.fixture
def backend(db_url):
    backend = open_backend(db_url)
    yield backend
    backend.close()


def committed(backend, *writes):
    with backend.unit_of_work(True) as uow:
        for write in writes:
            write(uow)
        uow.commit()


def a_case(i: int, **changes: Any) -> Case:
    base = Case(f"so-{i:02d}", f"PX-{i % 4}", "domestic" if i % 2 else "royal-doctors", "referred" if i % 3 else
                "requested", 1, T + i * H, T + (20 - i) * H, "h" * 64, 1,
                facts={"route_version": 2, "provider": {"id": "umc-utrecht" if i % 2 else "jeroen-bosch"},
                       **({"assignee": {"id": f"desk-{i % 2}"}} if i % 5 else {})},
                organisation="org-a" if i < 9 else "org-b")  # fmt: skip
    return replace(base, **changes)


def a_deadline(case_id: str, due: datetime | None, state: str = RUNNING, stopped: datetime | None = None,
               policy: str = "domestic-dossier") -> Deadline:  # fmt: skip
    return Deadline(case_id, policy, state, "nl-atw", 10, T, due, None, 0, {}, stopped, T)


# deadlines by case index: open (running, breached not stopped) and closed ones
DUE = {
    1: [a_deadline("so-01", T + 5 * H)],
    2: [a_deadline("so-02", T + 2 * H, BREACHED)],
    3: [a_deadline("so-03", T + 3 * H, BREACHED, stopped=T + 4 * H)],  # breached, then stopped: closed
    4: [a_deadline("so-04", T + 1 * H, MET, stopped=T)],
    5: [a_deadline("so-05", None, PAUSED)],
    6: [a_deadline("so-06", T + 8 * H), a_deadline("so-06", T + 7 * H, BREACHED, policy="royal-doctors-report")],
    7: [a_deadline("so-07", T + 2 * H)],  # same due moment as so-02: ties by id
    10: [a_deadline("so-10", T + 9 * H)],
}
CASES = [a_case(i) for i in range(12)]


@pytest.fixture
def filled(backend):
    committed(backend, *[lambda uow, c=c: uow.cases.add(c) for c in CASES])
    committed(backend, *[lambda uow, d=d: uow.deadlines.save(d, new=True) for ds in DUE.values() for d in ds])
    return backend


def expected(where: CaseFilter, order: str, descending: bool = False) -> list[str]:
    due = {c.id: case_due_at(DUE.get(int(c.id[3:]), [])) for c in CASES}
    if order == "due_at":
        where = replace(where, dated=True)
    kept = [c for c in CASES if where.keeps(c, due[c.id])]

    def key(c: Case) -> Any:
        return c.id if order == "id" else (due[c.id] if order == "due_at" else getattr(c, order), c.id)

    return [c.id for c in sorted(kept, key=key, reverse=descending)]


def paged(backend, where: CaseFilter, order: str, descending: bool = False, limit: int = 3) -> list[str]:
    """Every page in turn, each after the last row of the one before."""
    out: list[str] = []
    after = None
    while True:
        with backend.unit_of_work(False) as uow:
            page = uow.cases.page(where, order, descending=descending, after=after, limit=limit)
        out += [p.case.id for p in page]
        if len(page) < limit:
            return out
        last = page[-1]
        key = None if order == "id" else last.due_at if order == "due_at" else getattr(last.case, order)
        after = Position(key, last.case.id)


FILTERS = [
    CaseFilter(),
    CaseFilter(organisation="org-a"),
    CaseFilter(state="referred"),
    CaseFilter(route="domestic", organisation="org-a"),
    CaseFilter(provider="umc-utrecht"),
    CaseFilter(assignee="desk-1"),
    CaseFilter(patient_ref="PX-3"),
    CaseFilter(updated_since=T + 12 * H),
    CaseFilter(due_before=T + 6 * H),  # overdue at T + 6h: running or breached-not-stopped, due before
    CaseFilter(due_from=T + 2 * H, due_to=T + 7 * H),
    CaseFilter(dated=False),
    CaseFilter(organisation="org-a", state="referred", provider="umc-utrecht", due_before=T + 9 * H),
    CaseFilter(patient_ref="PX-9"),  # nobody
]


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
@pytest.mark.parametrize("where", FILTERS, ids=lambda f: ",".join(f.given()) or "none")
def test_pages_filter_and_order_as_the_domain_filter_does(filled, where: CaseFilter) -> None:
    for order, descending in itertools.product(("opened_at", "updated_at", "due_at", "id"), (False, True)):
        want = expected(where, order, descending)
        assert paged(filled, where, order, descending) == want, (order, descending)
        with filled.unit_of_work(False) as uow:
            assert [p.case.id for p in uow.cases.page(where, order, descending=descending, limit=200)] == want


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_overdue_keeps_breached_deadlines_not_stopped_and_gives_the_earliest_due(filled) -> None:
    with filled.unit_of_work(False) as uow:
        page = uow.cases.page(CaseFilter(due_before=T + 6 * H), "due_at", limit=50)
        due = {p.case.id: p.due_at for p in page}
    # so-02 breached (not stopped) is overdue; so-03 breached and stopped, so-04 met, so-05 paused are not
    assert list(due) == ["so-02", "so-07", "so-01"]
    with filled.unit_of_work(False) as uow:
        (six,) = uow.cases.page(CaseFilter(patient_ref="PX-2", state="requested", dated=True), "id", limit=5)
    assert six.case.id == "so-06" and six.due_at == T + 7 * H  # its earliest open deadline


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_counts_per_state(filled) -> None:
    with filled.unit_of_work(False) as uow:
        assert uow.cases.counts(CaseFilter()) == {"requested": 4, "referred": 8}
        assert uow.cases.counts(CaseFilter(organisation="org-b")) == {"requested": 1, "referred": 2}
        assert uow.cases.counts(CaseFilter(due_before=T + 6 * H)) == {"referred": 3}
        assert uow.cases.counts(CaseFilter(patient_ref="nobody")) == {}


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_open_deadlines_by_due_moment(filled) -> None:
    with filled.unit_of_work(False) as uow:
        overdue = [(d.case_id, d.state) for d in uow.deadlines.open_due(T + 6 * H)]
        soon = [d.case_id for d in uow.deadlines.open_due(T + 9 * H, T + 5 * H)]
        late_moments = uow.deadlines.open_due(datetime(9999, 12, 31, 23, tzinfo=UTC))
    assert overdue == [("so-02", BREACHED), ("so-07", RUNNING), ("so-01", RUNNING)]
    assert soon == ["so-01", "so-06", "so-06"]  # from (inclusive) and before (strict)
    assert len(late_moments) == 6


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_a_page_after_writes_continues_where_it_ended(filled) -> None:
    """Keyset on an order that never changes (opening): cases changed, moved to other states and
    due moments, and new cases opened before the cursor, between two page reads: every case of the
    first read is shown exactly once."""
    where = CaseFilter(organisation="org-a")
    with filled.unit_of_work(False) as uow:
        first = uow.cases.page(where, "opened_at", limit=4)
    seen = [p.case.id for p in first]
    committed(
        filled,
        lambda uow: uow.cases.update(
            replace(a_case(1), state="reviewed", version=2, updated_at=T + 30 * H),
            expected_version=1,
            expected_audit_count=1,
        ),
        lambda uow: uow.cases.update(
            replace(a_case(6), version=2, updated_at=T + 31 * H), expected_version=1, expected_audit_count=1
        ),
        lambda uow: uow.deadlines.save(replace(DUE[7][0], state=MET, stopped_at=T + 30 * H)),
        lambda uow: uow.cases.add(a_case(40, id="so-40", opened_at=T - H)),  # before the cursor
        lambda uow: uow.cases.add(a_case(41, id="so-41", opened_at=T + 50 * H, organisation="org-a")),
    )
    last = first[-1]
    rest = paged_from(filled, where, Position(last.case.opened_at, last.case.id))
    shown = seen + rest
    assert len(shown) == len(set(shown))
    assert set(shown) == {c.id for c in CASES if c.organisation == "org-a"} | {"so-41"}


def paged_from(backend, where: CaseFilter, after: Position) -> list[str]:
    out = []
    while True:
        with backend.unit_of_work(False) as uow:
            page = uow.cases.page(where, "opened_at", after=after, limit=3)
        out += [p.case.id for p in page]
        if len(page) < 3:
            return out
        after = Position(page[-1].case.opened_at, page[-1].case.id)


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_derived_columns_follow_facts_and_deadlines(filled) -> None:
    moved = replace(a_case(1), version=2, facts={"route_version": 2, "provider": {"id": "generic"},
                                                  "assignee": {"id": "desk-9"}})  # fmt: skip
    committed(filled, lambda uow: uow.cases.update(moved, expected_version=1, expected_audit_count=1),
              lambda uow: uow.deadlines.save(replace(DUE[1][0], state=MET, stopped_at=T)))  # fmt: skip
    with filled.unit_of_work(False) as uow:
        assert [p.case.id for p in uow.cases.page(CaseFilter(provider="generic"), "id", limit=5)] == ["so-01"]
        assert [p.case.id for p in uow.cases.page(CaseFilter(assignee="desk-9"), "id", limit=5)] == ["so-01"]
        (one,) = uow.cases.page(CaseFilter(patient_ref="PX-1", organisation="org-a", state="referred"), "id",
                                limit=1)  # fmt: skip
        assert one.case.id == "so-01" and one.due_at is None  # its only deadline is met


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
def test_the_stored_columns_agree_with_the_facts_and_deadlines(filled, db_url: str) -> None:
    """The derived columns as stored, read under the library: what the contract's pages rely on."""
    engine = sql_engine(db_url)
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(text("SELECT id, provider, assignee, due_at FROM cases"))}
    engine.dispose()
    for case in CASES:
        row = rows[case.id]
        assert row.provider == case.facts["provider"]["id"]
        assert row.assignee == case.facts.get("assignee", {}).get("id")
        due = case_due_at(DUE.get(int(case.id[3:]), []))
        assert (row.due_at is None) == (due is None), case.id


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_a_page_record_is_found_by_every_case_it_names_and_verifies(backend) -> None:
    base = {"at": T, "actor_id": "desk-1", "actor_role": "coordinator", "organisation": "org-a",
            "on_behalf_of": None, "outcome": "granted", "client": None, "patient_ref": None}  # fmt: skip
    drafts = [
        {**base, "kind": "case", "case_id": "so-01", "case_organisation": "org-a"},
        {**base, "kind": "list", "case_id": None, "case_organisation": "org-a", "cases": ("so-02", "so-01")},
        {**base, "kind": "list", "case_id": None, "case_organisation": None, "cases": ()},
    ]
    records = access_log.chain(GENESIS, drafts)
    committed(backend, lambda uow: uow.access.append(records))
    with backend.unit_of_work(False) as uow:
        every = uow.access.all()
        one = uow.access.for_case("so-01")
        two = uow.access.for_case("so-02")
        org = uow.access.for_organisation("org-a")
    assert access_log.verify_chain(every) == []
    assert [r.kind for r in one] == ["case", "list"] and [r.kind for r in two] == ["list"]
    assert two[0].cases == ("so-02", "so-01") and every[2].cases == ()
    assert len(org) == 3
    assert access_log.as_dict(every[1])["v"] == 2 and "cases" not in access_log.as_dict(every[0])
    edited = replace(every[1], cases=("so-02",))
    assert access_log.verify_chain([every[0], edited, every[2]])  # the list is part of the hash


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
def test_the_list_queries_read_through_their_indexes(db_url: str) -> None:
    from storage.worklist_statements import case_page

    org_page = case_page(["organisation"], "updated_at", True, True)
    plan = _plan(db_url, org_page, lambda c: {**c.constants.get(org_page, {}), "organisation": "o",
                                              "after_key": c.ts_in(T), "after_id": "x", "limit": 50})  # fmt: skip
    assert "ix_cases_org_updated" in plan, plan
    overdue = case_page(["organisation", "due_before"], "due_at", False, False)
    plan = _plan(db_url, overdue, lambda c: {**c.constants.get(overdue, {}), "organisation": "o",
                                              "due_before": c.ts_in(T), "limit": 50})  # fmt: skip
    assert "ix_cases_org_due" in plan, plan
    plan = _plan(db_url, "deadlines_open_due_before", lambda c: {**c.constants["deadlines_open_due_before"],
                                                                 "due_before": c.ts_in(T)})  # fmt: skip
    assert "ix_deadlines_open_due_at" in plan, plan
    plan = _plan(db_url, "access_for_case", lambda c: {"case_id": "so-1"})
    assert "ix_access_cases_shown_case_id" in plan, plan


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
@pytest.mark.parametrize("descending", [False, True])
def test_a_page_after_a_position_among_equal_keys_continues_by_id(backend, descending: bool) -> None:
    """Keyset over ties: five cases opened at the same moment, paged one at a time: each follows
    strictly after the position's (key, id), none is shown twice or skipped (the row-value
    comparison of the SQL backends, the tuple comparison of memory)."""
    tied = [a_case(i, opened_at=T, organisation="org-t") for i in (3, 1, 4, 2, 5)]
    committed(backend, *[lambda uow, c=c: uow.cases.add(c) for c in tied])
    where = CaseFilter(organisation="org-t")
    shown, after = [], None
    for _ in range(len(tied) + 1):
        with backend.unit_of_work(False) as uow:
            page = uow.cases.page(where, "opened_at", descending=descending, after=after, limit=1)
        if not page:
            break
        shown.append(page[0].case.id)
        after = Position(page[0].case.opened_at, page[0].case.id)
    assert shown == sorted((c.id for c in tied), reverse=descending)


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
@pytest.mark.parametrize("order", ["opened_at", "updated_at", "due_at"])
@pytest.mark.parametrize("descending", [False, True])
def test_a_page_after_a_position_seeks_to_it_through_the_index(db_url: str, order: str, descending: bool) -> None:
    """A page deep in a list costs what its rows cost: the position is part of the index range
    (a row value, ``(key, id) > (k, i)``), so the read starts there, rather than a filter applied
    to every entry of the organisation before it, and the index gives the order (no sort)."""
    from storage.worklist_statements import case_page

    filters = ["organisation", "dated"] if order == "due_at" else ["organisation"]
    name = case_page(filters, order, descending, True)
    plan = _plan(db_url, name, lambda c: {**c.constants.get(name, {}), "organisation": "o",
                                          "after_key": c.ts_in(T), "after_id": "so-1", "limit": 50})  # fmt: skip
    index = {"opened_at": "ix_cases_org_opened", "updated_at": "ix_cases_org_updated", "due_at": "ix_cases_org_due"}
    assert index[order] in plan, plan
    beyond = "<" if descending else ">"
    if db_url.startswith("sqlite"):
        assert f"({order},id){beyond}(?,?)" in plan, plan  # in the SEARCH's range, not a later check
        assert "TEMP B-TREE" not in plan, plan
    else:
        assert f"ROW({order}, (id)::text) {beyond} ROW(" in plan and "Filter" not in plan, plan  # the Index Cond
        assert "Sort" not in plan, plan
