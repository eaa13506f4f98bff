"""Idempotency keys: a retried request gets the first answer and writes nothing; a key reused
for a different request is refused, on every backend."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import BACKENDS, DESK, DOCTOR, GP
from workflow import Actor, IdempotencyConflict


def counts(service, case_id):
    case = service.case(case_id)
    return case.version, case.audit_count, len(service.history(case_id))


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_open_with_same_key_and_request_returns_first_result(service, clock):
    first = service.open_case("PX-1", actor=DESK, idempotency_key="open-1")
    clock.advance(timedelta(minutes=5))
    again = service.open_case("PX-1", actor=DESK, idempotency_key="open-1")
    assert again.replayed and not first.replayed
    assert {**again.as_dict(), "replayed": False} == first.as_dict()
    assert len(service.cases()) == 1
    assert counts(service, first.case_id) == (1, 1, 1)


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_open_with_same_key_and_other_request_conflicts(service):
    service.open_case("PX-1", actor=DESK, idempotency_key="open-1")
    for other in (
        dict(patient_ref="PX-2", actor=DESK),
        dict(patient_ref="PX-1", actor=DESK, route="online"),
        dict(patient_ref="PX-1", actor=Actor("desk-2", "coordinator")),
    ):
        with pytest.raises(IdempotencyConflict, match="open-1"):
            service.open_case(idempotency_key="open-1", **other)
    assert len(service.cases()) == 1


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_fire_retry_writes_nothing_new(service, clock):
    case_id = service.open_case("PX-1", actor=DESK).case_id
    first = service.fire(case_id, "refer", actor=GP, idempotency_key="k-refer")
    before = counts(service, case_id)
    clock.advance(timedelta(seconds=30))
    again = service.fire(case_id, "refer", actor=GP, idempotency_key="k-refer")
    assert again.replayed
    assert (again.version, again.to_state, again.seq, again.recorded_at) == (
        first.version,
        first.to_state,
        first.seq,
        first.recorded_at,
    )
    assert counts(service, case_id) == before
    assert service.verify().ok


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_fire_key_reuse_for_other_request_is_refused_and_recorded(service):
    case_id = service.open_case("PX-1", actor=DESK).case_id
    service.fire(case_id, "refer", actor=GP, idempotency_key="k1")
    with pytest.raises(IdempotencyConflict):
        service.fire(case_id, "receive_dossier", actor=DOCTOR, idempotency_key="k1")
    case = service.case(case_id)
    assert (case.state, case.version) == ("referred", 2)
    last = service.history(case_id)[-1]
    assert (last.outcome, last.idempotency_key) == ("rejected", "k1")
    assert last.refusal.startswith("IdempotencyConflict")


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_key_is_global_across_commands(service):
    case_id = service.open_case("PX-1", actor=DESK, idempotency_key="shared").case_id
    with pytest.raises(IdempotencyConflict):
        service.fire(case_id, "refer", actor=GP, idempotency_key="shared")


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_refusals_are_not_cached(service):
    """A refused first attempt leaves the key free: the retry is decided afresh."""
    case_id = service.open_case("PX-1", actor=DESK).case_id
    with pytest.raises(Exception, match="requires a reason"):
        service.fire(case_id, "withdraw", actor=DESK, idempotency_key="w1")
    with pytest.raises(Exception, match="requires a reason"):
        service.fire(case_id, "withdraw", actor=DESK, idempotency_key="w1")
    assert counts(service, case_id) == (1, 3, 3)
