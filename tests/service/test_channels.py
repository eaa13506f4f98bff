"""Every audit record says through which channel it was written (issue 17), and is hashed as
RFC 8785 (JCS) canonical JSON with that channel (encoding 2): an API token's id, a web session's
token id, the command line's OS user and host, the worker, or the label an embedding program
declared. Records hashed before (encoding 1) keep verifying; data JCS cannot carry alike is refused
before anything is written."""

from __future__ import annotations

import hashlib

import pytest
import rfc8785

from second_opinion import connect
from tests.conftest import DESK, T0
from workflow import FixedClock, ValidationError
from workflow.access.rules import Principal
from workflow.audit.chain import compute_hash, hashed_fields
from workflow.cases.case import Actor
from workflow.service.access import AccessService
from workflow.service.tokens import TokenService


def test_an_embedding_program_declares_its_label_and_the_hash_is_jcs() -> None:
    service = connect("memory://", clock=FixedClock(T0), channel="embedded:ward-planner")
    case_id = service.open_case("PX-C1", actor=DESK).case_id
    (record,) = service.history(case_id)
    assert (record.channel, record.encoding) == ("embedded:ward-planner", 2)
    fields = hashed_fields(record)
    assert fields["v"] == 2 and fields["channel"] == "embedded:ward-planner"
    assert record.hash == hashlib.sha256(rfc8785.dumps(fields)).hexdigest() == compute_hash(record)
    assert service.verify(case_id).ok


def test_an_actor_of_its_own_channel_wins_and_the_default_is_embedded() -> None:
    service = connect("memory://", clock=FixedClock(T0))
    case_id = service.open_case("PX-C2", actor=DESK).case_id
    service.fire(case_id, "withdraw", actor=Actor("pt-1", "patient", channel="kiosk:hall-2"), reason="changed mind")
    assert [r.channel for r in service.history(case_id)] == ["embedded", "kiosk:hall-2"]


def test_api_and_web_callers_are_recorded_by_their_token_id() -> None:
    service = connect("memory://", clock=FixedClock(T0))
    _, token = TokenService(service.runtime).create("desk-3", "coordinator", "local")
    access = AccessService(service.runtime)
    case_id = access.open_case(Principal(token), "PX-C3").case_id
    access.fire(Principal(token, via="web"), case_id, "withdraw", reason="duplicate request")
    assert [r.channel for r in service.history(case_id)] == [f"api:{token.id}", f"web:{token.id}"]


def test_a_label_that_is_not_one_is_refused() -> None:
    for bad in ("", "x" * 201, "embedded:\n", "embedded:111222333"):
        with pytest.raises(ValidationError, match="channel"):
            connect("memory://", channel=bad)


def test_numbers_jcs_cannot_carry_alike_are_refused_before_anything_is_written() -> None:
    service = connect("memory://", clock=FixedClock(T0))
    case_id = service.open_case("PX-C4", actor=DESK).case_id
    with pytest.raises(ValidationError, match="2\\^53 - 1"):
        service.fire(case_id, "record_circumstances", actor=DESK, data={"treated_abroad": 2**60})
    assert len(service.history(case_id)) == 1
