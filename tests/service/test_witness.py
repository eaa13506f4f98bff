"""The worker keeps the transparency log current on every tick and, with a signing key, signs a
checkpoint on its schedule and hands it to the witnesses: a directory (written whole) and a
webhook (here a fake transport that records what it got, or fails); a failing witness is logged,
never fatal."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from jobs.witness import LogKeeper, Witnesses
from tests.conftest import DESK
from workflow import CaseService
from workflow.audit.checkpoint import Signer, open_checkpoint
from workflow.service.transparency import LogService

KEY = Signer.generate("hospital.example/audit")


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_checkpoints_on_schedule_to_a_directory_and_a_webhook(service: CaseService, tmp_path: Path) -> None:
    got: list[bytes] = []
    client = httpx.Client(transport=httpx.MockTransport(lambda r: got.append(r.content) or httpx.Response(204)))
    ticks = Ticks()
    keeper = LogKeeper(LogService(service.runtime), KEY, Witnesses(tmp_path, "https://witness.test/cp",
                                                                    client=client), every=60, monotonic=ticks)
    service.open_case("PX-W1", actor=DESK)
    first = keeper.tick()
    assert first is not None and open_checkpoint(first, [KEY.verifier])[0].size == 1
    service.open_case("PX-W2", actor=DESK)
    ticks.now = 59
    assert keeper.tick() is None  # not due yet: the record is logged, no checkpoint
    ticks.now = 60
    second = keeper.tick()
    assert second is not None and open_checkpoint(second, [KEY.verifier])[0].size == 2
    files = sorted(p.read_text() for p in tmp_path.glob("checkpoint-*.txt"))
    assert files == [first, second] and [g.decode() for g in got] == [first, second]
    assert not list(tmp_path.glob(".checkpoint-*"))  # no half-written file left


def test_a_failing_witness_is_reported_and_the_checkpoint_still_recorded(service: CaseService, tmp_path: Path,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    witnesses = Witnesses(tmp_path / "missing", "https://witness.test/cp",
                          client=httpx.Client(transport=httpx.MockTransport(refuse)))  # fmt: skip
    service.open_case("PX-W3", actor=DESK)
    note = LogKeeper(LogService(service.runtime), KEY, witnesses, every=60).tick()
    assert note is not None
    assert "webhook: ConnectError" in caplog.text and "directory" in caplog.text
    with service.unit_of_work(False) as uow:
        assert uow.log.checkpoints() == [note]


def test_without_a_key_the_worker_only_keeps_the_log_current(service: CaseService) -> None:
    service.open_case("PX-W4", actor=DESK)
    keeper = LogKeeper(LogService(service.runtime), None, Witnesses(), every=1)
    assert keeper.tick() is None
    with service.unit_of_work(False) as uow:
        assert uow.log.size() == 1 and uow.log.checkpoints() == []


def test_the_directory_gets_the_leaves_each_checkpoint_adds_once(service: CaseService, tmp_path: Path) -> None:
    """Before each checkpoint, the leaves it adds since the last file (``leaves-<from>-<to>.txt``);
    a new worker continues from the files already there."""
    from workflow.audit.transparency import parse_leaf_lines

    ticks = Ticks()
    log = LogService(service.runtime)
    keeper = LogKeeper(log, KEY, Witnesses(tmp_path), every=60, monotonic=ticks)
    service.open_case("PX-L1", actor=DESK)
    keeper.tick()
    service.open_case("PX-L2", actor=DESK)
    service.open_case("PX-L3", actor=DESK)
    ticks.now = 60
    keeper.tick()
    names = sorted(p.name for p in tmp_path.glob("leaves-*.txt"))
    assert names == ["leaves-000000000000-000000000001.txt", "leaves-000000000001-000000000003.txt"]
    kept = [leaf for name in names for leaf in parse_leaf_lines((tmp_path / name).read_text(), name)]
    assert kept == log.leaves()
    service.open_case("PX-L4", actor=DESK)
    LogKeeper(log, KEY, Witnesses(tmp_path), every=60).tick()  # a restarted worker
    assert sorted(p.name for p in tmp_path.glob("leaves-*.txt"))[-1] == "leaves-000000000003-000000000004.txt"
    assert not list(tmp_path.glob(".checkpoint-*"))
