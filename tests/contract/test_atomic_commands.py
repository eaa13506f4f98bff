"""One command, one transaction: a failure between any two writes leaves nothing behind, on
every backend. Failures are injected by making one repository method raise after the writes
before it have run inside the same unit of work."""

from __future__ import annotations

import pytest

import storage.memory
import storage.repositories
from tests.conftest import BACKENDS, DESK, GP

# the write each command performs, in order: case row, transition row, audit record, key
WRITES = {
    "transition": {"memory": (storage.memory.MemoryTransitions, "add"),
                   "sql": (storage.repositories.SqlTransitions, "add")},
    "audit": {"memory": (storage.memory.MemoryAudit, "append"), "sql": (storage.repositories.SqlAudit, "append")},
    "key": {"memory": (storage.memory.MemoryKeys, "put"), "sql": (storage.repositories.SqlKeys, "put")},
}


class InjectedFailure(RuntimeError):
    pass


def break_write(monkeypatch, db_url: str, write: str) -> None:
    cls, method = WRITES[write]["memory" if db_url.startswith("memory") else "sql"]

    def fail(*args, **kwargs):
        raise InjectedFailure(f"injected failure at {write}")

    monkeypatch.setattr(cls, method, fail)


def state_of(service, case_id):
    case = service.case(case_id)
    return case, service.history(case_id)


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
@pytest.mark.parametrize("write", list(WRITES))
def test_failed_fire_leaves_no_trace(service, monkeypatch, db_url, write):
    case_id = service.open_case("PX-1", actor=DESK).case_id
    before = state_of(service, case_id)
    with monkeypatch.context() as patch:
        break_write(patch, db_url, write)
        with pytest.raises(InjectedFailure):
            service.fire(case_id, "refer", actor=GP, idempotency_key="k-1")
    assert state_of(service, case_id) == before
    assert service.verify().ok
    # the same request, retried after the fault, is executed (the key was never stored)
    receipt = service.fire(case_id, "refer", actor=GP, idempotency_key="k-1")
    assert (receipt.replayed, receipt.version) == (False, 2)
    assert service.verify().ok


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
@pytest.mark.parametrize("write", list(WRITES))
def test_failed_open_creates_no_case(service, monkeypatch, db_url, write):
    with monkeypatch.context() as patch:
        break_write(patch, db_url, write)
        with pytest.raises(InjectedFailure):
            service.open_case("PX-1", actor=DESK, idempotency_key="k-open")
    assert service.cases() == []
    assert list(service.export()) == []
    assert service.open_case("PX-1", actor=DESK, idempotency_key="k-open").replayed is False


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_failure_while_recording_a_refusal_records_nothing(service, monkeypatch, db_url):
    """Even the refusal record is all-or-nothing: the case row's chain head does not move alone."""
    case_id = service.open_case("PX-1", actor=DESK).case_id
    before = state_of(service, case_id)
    with monkeypatch.context() as patch:
        break_write(patch, db_url, "audit")
        with pytest.raises(InjectedFailure):
            service.fire(case_id, "hand_back", actor=DESK)
    assert state_of(service, case_id) == before
    assert service.verify().ok
