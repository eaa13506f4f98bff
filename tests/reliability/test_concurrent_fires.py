"""Concurrent commands: exactly one of many conflicting fires commits, no command is ever lost,
and a racing idempotent open creates one case, on every backend. The raw-driver tests at the end
show the lost update that Python's default SQLite transaction handling allows, and that the
``BEGIN IMMEDIATE`` discipline this library uses prevents it."""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import BACKENDS, DESK, DOCTOR, GP
from workflow import ConcurrentUpdate, SecondOpinionError

THREADS = 24


def race(n: int, work: Callable[[int], object]) -> list[object]:
    """Run ``work(i)`` in ``n`` threads released together; collect results or exceptions."""
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:  # collected and asserted on by the caller
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_exactly_one_of_many_conflicting_fires_commits(service):
    case_id = service.open_case("PX-1", actor=DESK).case_id
    events = ["withdraw", "decline"]

    def fire(i: int):
        event = events[i % 2]
        return service.fire(case_id, event, actor=DESK, reason="race", expect_version=1)

    results = race(THREADS, fire)
    kinds = Counter(type(r).__name__ for r in results)
    assert kinds == {"Receipt": 1, "ConcurrentUpdate": THREADS - 1}
    winner = next(r for r in results if not isinstance(r, Exception))
    case = service.case(case_id)
    assert (case.state, case.version) == (winner.to_state, 2)
    assert case.audit_count == 1 + THREADS, "every loser's refusal is on the record"
    refused = [r for r in service.history(case_id) if r.outcome == "rejected"]
    assert len(refused) == THREADS - 1 and all(r.refusal.startswith("ConcurrentUpdate") for r in refused)
    assert service.verify().ok


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_no_command_is_lost_under_contention(service):
    """20 threads x 10 commands on three shared cases, no expected versions: every command is
    either a transition or a refusal on the record, and the chains stay whole."""
    cases = [service.open_case(f"PX-{i}", actor=DESK).case_id for i in range(3)]
    path = ["refer", "receive_dossier", "review", "return_advice", "hand_back"]

    def work(i: int) -> Counter:
        outcomes: Counter = Counter()
        for step in range(10):
            case_id = cases[(i + step) % 3]
            try:
                event = path[(i * 7 + step) % 5]
                data = {"outcome": "agrees"} if event == "return_advice" else None
                service.fire(case_id, event, actor=DOCTOR if step % 2 else DESK, data=data)
                outcomes["accepted"] += 1
            except SecondOpinionError:
                outcomes["refused"] += 1
        return outcomes

    results = race(20, work)
    assert not [r for r in results if isinstance(r, Exception)]
    total = sum(results, Counter())
    assert total["accepted"] + total["refused"] == 200
    stored = [service.case(c) for c in cases]
    assert sum(c.audit_count for c in stored) == 3 + 200, "one record per command, none lost"
    assert sum(c.version for c in stored) == 3 + total["accepted"], "one version per accepted command"
    for case in stored:
        seqs = [r.seq for r in service.history(case.id)]
        assert seqs == list(range(1, case.audit_count + 1))
    assert service.verify().ok


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_racing_idempotent_opens_create_one_case(service):
    results = race(20, lambda i: service.open_case("PX-1", actor=DESK, idempotency_key="intake-1"))
    assert not [r for r in results if isinstance(r, Exception)]
    assert len({r.case_id for r in results}) == 1
    assert sum(not r.replayed for r in results) == 1
    assert len(service.cases()) == 1


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_stale_expectation_after_a_commit_is_refused(service):
    case_id = service.open_case("PX-1", actor=DESK).case_id
    service.fire(case_id, "refer", actor=GP, expect_version=1)
    with pytest.raises(ConcurrentUpdate, match="at version 2, not the expected 1"):
        service.fire(case_id, "receive_dossier", actor=DESK, expect_version=1)
    assert service.case(case_id).state == "referred"


# --- why the SQLite discipline exists ----------------------------------------------------------


def _versioned_table(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE c (id TEXT PRIMARY KEY, state TEXT, version INT)")
        conn.execute("INSERT INTO c VALUES ('a', 'requested', 1)")


def test_python_default_sqlite_transactions_lose_an_update(tmp_path):
    """Two writers under the driver's default: each reads (outside any transaction, because the
    driver only opens one before a write), decides, writes. Both commits succeed; one is lost."""
    path = tmp_path / "naive.sqlite3"
    _versioned_table(path)
    a, b = sqlite3.connect(path), sqlite3.connect(path)
    version_a = a.execute("SELECT version FROM c").fetchone()[0]
    version_b = b.execute("SELECT version FROM c").fetchone()[0]
    a.execute("UPDATE c SET state = 'referred', version = ?", (version_a + 1,))
    a.commit()
    b.execute("UPDATE c SET state = 'withdrawn', version = ?", (version_b + 1,))
    b.commit()
    assert a.execute("SELECT state, version FROM c").fetchone() == ("withdrawn", 2)  # 'referred' vanished
    a.close()
    b.close()


def test_begin_immediate_makes_the_second_writer_wait(tmp_path):
    """The same interleaving with the library's discipline: the second writer cannot even start
    its transaction (and so cannot read a stale version) until the first has committed."""
    path = tmp_path / "disciplined.sqlite3"
    _versioned_table(path)
    a = sqlite3.connect(path, isolation_level=None)
    b = sqlite3.connect(path, isolation_level=None, timeout=0)
    a.execute("BEGIN IMMEDIATE")
    version_a = a.execute("SELECT version FROM c").fetchone()[0]
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        b.execute("BEGIN IMMEDIATE")
    a.execute("UPDATE c SET state = 'referred', version = ?", (version_a + 1,))
    a.execute("COMMIT")
    b.execute("BEGIN IMMEDIATE")
    assert b.execute("SELECT state, version FROM c").fetchone() == ("referred", 2)
    b.execute("ROLLBACK")
    a.close()
    b.close()
