"""The service layer's promises: clear refusals that change nothing but the audit trail,
caller-stated times, UTC storage, and no patient identity in the record."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time

from second_opinion import connect
from tests.conftest import BACKENDS, DESK, DOCTOR, EXAMPLES, GP, T0
from workflow import Actor, InvalidTransition, PermissionDenied, SystemClock, UnknownCase, ValidationError
from workflow.clock import AMSTERDAM


def snapshot(service, case_id):
    case = service.case(case_id)
    return case, service.history(case_id)


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_unknown_case_writes_nothing(service):
    with pytest.raises(UnknownCase, match="so-nothing"):
        service.fire("so-nothing", "refer", actor=GP)
    assert service.cases() == []
    assert list(service.export()) == []


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(event="withdraw"), ValidationError, "withdraw requires a reason"),
        (dict(event="withdraw", reason="   "), ValidationError, "requires a reason"),
        (dict(event="refer", actor=Actor("aud-1", "auditor")), PermissionDenied, "role 'auditor' may not refer"),
        (dict(event="refer", data={"bsn": "x"}), ValidationError, "data.bsn"),
        (dict(event="refer", data={"note": "BSN 111222333"}), ValidationError, "looks like a BSN"),
        (dict(event="refer", reason="patient 111222333"), ValidationError, "reason"),
        (dict(event="refer", occurred_at=T0 + timedelta(hours=1)), ValidationError, "in the future"),
        (dict(event="refer", occurred_at=T0 - timedelta(days=1)), ValidationError, "before the case was opened"),
        (dict(event="refer", expect_version=7), Exception, "version 1, not the expected 7"),
    ],
)
def test_refusal_changes_nothing_but_appends_one_record(service, kwargs, error, message):
    case_id = service.open_case("PX-1", actor=DESK).case_id
    before, history = snapshot(service, case_id)
    kwargs = {"actor": EXAMPLES[kwargs["event"]][0], **kwargs}
    with pytest.raises(error, match=message):
        service.fire(case_id, **kwargs)
    after, new_history = snapshot(service, case_id)
    assert (after.state, after.version, after.updated_at) == (before.state, before.version, before.updated_at)
    assert new_history[:-1] == history and len(new_history) == len(history) + 1
    refused = new_history[-1]
    assert refused.outcome == ("denied" if error is PermissionDenied else "rejected")
    assert refused.payload == {} and refused.reason is None, "refused data is never stored"
    assert "111222333" not in json.dumps([refused.refusal, refused.payload])
    assert service.verify().ok


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(patient_ref="Jan Jansen"), "patient reference"),
        (dict(patient_ref="111222333"), "looks like a BSN"),
        (dict(patient_ref="PX-1", route="abroad"), "'abroad' is not a route"),
        (dict(patient_ref="PX-1", actor=Actor("desk-1", "nurse")), "'nurse' is not a role"),
        (dict(patient_ref="PX-1", actor=Actor("x", "coordinator")), "actor id"),
        (dict(patient_ref="PX-1", idempotency_key=""), "idempotency key"),
        (dict(patient_ref="PX-1", occurred_at=datetime(2026, 11, 23, 9, 0)), "no timezone"),
    ],
)
def test_invalid_open_creates_nothing(service, kwargs, message):
    kwargs = {"actor": DESK, **kwargs}
    with pytest.raises(ValidationError, match=message):
        service.open_case(**kwargs)
    assert service.cases() == []


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_auditor_may_not_open(service):
    with pytest.raises(PermissionDenied):
        service.open_case("PX-1", actor=Actor("aud-1", "auditor"))
    assert service.cases() == []


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_occurred_and_recorded_times_are_kept_apart_and_utc(service, clock):
    stated = datetime(2026, 11, 23, 9, 30, tzinfo=AMSTERDAM)  # 08:30 UTC, before "now"
    opened = service.open_case("PX-1", actor=DESK, occurred_at=stated - timedelta(minutes=5))
    clock.advance(timedelta(minutes=7, microseconds=123))
    service.fire(opened.case_id, "refer", actor=GP, occurred_at=stated)
    record = service.history(opened.case_id)[-1]
    assert record.occurred_at == stated and record.occurred_at.tzinfo == UTC
    assert record.recorded_at == T0 + timedelta(minutes=7, microseconds=123)
    case = service.case(opened.case_id)
    assert case.opened_at.utcoffset() == timedelta(0) and case.updated_at == record.recorded_at


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_history_keeps_actor_role_and_on_behalf_of(service):
    case_id = service.open_case("PX-1", actor=Actor("desk-9", "coordinator", on_behalf_of="pat-ref-1")).case_id
    service.fire(case_id, "refer", actor=Actor("gp-3", "gp"))
    first, second = service.history(case_id)
    assert (first.actor_id, first.actor_role, first.on_behalf_of) == ("desk-9", "coordinator", "pat-ref-1")
    assert (second.actor_id, second.actor_role, second.from_state, second.to_state) == (
        "gp-3",
        "gp",
        "requested",
        "referred",
    )
    assert second.prev_hash == first.hash


@pytest.mark.parametrize("db_url", ["memory", "sqlite"], indirect=True)
def test_system_clock_under_freezegun(db_url):
    with freeze_time("2026-03-29 00:59:59", tz_offset=0), connect(db_url, clock=SystemClock()) as service:
        case_id = service.open_case("PX-1", actor=DESK).case_id
        opened = service.case(case_id).opened_at
    assert opened == datetime(2026, 3, 29, 0, 59, 59, tzinfo=UTC)
    assert opened.astimezone(AMSTERDAM).hour == 1  # still CET: DST starts at 01:00 UTC


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_cases_filter_by_state(service):
    a = service.open_case("PX-1", actor=DESK).case_id
    b = service.open_case("PX-2", actor=DESK).case_id
    service.fire(b, "decline", actor=DOCTOR, reason="outside our specialism")
    assert [c.id for c in service.cases("requested")] == [a]
    assert [c.id for c in service.cases("declined")] == [b]
    with pytest.raises(ValidationError, match="'nowhere' is not a state"):
        service.cases("nowhere")


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
@pytest.mark.parametrize(
    ("data", "message"),
    [({"when": datetime(2026, 1, 1)}, "plain JSON"), ({"x": float("nan")}, "plain JSON"), ({1: "a"}, "keys")],
)
def test_non_json_data_is_refused_before_anything_is_written(service, data, message):
    case_id = service.open_case("PX-1", actor=DESK).case_id
    with pytest.raises(ValidationError, match=message):
        service.fire(case_id, "refer", actor=GP, data=data)
    assert service.case(case_id).audit_count == 1


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_closed_case_says_closed_before_asking_for_a_reason(service):
    case_id = service.open_case("PX-1", actor=DESK).case_id
    service.fire(case_id, "decline", actor=DOCTOR, reason="out of scope")
    with pytest.raises(InvalidTransition, match="none \\(the case is closed\\)"):
        service.fire(case_id, "withdraw", actor=DESK)


@pytest.mark.parametrize("year", [2013, 2200])
def test_a_clock_outside_the_calendars_years_is_refused_before_anything_is_written(service, clock, year):
    """SECOND_OPINION_CLOCK (a FixedClock) can be set to any instant; a command dated by it outside
    the years the calendars count would be recorded and then never counted."""
    case_id = service.open_case("PX-0001", actor=DESK).case_id
    clock.set(datetime(year, 6, 1, 12, tzinfo=UTC))
    with pytest.raises(ValidationError, match=r"clock: .* outside the supported years 2014-2199"):
        service.open_case("PX-0002", actor=DESK)
    with pytest.raises(ValidationError, match=r"clock: .* outside the supported years"):
        service.open_case("PX-0003", actor=DESK, occurred_at=T0)  # the clock still dates the record
    with pytest.raises(ValidationError, match="outside the supported years"):
        service.fire(case_id, "contact_costs_team", actor=DESK)
    assert [c.id for c in service.cases()] == [case_id]
    assert len(service.history(case_id)) == 1
