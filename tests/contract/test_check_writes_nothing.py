"""``fire --check`` (Commands.check) writes nothing, on every backend: the audit export, the case
row (version, head, count, facts), its transitions and deadlines, the idempotency keys and the
access log are the same before and after, whether ``fire`` would accept the command or refuse it
(a refusal ``fire`` would record is not recorded). Through the access layer the one write is the
access-log record of the read (kind ``check``). The next-steps read is held to the same rule."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import BACKENDS, CONSENT, DESK, DOCTOR, GP, PATIENT, walk
from workflow import CaseService
from workflow.access.rules import Principal
from workflow.service.access import AccessService
from workflow.service.tokens import TokenService


def snapshot(service: CaseService, case_id: str, keys: tuple[str, ...] = ()) -> dict[str, Any]:
    with service.unit_of_work(False) as uow:
        return {
            "case": uow.cases.get(case_id),
            "export": list(uow.audit.since(None, None)),
            "transitions": uow.transitions.for_case(case_id),
            "deadlines": uow.deadlines.for_case(case_id),
            "keys": [uow.keys.get(k) for k in keys],
            "access": uow.access.all(),
        }


def ready_for_dossier(service: CaseService) -> str:
    """A domestic case at UMC Utrecht, referred, with its letter in: receive_dossier would start
    the report's clock and stop the dossier's."""
    case_id = service.open_case("PX-1", actor=DESK).case_id
    walk(service, case_id, "referred")
    service.fire(case_id, "receive_item", actor=DOCTOR, data={"item": "letter"})
    return case_id


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_check_of_an_accepted_command_writes_nothing(service):
    case_id = ready_for_dossier(service)
    before = snapshot(service, case_id, ("k-1",))
    verdict = service.check(case_id, "receive_dossier", actor=DOCTOR, idempotency_key="k-1", expect_version=6)
    assert (verdict.accepted, verdict.from_state, verdict.to_state, verdict.version) == (
        True, "referred", "dossier_received", 6)  # fmt: skip
    assert verdict.refusal is None and verdict.as_dict()["written"] is False
    assert snapshot(service, case_id, ("k-1",)) == before
    # the key was not taken: a different command under it is done, not refused as a conflict
    receipt = service.fire(case_id, "record_circumstances", actor=DESK, data={"has_imaging": False},
                           idempotency_key="k-1")  # fmt: skip
    assert not receipt.replayed and receipt.version == 7
    assert service.verify().ok


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_check_of_refused_commands_records_no_refusal(service):
    case_id = service.open_case("PX-1", actor=DESK).case_id
    walk(service, case_id, "referred")
    before = snapshot(service, case_id)
    guarded = service.check(case_id, "receive_dossier", actor=DOCTOR)
    assert not guarded.accepted and guarded.to_state == guarded.from_state == "referred"
    assert guarded.refusal is not None
    assert guarded.refusal["type"] == "GuardRefused" and guarded.refusal["guard"] == "checklist_complete"
    assert "still missing: letter" in guarded.refusal["reason"]
    denied = service.check(case_id, "review", actor=DESK)
    assert denied.refusal is not None
    assert (denied.refusal["type"], denied.refusal["outcome"]) == ("PermissionDenied", "denied")
    wrong_state = service.check(case_id, "hand_back", actor=DESK)
    assert wrong_state.refusal is not None and wrong_state.refusal["type"] == "InvalidTransition"
    stale = service.check(case_id, "withdraw", actor=DESK, reason="patient's wish", expect_version=1)
    assert stale.refusal is not None and stale.refusal["type"] == "ConcurrentUpdate"
    no_reason = service.check(case_id, "withdraw", actor=DESK)
    assert no_reason.refusal is not None and no_reason.refusal["field"] == "reason"
    unknown = service.check(case_id, "fly", actor=DESK)
    assert unknown.refusal is not None and unknown.refusal["type"] == "UnknownEvent"
    assert snapshot(service, case_id) == before
    # what fire does with the first of them: the same refusal, recorded
    with pytest.raises(Exception) as refused:
        service.fire(case_id, "receive_dossier", actor=DOCTOR)
    assert str(refused.value) == guarded.refusal["message"]
    assert len(service.history(case_id)) == len(before["export"]) + 1


@pytest.mark.parametrize("db_url", ["memory", "sqlite"], indirect=True)
def test_check_replays_a_known_key_and_names_a_conflict(service):
    case_id = service.open_case("PX-1", actor=DESK).case_id
    service.fire(case_id, "give_consent", actor=PATIENT, data=CONSENT, idempotency_key="k-2")
    before = snapshot(service, case_id, ("k-2",))
    again = service.check(case_id, "give_consent", actor=PATIENT, data=CONSENT, idempotency_key="k-2")
    assert again.accepted and again.replayed and again.to_state == "requested"
    other = service.check(case_id, "refer", actor=GP, idempotency_key="k-2")
    assert other.refusal is not None and other.refusal["type"] == "IdempotencyConflict"
    assert snapshot(service, case_id, ("k-2",)) == before


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_access_checks_and_next_steps_write_only_their_access_record(service):
    case_id = ready_for_dossier(service)
    tokens = TokenService(service.runtime)
    _, token = tokens.create("dr-7", "second_opinion_doctor", "local")
    _, stranger = tokens.create("dr-8", "second_opinion_doctor", "org-b")
    access = AccessService(service.runtime)
    doctor = Principal(token, client="127.0.0.1")
    before = snapshot(service, case_id)
    verdict = access.check(doctor, case_id, "receive_dossier")
    assert verdict.accepted and verdict.to_state == "dossier_received"
    steps = access.next_steps(doctor, case_id)
    assert steps.step("receive_dossier").status == "allowed"
    after = snapshot(service, case_id)
    added = after.pop("access")[len(before["access"]):]
    assert [(r.kind, r.outcome, r.case_id, r.actor_id) for r in added] == [
        ("check", "granted", case_id, "dr-7"), ("next", "granted", case_id, "dr-7")]  # fmt: skip
    before.pop("access")
    assert after == before
    from workflow import UnknownCase

    for ask in (lambda: access.check(Principal(stranger), case_id, "receive_dossier"),
                lambda: access.next_steps(Principal(stranger), case_id)):  # fmt: skip
        with pytest.raises(UnknownCase):
            ask()
    with service.unit_of_work(False) as uow:
        last = uow.access.all()[-2:]
    assert [(r.kind, r.outcome, r.case_id) for r in last] == [("check", "not-found", case_id),
                                                              ("next", "not-found", case_id)]  # fmt: skip
    assert snapshot(service, case_id)["case"] == before["case"]
