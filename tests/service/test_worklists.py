"""Work lists through the service layer (issue 16), on every backend: overdue keeps a breached
deadline until it is stopped, working days late and left on each deadline's own calendar, due
within N working days, keyset pages that survive writes between them, the cursor refused when
edited or reused with other filters, bad values refused; and through the access layer: one
access record per page naming the cases shown, found by case, verified, in the patient's view."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import BACKENDS, DESK, EXAMPLES, T0, fire_example, walk
from workflow import CaseService, FixedClock, ValidationError
from workflow.access.log import verify_chain
from workflow.access.rules import Principal
from workflow.deadlines.policies import BREACHED, RUNNING
from workflow.service.access import AccessService
from workflow.service.deadlines import DeadlineService
from workflow.service.tokens import TokenService
from workflow.service.worklists import WorkListQuery, working_days

pytestmark = pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
DAY = timedelta(days=1)


def referred(service: CaseService, clock: FixedClock, n: int, org: str = "local", prefix: str = "PX-W") -> list[str]:
    ids = []
    for i in range(n):
        clock.advance(timedelta(minutes=1))
        case_id = service.open_case(f"{prefix}{i}", actor=DESK, organisation=org).case_id
        walk(service, case_id, "referred")
        ids.append(case_id)
    return ids


def test_overdue_keeps_a_breached_deadline_until_it_is_stopped(service: CaseService, clock: FixedClock) -> None:
    a, b, c = referred(service, clock, 3)
    due = service.deadlines_of(a)[0].due_at
    assert due == datetime(2026, 12, 7, 22, 59, 59, tzinfo=UTC)  # 10 working days, nl-atw
    assert service.worklist(WorkListQuery(overdue=True)).rows == []
    clock.set(due + timedelta(days=3, hours=10))  # Friday 11 December, 09:59 in Amsterdam: Tue-Fri late
    DeadlineService(service.runtime).sweep()  # the worker records the breaches
    assert {d.state for d in service.deadlines_of(a)} == {BREACHED}
    fire_example(service, c, "receive_item")
    fire_example(service, c, "receive_dossier")  # stops c's deadline: breached, stopped
    page = service.worklist(WorkListQuery(overdue=True))
    assert sorted(r.case.id for r in page.rows) == sorted([a, b])  # due at the same moment: by id
    assert {(r.deadline.state, r.working_days_late, r.working_days_left) for r in page.rows} == {(BREACHED, 4, None)}
    rows = service.worklists.deadlines(overdue=True)
    assert sorted((d.case_id, late) for d, late, _ in rows) == sorted([(a, 4), (b, 4)])


def test_working_days_are_counted_on_the_deadlines_own_calendar(service: CaseService, clock: FixedClock) -> None:
    """Royal Doctors' term runs on nl-business, the domestic one on nl-atw; 2026-12-25 and 26 are days
    off on both, so a count across Christmas shows the calendar at work."""
    (case_id,) = referred(service, clock, 1)
    d = service.deadlines_of(case_id)[0]
    friday = datetime(2026, 12, 4, 10, tzinfo=UTC)
    assert working_days(d, friday, service.runtime) == (None, 1)  # Monday 7 December is left
    assert working_days(d, datetime(2026, 12, 7, 12, tzinfo=UTC), service.runtime) == (None, 0)  # due today
    just_after = datetime(2026, 12, 7, 22, 59, 59, 500000, tzinfo=UTC)  # Monday, 23:59:59.5 in Amsterdam
    assert working_days(d, just_after, service.runtime) == (0, None)
    assert working_days(d, datetime(2026, 12, 7, 23, 30, tzinfo=UTC), service.runtime) == (1, None)  # Tuesday
    assert working_days(d, datetime(2026, 12, 28, 9, tzinfo=UTC), service.runtime) == (14, None)  # 25 December off


def test_due_within_n_working_days(service: CaseService, clock: FixedClock) -> None:
    first = referred(service, clock, 1)
    clock.advance(2 * DAY)  # Wednesday 25 November
    second = referred(service, clock, 1, prefix="PX-X")
    assert service.deadlines_of(second[0])[0].due_at == datetime(2026, 12, 9, 22, 59, 59, tzinfo=UTC)
    clock.set(datetime(2026, 12, 3, 9, tzinfo=UTC))  # Thursday: first due Monday (2 left), second Wednesday (4)
    assert [r.working_days_left for r in service.worklist(WorkListQuery(due_within=4, sort="due")).rows] == [2, 4]
    assert [r.case.id for r in service.worklist(WorkListQuery(due_within=3)).rows] == first
    assert service.worklist(WorkListQuery(due_within=1)).rows == []
    assert [(d.case_id, left) for d, _, left in service.worklists.deadlines(due_within=2)] == [(first[0], 2)]


def test_filters_by_patient_state_route_provider_and_updated_since(service: CaseService, clock: FixedClock) -> None:
    ids = referred(service, clock, 3)
    clock.advance(DAY)
    fire_example(service, ids[1], "receive_item")
    since = clock.now()
    fresh = service.open_case("PX-W0", actor=DESK, route="royal-doctors").case_id

    def listed(**filters: object) -> list[str]:
        return [r.case.id for r in service.worklist(WorkListQuery(**filters)).rows]  # type: ignore[arg-type]

    assert listed(patient_ref="PX-W0") == [ids[0], fresh]
    assert listed(state="referred") == ids
    assert listed(route="royal-doctors") == [fresh]
    assert listed(provider="umc-utrecht") == ids  # chosen on the way to referred
    assert listed(updated_since=since) == [ids[1], fresh]
    assert listed(assignee="desk-1") == []  # nobody is assigned (the assign event sets facts.assignee)
    assert listed(organisation="elsewhere") == []
    assert service.case_counts(WorkListQuery()) == {"referred": 3, "requested": 1}


def test_pages_survive_writes_between_them(service: CaseService, clock: FixedClock) -> None:
    """Five pages of two, with cases moved, closed and opened between every two reads: each case
    that existed at the start is shown exactly once, in opening order."""
    ids = referred(service, clock, 9)
    shown: list[str] = []
    query = WorkListQuery(limit=2)
    for turn in range(10):
        page = service.worklist(query)
        shown += [r.case.id for r in page.rows]
        if page.next_cursor is None:
            break
        clock.advance(timedelta(minutes=1))
        if turn < 4:
            fire_example(service, ids[turn], "withdraw")  # a case already shown
            fire_example(service, ids[-1 - turn], "receive_item")  # one still to come
        service.open_case("PX-NEW", actor=DESK)  # opened after all of them: at the end
        query = replace(query, cursor=page.next_cursor)
    assert shown[:9] == ids and len(shown) == len(set(shown))


def test_ordered_by_update_a_changed_case_shows_again_never_missed(service: CaseService, clock: FixedClock) -> None:
    ids = referred(service, clock, 4)
    first = service.worklist(WorkListQuery(sort="updated", limit=2))
    clock.advance(timedelta(minutes=5))
    fire_example(service, first.rows[0].case.id, "receive_item")  # shown already: it moves to the end
    fire_example(service, ids[3], "receive_item")  # not shown yet: it moves too, and is not missed
    rest = service.worklist(WorkListQuery(sort="updated", limit=10, cursor=first.next_cursor))
    shown = [r.case.id for r in first.rows + rest.rows]
    assert set(shown) == set(ids) and shown.count(first.rows[0].case.id) == 2


def test_descending_and_due_orders_page_the_same_as_one_read(service: CaseService, clock: FixedClock) -> None:
    ids = referred(service, clock, 3)
    service.open_case("PX-UNDATED", actor=DESK)
    for sort in ("-opened", "due", "-due", "updated", "-updated"):
        whole = [r.case.id for r in service.worklist(WorkListQuery(sort=sort)).rows]
        paged: list[str] = []
        query = WorkListQuery(sort=sort, limit=1)
        while True:
            page = service.worklist(query)
            paged += [r.case.id for r in page.rows]
            if page.next_cursor is None:
                break
            query = replace(query, cursor=page.next_cursor)
        assert paged == whole and len(whole) == 4, sort
    due = [r.case.id for r in service.worklist(WorkListQuery(sort="due")).rows]
    assert set(due[:3]) == set(ids)  # the cases with a due moment first (one day: by id), then the other


@pytest.mark.parametrize(
    ("query", "field"),
    [
        (WorkListQuery(sort="name"), "sort"),
        (WorkListQuery(limit=0), "limit"),
        (WorkListQuery(limit=201), "limit"),
        (WorkListQuery(due_within=-1), "due_within"),
        (WorkListQuery(due_within=251), "due_within"),
        (WorkListQuery(overdue=True, due_within=3), "due_within"),
        (WorkListQuery(state="nowhere"), "state"),
        (WorkListQuery(route="abroad"), "route"),
        (WorkListQuery(patient_ref="a b"), "patient_ref"),
        (WorkListQuery(patient_ref="111222333"), "patient_ref"),  # a BSN is never a filter
        (WorkListQuery(provider="x"), "provider"),
        (WorkListQuery(cursor="bm90IGEgY3Vyc29y"), "cursor"),
        (WorkListQuery(cursor="x" * 500), "cursor"),
    ],
)
def test_bad_values_are_refused_naming_the_field(service: CaseService, query: WorkListQuery, field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        service.worklist(query)
    assert refused.value.field == field
    assert "111222333" not in str(refused.value)


def test_a_cursor_belongs_to_its_listing(service: CaseService, clock: FixedClock) -> None:
    referred(service, clock, 3)
    cursor = service.worklist(WorkListQuery(state="referred", limit=1)).next_cursor
    assert cursor is not None
    assert len(service.worklist(WorkListQuery(state="referred", limit=5, cursor=cursor)).rows) == 2  # other size: fine
    edited = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
    for other in (WorkListQuery(limit=1, cursor=cursor), WorkListQuery(state="referred", sort="-opened", cursor=cursor),
                  WorkListQuery(state="referred", cursor=edited)):  # fmt: skip
        with pytest.raises(ValidationError, match="not a cursor of this listing"):
            service.worklist(other)


# --- the access layer: one record per page ----------------------------------------------------------


def caller(service: CaseService, role: str = "coordinator", org: str = "org-a", actor: str = "desk-7") -> Principal:
    _, token = TokenService(service.runtime).create(actor, role, org)
    return Principal(token, client="10.0.0.1")


def test_one_access_record_per_page_naming_the_cases_shown(service: CaseService, clock: FixedClock) -> None:
    access = AccessService(service.runtime)
    ids = referred(service, clock, 5, org="org-a")
    referred(service, clock, 2, org="org-b", prefix="PX-B")
    desk = caller(service)
    first = access.worklist(desk, WorkListQuery(limit=3))
    second = access.worklist(desk, WorkListQuery(limit=3, cursor=first.next_cursor))
    assert [c.id for c in first.cases + second.cases] == ids and second.next_cursor is None
    empty = access.worklist(desk, WorkListQuery(state="withdrawn"))
    assert empty.rows == []
    with service.unit_of_work(False) as uow:
        log = uow.access.all()
    pages = [r for r in log if r.kind == "list"]
    assert [r.cases for r in pages] == [tuple(ids[:3]), tuple(ids[3:]), ()]
    assert {(r.case_id, r.patient_ref) for r in pages} == {(None, None)}
    assert [r.case_organisation for r in pages] == ["org-a", "org-a", None]
    assert verify_chain(log) == []
    auditor = caller(service, "auditor", actor="aud-7")
    about = access.access_records(auditor, ids[4])  # who saw this patient: the page that showed it
    assert [r.kind for r in about if r.kind == "list"] == ["list"] and ids[4] in about[0].cases  # type: ignore[operator]
    assert access.cases(desk, overdue=True) == []  # the old entry point: every page, each logged


def test_the_patient_sees_every_list_that_showed_their_case_and_no_other_case(
    service: CaseService, clock: FixedClock
) -> None:
    access = AccessService(service.runtime)
    ids = referred(service, clock, 3, org="org-a")
    access.worklist(caller(service), WorkListQuery())
    access.worklist(caller(service), WorkListQuery(state="withdrawn"))  # an empty page: not about them
    patient = caller(service, "patient", actor="PX-W1")
    own = access.worklist(patient, WorkListQuery())
    assert [c.id for c in own.cases] == [ids[1]]  # a patient's list holds their own case alone
    view = access.access_records(patient, ids[1])
    lists = [r for r in view if r.kind == "list"]
    assert [r.cases for r in lists] == [(ids[1],), (ids[1],)]  # staff's page and their own, trimmed
    assert all(r.client is None and r.hash == "" for r in view)


def test_overdue_through_the_access_layer_keeps_breached_cases(service: CaseService, clock: FixedClock) -> None:
    access = AccessService(service.runtime)
    ids = referred(service, clock, 2, org="org-a")
    clock.set(datetime(2026, 12, 9, 9, tzinfo=UTC))
    DeadlineService(service.runtime).sweep()
    page = access.worklist(caller(service), WorkListQuery(overdue=True))
    assert [c.id for c in page.cases] == ids
    assert [r.deadline.state for r in page.rows if r.deadline] == [BREACHED, BREACHED]
    assert [c.id for c in access.cases(caller(service), overdue=True)] == ids
    assert RUNNING not in {r.deadline.state for r in page.rows if r.deadline}
    assert EXAMPLES  # (the commands walked come from the shared examples)
    assert clock.now() > T0


def test_a_board_counts_in_full_shows_the_newest_per_state_and_logs_one_record(service: CaseService,
                                                                                clock: FixedClock) -> None:  # fmt: skip
    access = AccessService(service.runtime)
    ids = referred(service, clock, 4, org="org-a")
    clock.advance(timedelta(minutes=1))
    fresh = service.open_case("PX-NEW", actor=DESK, organisation="org-a").case_id  # still requested
    referred(service, clock, 1, org="org-b", prefix="PX-B")  # another organisation's: never counted
    desk = caller(service)
    with service.unit_of_work(False) as uow:
        before = len(uow.access.all())
    counts, columns = access.board(desk, WorkListQuery(sort="-updated"), per_state=3)
    assert counts == {"requested": 1, "referred": 4}
    assert [c.id for c in columns["referred"].cases] == ids[::-1][:3]  # the newest three of four
    assert [c.id for c in columns["requested"].cases] == [fresh]
    with service.unit_of_work(False) as uow:
        (record,) = uow.access.all()[before:]
    assert record.kind == "list" and sorted(record.cases or ()) == sorted([fresh, *ids[1:]])
