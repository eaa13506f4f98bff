"""Deadlines on every backend: started, paused, resumed and stopped with their transition;
reminders and breaches recorded at the right moment, exactly once, catching up after downtime.

Expected dates are worked out by hand in the comments (T0 is Monday 2026-11-23, 10:00 in
Amsterdam); the code's own calendar functions are not used to compute them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import text

from second_opinion import connect
from tests.conftest import BACKENDS, CONSULTANT, DESK, DOCTOR, PATIENT, SQL_BACKENDS, T0, fire_example, sql_engine, walk
from workflow import CaseService, GuardRefused, SystemClock
from workflow.deadlines.calendars import Calendars, Closure
from workflow.deadlines.policies import BREACHED, CANCELLED, LATE, MET, PAUSED, RUNNING, replay_deadlines
from workflow.service.deadlines import Channel, DeadlineService

RD_DUE = datetime(2026, 12, 17, 22, 59, 59, tzinfo=UTC)  # 18 working days after Mon 23 Nov: Thu 17 Dec
RD_REMINDERS = (
    datetime(2026, 12, 9, 23, 0, tzinfo=UTC),  # 5 working days before 17 Dec: Thu 10 Dec, 00:00 Amsterdam
    datetime(2026, 12, 14, 23, 0, tzinfo=UTC),  # 2 working days before: Tue 15 Dec
)
DOMESTIC_DUE = datetime(2026, 12, 7, 22, 59, 59, tzinfo=UTC)  # 10 working days after Mon 23 Nov: Mon 7 Dec
RD_ITEMS = ("medical_history", "examinations", "lab_reports")  # Royal Doctors' checklist (004), implied at opening


def receive_royal_doctors_dossier(service: CaseService, case_id: str) -> None:
    """Every item of Royal Doctors' checklist, then the complete dossier."""
    for item in RD_ITEMS:
        fire_example(service, case_id, "receive_item", data={"item": item})
    fire_example(service, case_id, "receive_dossier")


def royal_doctors_case(service: CaseService) -> str:
    """A Royal Doctors case whose complete dossier arrives at the service clock's now."""
    case_id = service.open_case("PX-RD1", actor=CONSULTANT, route="royal-doctors").case_id
    for event in ("record_circumstances", "give_consent"):
        fire_example(service, case_id, event)
    service.fire(case_id, "refer", actor=CONSULTANT)
    receive_royal_doctors_dossier(service, case_id)
    return case_id


def only(service: CaseService, case_id: str):  # type: ignore[no-untyped-def]
    (deadline,) = service.deadlines_of(case_id)
    return deadline


def noted(service: CaseService, case_id: str) -> list[tuple[str, datetime]]:
    return [(r.event, r.occurred_at) for r in service.history(case_id) if r.outcome == "noted"]


@pytest.fixture
def deadlines(service: CaseService) -> DeadlineService:
    return DeadlineService(service.runtime)


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_complete_dossier_starts_the_royal_doctors_clock(service: CaseService) -> None:
    case_id = royal_doctors_case(service)
    d = only(service, case_id)
    assert (d.policy, d.state, d.due_at, d.next_action_at) == ("royal-doctors-report", RUNNING, RD_DUE, RD_REMINDERS[0])
    assert d.explanation["start"] == "2026-11-23" and d.explanation["end"] == "2026-12-17"
    assert d.explanation["working_days"] == 18 and len(d.explanation["skipped"]) == 6  # three weekends
    assert d.as_dict()["due_local"] == "2026-12-17T23:59:59+01:00"


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_domestic_referral_starts_the_dossier_clock_and_the_dossier_stops_it(service: CaseService, clock) -> None:  # type: ignore[no-untyped-def]
    case_id = service.open_case("PX-D1", actor=DESK).case_id
    walk(service, case_id, "referred")
    d = only(service, case_id)
    assert (d.policy, d.state, d.due_at) == ("domestic-dossier", RUNNING, DOMESTIC_DUE)
    clock.advance(timedelta(days=3))
    fire_example(service, case_id, "receive_item")
    fire_example(service, case_id, "receive_dossier")
    d = only(service, case_id)
    assert (d.state, d.stopped_at, d.next_action_at) == (MET, T0 + timedelta(days=3), None)


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_refused_commands_write_no_deadline(service: CaseService) -> None:
    case_id = service.open_case("PX-D2", actor=DESK).case_id
    with pytest.raises(GuardRefused, match="route_referrer"):
        service.fire(case_id, "refer", actor=PATIENT)  # on the domestic route the GP or first provider refers
    assert service.deadlines_of(case_id) == []


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_pause_and_resume_add_the_working_days_waited(service: CaseService, clock) -> None:  # type: ignore[no-untyped-def]
    case_id = royal_doctors_case(service)
    clock.set(datetime(2026, 11, 25, 10, tzinfo=UTC))  # Wednesday: Tue 24 and Wed 25 used, 16 left
    service.fire(case_id, "request_information", actor=DOCTOR, reason="pathology report illegible")
    d = only(service, case_id)
    assert (d.state, d.working_days, d.due_at, d.next_action_at) == (PAUSED, 16, None, None)
    clock.set(datetime(2026, 11, 27, 10, tzinfo=UTC))  # Friday is the new day 0: 16 days end Mon 21 Dec
    service.fire(case_id, "receive_information", actor=DOCTOR)
    d = only(service, case_id)
    assert (d.state, d.due_at) == (RUNNING, datetime(2026, 12, 21, 22, 59, 59, tzinfo=UTC))
    assert [h["event"] for h in d.explanation["history"]] == ["request_information", "receive_information"]
    assert d.explanation["history"][0]["working_days_used"] == 2


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_pausing_and_resuming_on_one_day_changes_nothing(service: CaseService, clock) -> None:  # type: ignore[no-untyped-def]
    case_id = royal_doctors_case(service)
    clock.advance(timedelta(days=2))
    service.fire(case_id, "request_information", actor=DOCTOR, reason="scan missing")
    clock.advance(timedelta(hours=3))
    service.fire(case_id, "receive_information", actor=DOCTOR)
    assert only(service, case_id).due_at == RD_DUE


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_reminders_then_breach_each_recorded_once(service: CaseService, deadlines: DeadlineService, clock) -> None:  # type: ignore[no-untyped-def]
    case_id = royal_doctors_case(service)
    clock.set(RD_REMINDERS[0] - timedelta(microseconds=1))
    assert deadlines.sweep().cases == 0
    clock.set(RD_REMINDERS[0])
    report = deadlines.sweep()
    assert (report.reminders, report.breaches) == (1, 0)
    assert deadlines.sweep().cases == 0  # handled: not again
    clock.set(RD_DUE)
    report = deadlines.sweep()
    assert (report.reminders, report.breaches) == (1, 1)  # the second reminder, then the breach
    assert deadlines.sweep().cases == 0
    assert noted(service, case_id) == [
        ("deadline_reminder", RD_REMINDERS[0]), ("deadline_reminder", RD_REMINDERS[1]), ("deadline_breached", RD_DUE),
    ]  # fmt: skip
    breach = service.history(case_id)[-1]
    assert breach.payload["notify"] == ["care_consultant"] and breach.payload["escalate_to"] == "coordinator"
    assert (only(service, case_id).state, service.case(case_id).state) == (BREACHED, "dossier_received")
    kinds = [n.kind for n in deadlines.notifications()]
    assert kinds == ["deadline_reminder", "deadline_reminder", "deadline_breached"]
    assert service.verify().ok


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_catch_up_after_downtime_records_everything_in_order(service: CaseService, clock) -> None:  # type: ignore[no-untyped-def]
    case_id = royal_doctors_case(service)
    deadlines = DeadlineService(service.runtime, [Channel("log"), Channel("webhook", "http://127.0.0.1:9/hook")])
    clock.set(datetime(2027, 2, 1, tzinfo=UTC))  # the worker was down for weeks
    report = deadlines.sweep()
    assert (report.cases, report.reminders, report.breaches) == (1, 2, 1)
    assert [event for event, _ in noted(service, case_id)] == ["deadline_reminder"] * 2 + ["deadline_breached"]
    assert len(deadlines.notifications("pending")) == 6  # three notifications, two channels each
    assert len({n.key for n in deadlines.notifications()}) == 6
    assert deadlines.sweep().cases == 0


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_stopping(service: CaseService, deadlines: DeadlineService, clock) -> None:  # type: ignore[no-untyped-def]
    in_time, late, breached, withdrawn = (royal_doctors_case(service) for _ in range(4))
    for case_id in (in_time, late, breached):
        fire_example(service, case_id, "review")
    fire_example(service, in_time, "return_advice")
    clock.set(RD_DUE + timedelta(seconds=1))
    fire_example(service, late, "return_advice")  # after the due moment, before any sweep
    deadlines.sweep()
    fire_example(service, breached, "return_advice")
    fire_example(service, withdrawn, "withdraw")
    states = {c: only(service, c) for c in (in_time, late, breached, withdrawn)}
    assert [d.state for d in states.values()] == [MET, LATE, BREACHED, BREACHED]
    # the withdrawn case had been breached by the sweep before it was withdrawn
    assert states[breached].stopped_at == RD_DUE + timedelta(seconds=1)
    fresh = royal_doctors_case(service)
    fire_example(service, fresh, "withdraw")
    assert only(service, fresh).state == CANCELLED


def test_reminders_at_their_moment_with_frozen_time(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The design card's time travel: freezegun moves the system clock itself."""
    url = f"sqlite:///{tmp_path / 'frozen.sqlite3'}"
    from storage import initialise

    initialise(url)
    with freeze_time("2026-11-23T09:00:00Z") as frozen, connect(url, clock=SystemClock()) as service:
        case_id = royal_doctors_case(service)
        deadlines = DeadlineService(service.runtime)
        frozen.move_to("2026-12-09T22:59:59Z")
        assert deadlines.sweep().reminders == 0
        frozen.move_to("2026-12-09T23:00:00Z")
        assert deadlines.sweep().reminders == 1
        frozen.move_to("2026-12-17T22:59:58Z")
        assert (deadlines.sweep().reminders, deadlines.sweep().breaches) == (1, 0)
        frozen.move_to("2026-12-17T22:59:59Z")
        assert deadlines.sweep().breaches == 1
        assert [e for e, _ in noted(service, case_id)] == ["deadline_reminder"] * 2 + ["deadline_breached"]


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
def test_recompute_after_calendar_data_changed_audits_each_change(db_url: str, clock) -> None:  # type: ignore[no-untyped-def]
    with connect(db_url, clock=clock) as before:
        case_id = royal_doctors_case(before)
        other = royal_doctors_case(before)
        fire_example(before, other, "review")
        fire_example(before, other, "return_advice")  # stopped: not recomputed
    # new calendar data: the organisation closes on 1 December
    changed = Calendars("rd", [Closure("rd", date(2026, 12, 1), "closed for a move")])
    from storage import open_backend

    backend = open_backend(db_url)
    with CaseService(backend.unit_of_work, clock, calendars=changed, on_close=backend.close) as after:
        changes = DeadlineService(after.runtime).recompute()
        assert changes == [{"deadline": f"{case_id}/royal-doctors-report", "old_due_at": "2026-12-17T22:59:59.000000Z",
                            "new_due_at": "2026-12-18T22:59:59.000000Z"}]  # fmt: skip
        assert noted(after, case_id)[-1][0] == "deadline_recomputed"
        assert DeadlineService(after.runtime).recompute() == []  # nothing left to change
        assert after.verify().ok


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_listing_overdue_and_due_before(service: CaseService, deadlines: DeadlineService, clock) -> None:  # type: ignore[no-untyped-def]
    rd = royal_doctors_case(service)
    domestic = service.open_case("PX-D3", actor=DESK).case_id
    walk(service, domestic, "referred")
    assert [d.case_id for d in deadlines.deadlines()] == [domestic, rd]  # by due moment
    assert [d.case_id for d in deadlines.deadlines(due_before=datetime(2026, 12, 8, tzinfo=UTC))] == [domestic]
    clock.set(DOMESTIC_DUE + timedelta(hours=1))
    assert [d.case_id for d in deadlines.deadlines(overdue=True)] == [domestic]


def test_no_patient_identity_in_notifications(service: CaseService, deadlines: DeadlineService, clock) -> None:  # type: ignore[no-untyped-def]
    case_id = service.open_case("PX-SECRET-REF", actor=PATIENT).case_id
    walk(service, case_id, "referred")
    clock.set(datetime(2027, 1, 1, tzinfo=UTC))
    deadlines.sweep()
    payloads = [str(n.payload) for n in deadlines.notifications()]
    assert payloads and not any("PX-SECRET-REF" in p for p in payloads)


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_deadline_rows_are_rebuilt_from_the_audit_trail(  # type: ignore[no-untyped-def]
    service: CaseService, deadlines: DeadlineService, clock
) -> None:
    case_id = royal_doctors_case(service)
    clock.set(datetime(2026, 11, 25, 10, tzinfo=UTC))
    service.fire(case_id, "request_information", actor=DOCTOR, reason="scan missing")
    clock.set(datetime(2026, 11, 30, 10, tzinfo=UTC))
    service.fire(case_id, "receive_information", actor=DOCTOR)
    clock.set(datetime(2026, 12, 14, 23, 0, tzinfo=UTC))
    assert deadlines.sweep().reminders == 1
    terminal = [s.name for s in service.definition.states if s.terminal]
    rebuilt = replay_deadlines(service.history(case_id), "royal-doctors", service.policies, service.calendars, terminal)
    stored = only(service, case_id)
    fields = ("state", "working_days", "started_at", "due_at", "next_action_at", "reminders_sent", "stopped_at")
    assert {f: getattr(rebuilt["royal-doctors-report"], f) for f in fields} == {f: getattr(stored, f) for f in fields}
    assert stored.reminders_sent == 1 and service.verify().ok


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ("working_days = 30", "working_days"),
        ("due_at = started_at", "due_at"),
        ("state = 'met'", "state"),
        ("reminders_sent = 2", "reminders_sent"),
    ],
)
def test_an_altered_deadline_is_reported_by_verify(db_url: str, service: CaseService, change: str, field: str) -> None:
    case_id = royal_doctors_case(service)
    engine = sql_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE deadlines SET {change} WHERE case_id = :c"), {"c": case_id})
    engine.dispose()
    (finding,) = service.verify().findings
    assert finding.case_id == case_id and f"deadline royal-doctors-report: {field} differs" in finding.problem
