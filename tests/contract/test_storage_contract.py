"""The storage contract (workflow.ports), run unchanged against the in-memory backend, SQLite
and PostgreSQL: whatever passes here is a backend the service layer can rely on."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from storage import open_backend
from tests.conftest import BACKENDS
from workflow import Case, Transition
from workflow.audit.chain import GENESIS, seal
from workflow.ports import KeyTaken, StoredResult

pytestmark = pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
T = datetime(2026, 11, 23, 9, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def backend(db_url):
    backend = open_backend(db_url)
    yield backend
    backend.close()


def a_case(case_id: str = "so-a", opened: datetime = T, state: str = "requested") -> Case:
    return Case(case_id, "PX-1", "domestic", state, 1, opened, opened, "h" * 64, 1)


def a_record(case_id: str = "so-a", seq: int = 1, at: datetime = T, payload=None):
    return seal(
        case_id=case_id, seq=seq, event="open", outcome="accepted", from_state=None, to_state="requested",
        actor_id="desk-1", actor_role="coordinator", on_behalf_of=None, occurred_at=at, recorded_at=at,
        idempotency_key=None, payload=payload or {}, reason=None, refusal=None, prev_hash=GENESIS,
    )  # fmt: skip


def committed(backend, *writes):
    with backend.unit_of_work(True) as uow:
        for write in writes:
            write(uow)
        uow.commit()


def test_case_round_trip_keeps_aware_utc_microseconds(backend):
    amsterdam = T.astimezone(ZoneInfo("Europe/Amsterdam"))
    committed(backend, lambda uow: uow.cases.add(a_case(opened=amsterdam)))
    with backend.unit_of_work(False) as uow:
        got = uow.cases.get("so-a")
        assert uow.cases.get("so-missing") is None
    assert got == a_case()
    assert got.opened_at.tzinfo == UTC and got.opened_at.microsecond == 123456


def test_update_only_at_the_expected_version_and_count(backend):
    committed(backend, lambda uow: uow.cases.add(a_case()))
    moved = replace(a_case(), state="referred", version=2, audit_count=2)
    with backend.unit_of_work(True) as uow:
        assert uow.cases.update(moved, expected_version=2, expected_audit_count=1) is False
        assert uow.cases.update(moved, expected_version=1, expected_audit_count=2) is False
        assert uow.cases.update(moved, expected_version=1, expected_audit_count=1) is True
        uow.commit()
    with backend.unit_of_work(False) as uow:
        assert uow.cases.get("so-a") == moved


def test_list_orders_by_opening_then_id_and_filters_by_state(backend):
    committed(
        backend,
        lambda uow: uow.cases.add(a_case("so-b", T)),
        lambda uow: uow.cases.add(a_case("so-a", T)),
        lambda uow: uow.cases.add(a_case("so-0", T + timedelta(seconds=1), state="declined")),
        lambda uow: uow.cases.add(a_case("so-z", T - timedelta(seconds=1))),
    )
    with backend.unit_of_work(False) as uow:
        assert [c.id for c in uow.cases.list()] == ["so-z", "so-a", "so-b", "so-0"]
        assert [c.id for c in uow.cases.list("declined")] == ["so-0"]
        assert uow.cases.list("withdrawn") == []


def test_uncommitted_work_is_rolled_back(backend):
    with backend.unit_of_work(True) as uow:
        uow.cases.add(a_case())
        uow.audit.append(a_record())
        uow.transitions.add(Transition("so-a", 1, "open", None, "requested", T, 1))
    with backend.unit_of_work(False) as uow:
        assert uow.cases.get("so-a") is None
        assert uow.audit.for_case("so-a") == []
        assert uow.transitions.for_case("so-a") == []


def test_audit_keeps_storage_order_and_payloads(backend):
    payload = {"note": "dossier ontvangen, één brief", "items": [1, 2.5, None, True], "nested": {"a": {"b": "c"}}}
    first = a_record(seq=1, payload=payload)
    second = replace(a_record(seq=2, at=T + timedelta(hours=1)), hash="f" * 64)
    committed(backend, lambda uow: uow.cases.add(a_case()), lambda uow: uow.audit.append(first),
              lambda uow: uow.audit.append(second))  # fmt: skip
    with backend.unit_of_work(False) as uow:
        stored = uow.audit.for_case("so-a")
        assert stored == [first, second]
        assert stored[0].payload == payload
        assert stored[0].sequence is not None and stored[1].sequence > stored[0].sequence
        assert [r.seq for r in uow.audit.since(T + timedelta(minutes=1))] == [2]
        assert len(list(uow.audit.since(None))) == 2


def test_the_last_recorded_at_is_the_last_records_own_appends_included(backend):
    """What the clock check compares with: the last record in storage order, not the latest time."""
    with backend.unit_of_work(True) as uow:
        assert uow.audit.last_recorded_at() is None
    first, second = a_record(seq=1, at=T + timedelta(hours=2)), replace(a_record(seq=2, at=T), hash="f" * 64)
    committed(backend, lambda uow: uow.cases.add(a_case()), lambda uow: uow.audit.append(first))
    with backend.unit_of_work(True) as uow:
        assert uow.audit.last_recorded_at() == T + timedelta(hours=2)
        uow.audit.append(second)  # (storage does not judge times: the service layer does)
        assert uow.audit.last_recorded_at() == T
    with backend.unit_of_work(True) as uow:
        assert uow.audit.last_recorded_at() == T + timedelta(hours=2)  # the append was rolled back


def test_audit_since_after_a_sequence_and_from_a_moment(backend):
    records = [replace(a_record(seq=i, at=T + i * timedelta(minutes=1)), hash=f"{i}" * 64) for i in (1, 2, 3)]
    committed(backend, lambda uow: uow.cases.add(a_case()), *[lambda uow, r=r: uow.audit.append(r) for r in records])
    with backend.unit_of_work(False) as uow:
        stored = list(uow.audit.since(None))
        first, second, third = (r.sequence for r in stored)
        assert [r.seq for r in uow.audit.since(None, after=first)] == [2, 3]
        assert [r.seq for r in uow.audit.since(None, after=third)] == []
        assert [r.seq for r in uow.audit.since(None, after=0)] == [1, 2, 3]
        # the very instant of a record (with microseconds, as a real clock gives) includes it: an
        # incremental pull from the last recorded_at it saw repeats that record, never skips it
        assert [r.seq for r in uow.audit.since(T + 3 * timedelta(minutes=1))] == [3]
        assert [r.seq for r in uow.audit.since(T + 3 * timedelta(minutes=1), after=0)] == [3]
        assert [r.seq for r in uow.audit.since(T + 2 * timedelta(minutes=1), after=second)] == [3]


def test_the_access_logs_last_time_is_read_with_its_head(backend):
    from workflow.access.log import chain

    draft = {"at": T, "actor_id": "aud-1", "actor_role": "auditor", "organisation": "org-a", "on_behalf_of": None,
             "kind": "export", "outcome": "granted", "client": None, "case_id": None, "patient_ref": None,
             "case_organisation": None}  # fmt: skip
    with backend.unit_of_work(True) as uow:
        assert uow.access.last_at() is None
        uow.access.append(chain(uow.access.head(), [draft, {**draft, "at": T + timedelta(seconds=5)}]))
        uow.commit()
    with backend.unit_of_work(True) as uow:
        head = uow.access.head()
        assert uow.access.last_at() == T + timedelta(seconds=5) and head == uow.access.all()[-1].hash


def test_transitions_come_back_in_version_order(backend):
    committed(
        backend,
        lambda uow: uow.cases.add(a_case()),
        lambda uow: uow.transitions.add(Transition("so-a", 1, "open", None, "requested", T, 1)),
        lambda uow: uow.transitions.add(Transition("so-a", 2, "refer", "requested", "referred", T, 2)),
    )
    with backend.unit_of_work(False) as uow:
        assert [t.version for t in uow.transitions.for_case("so-a")] == [1, 2]
        assert uow.transitions.for_case("so-a")[1].from_state == "requested"


def test_idempotency_results_round_trip(backend):
    stored = StoredResult("key-1", "f" * 64, "so-a", {"case_id": "so-a", "version": 2}, T)
    committed(backend, lambda uow: uow.cases.add(a_case()), lambda uow: uow.keys.put(stored))
    with backend.unit_of_work(False) as uow:
        assert uow.keys.get("key-1") == stored
        assert uow.keys.get("key-2") is None


def test_a_taken_key_is_reported_not_overwritten(backend, db_url):
    stored = StoredResult("key-1", "f" * 64, "so-a", {"v": 1}, T)
    committed(backend, lambda uow: uow.cases.add(a_case()), lambda uow: uow.keys.put(stored))
    if db_url.startswith("memory"):
        # the in-memory backend serialises writers, so a clash cannot arise: put simply replaces
        return
    with backend.unit_of_work(True) as uow, pytest.raises(KeyTaken):
        uow.keys.put(replace(stored, result={"v": 2}))


def test_naive_datetimes_are_refused(backend):
    with backend.unit_of_work(True) as uow, pytest.raises(ValueError, match="naive"):
        uow.cases.add(a_case(opened=T.replace(tzinfo=None)))


def test_list_filters_by_organisation_state_and_route_in_any_combination(backend):
    def case(case_id, opened, state, organisation, route):
        return replace(a_case(case_id, opened, state), organisation=organisation, route=route)

    cases = [
        case("so-1", T, "requested", "org-a", "domestic"),
        case("so-2", T - timedelta(seconds=1), "requested", "org-b", "domestic"),
        case("so-3", T, "declined", "org-a", "abroad"),
        case("so-0", T, "requested", "org-a", "abroad"),
        case("so-4", T + timedelta(seconds=1), "declined", "org-b", "abroad"),
    ]
    committed(backend, *[lambda uow, c=c: uow.cases.add(c) for c in cases])
    ordered = sorted(cases, key=lambda c: (c.opened_at, c.id))
    with backend.unit_of_work(False) as uow:
        for state in (None, "requested", "declined", "withdrawn"):
            for organisation in (None, "org-a", "org-b", "org-c"):
                for route in (None, "domestic", "abroad"):
                    wanted = {"state": state, "organisation": organisation, "route": route}
                    expected = [c for c in ordered if all(v in (None, getattr(c, k)) for k, v in wanted.items())]
                    got = uow.cases.list(state, organisation=organisation, route=route)
                    assert got == expected, (state, organisation, route)


def test_a_database_failure_leaves_storage_as_a_storage_error(backend, db_url):
    """A driver error (here a primary-key clash) comes out as the project's StorageError, the
    driver's error its cause and the cause's first line its message; a refusal is no outage."""
    from workflow.errors import StorageError, StorageUnavailable, first_line

    committed(backend, lambda uow: uow.cases.add(a_case()))
    if db_url.startswith("memory"):
        return  # no driver: the in-memory backend refuses with ValueError
    with pytest.raises(StorageError) as raised:
        committed(backend, lambda uow: uow.cases.add(a_case()))
    assert not isinstance(raised.value, StorageUnavailable)
    assert raised.value.__cause__ is not None and str(raised.value) == first_line(raised.value.__cause__)
