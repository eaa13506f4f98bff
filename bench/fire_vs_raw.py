"""How much a ``fire`` costs compared with a raw driver transaction writing the same rows.

Run: ``python bench/fire_vs_raw.py [--n 2000] [--pg URL]``. Prints, per backend, the median
microseconds per command of (a) the raw driver doing BEGIN, SELECT the case row, UPDATE it,
INSERT a transition and an audit row, plus the deadline rows the same step of the path writes
(``refer`` inserts one, ``receive_dossier`` reads and updates it, ``hand_back`` reads it), COMMIT,
and (b) ``CaseService.fire`` doing the same work through the library, and the ratio b/a. The
floor (a) is measured in the same run, on the same machine, so the ratio is comparable across
machines; absolute numbers are not.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from second_opinion import connect
from storage import initialise
from workflow import Actor, FixedClock

DESK = Actor("bench-desk", "coordinator")
GP = Actor("bench-gp", "gp")
DOCTOR = Actor("bench-dr", "second_opinion_doctor")
ROUNDS = 5
# Every timed command is a real, accepted command by a permitted role: cases are opened before
# the clock starts and each is walked along the happy path, one command at a time.
PATH = (
    ("record_circumstances", DESK, {"treated_abroad": False, "insured_abroad": False, "has_pathology": False,
                                    "has_imaging": False}),
    ("give_consent", DESK, {"basis": "written", "scope": "full dossier"}),
    ("refer", GP, {}),
    ("receive_item", DOCTOR, {"item": "letter"}),
    ("receive_dossier", DOCTOR, {}),
    ("review", DOCTOR, {}),
    ("return_advice", DOCTOR, {}),
    ("hand_back", DESK, {}),
)  # fmt: skip
# what the raw floor writes into the facts column: a typical case's facts
FACTS = json.dumps({"route_version": 1, "consent": {"basis": "written", "scope": "full dossier"}})


def timed(fn: Callable[[], None], n: int) -> float:
    """Median over ROUNDS of the mean microseconds per call."""
    samples = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(samples)


def library_fire(url: str, n: int) -> float:
    clock = FixedClock(datetime(2026, 11, 23, 9, tzinfo=UTC))
    service = connect(url, clock=clock)
    cases = [service.open_case("PX-BENCH", actor=DESK).case_id for _ in range(-(-n * ROUNDS // len(PATH)))]
    pending = [(case_id, step) for case_id in cases for step in reversed(PATH)]

    def one() -> None:
        case_id, (event, actor, data) = pending.pop()
        clock.advance(timedelta(microseconds=1))
        service.fire(case_id, event, actor=actor, data=data)

    try:
        return timed(one, n)
    finally:
        service.close()


DEADLINE_COLUMNS = ("id, case_id, policy, state, calendar, working_days, started_at, due_at, next_action_at, "
                    "reminders_sent, explanation, stopped_at, updated_at")
EXPLANATION = json.dumps({"calendar": "nl-atw", "start": "2026-11-23", "end": "2026-12-07", "working_days": 10,
                          "skipped": [{"date": "2026-11-28", "kind": "weekend", "name": "zaterdag",
                                       "source": "weekend"}] * 4, "warnings": [], "history": []})  # fmt: skip


def _deadline_sql(step: str, case_id: str, seq: int, mark: str, now: str) -> list[tuple[str, tuple]]:
    """The deadline statements the library runs for this step of PATH (``mark``: ? or %s)."""
    m = mark
    if step == "refer":
        marks = ", ".join([m] * 13)
        return [(f"INSERT INTO deadlines ({DEADLINE_COLUMNS}) VALUES ({marks})",
                 (f"{case_id}/d{seq}", case_id, "domestic-dossier", "running", "nl-atw", 10, now, now, now, 0,
                  EXPLANATION, None, now))]  # fmt: skip
    # the raw floor keeps one case: its deadline of this round of PATH is read by key (one row,
    # as the library reads its case's deadlines by an index)
    if step == "receive_dossier":
        return [(f"SELECT * FROM deadlines WHERE id = {m}", (f"{case_id}/d{seq - 2}",)),
                (f"UPDATE deadlines SET state = 'met', stopped_at = {m}, next_action_at = NULL, updated_at = {m}, "
                 f"explanation = {m} WHERE id = {m}", (now, now, EXPLANATION, f"{case_id}/d{seq - 2}"))]  # fmt: skip
    if step == "hand_back":
        return [(f"SELECT * FROM deadlines WHERE id = {m}", (f"{case_id}/d{seq - 5}",))]
    return []


def _row_values(case_id: str, seq: int) -> tuple:
    now = datetime.now(UTC).isoformat()
    digest = hashlib.sha256(f"{case_id}{seq}".encode()).hexdigest()
    return now, digest, json.dumps({})


def raw_sqlite(path: Path, n: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    case_id = uuid.uuid4().hex
    conn.execute(
        "INSERT INTO cases (id, patient_ref, route, state, version, opened_at, updated_at, audit_head, audit_count) "
        "VALUES (?, 'PX', 'domestic', 'requested', 1, ?, ?, ?, 1)",
        (case_id, "2026-11-23 09:00:00.000000", "2026-11-23 09:00:00.000000", "0" * 64),
    )
    counter = [1]

    def one() -> None:
        counter[0] += 1
        seq = counter[0]
        now, digest, payload = _row_values(case_id, seq)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("SELECT * FROM cases WHERE id = ?", (case_id,)).fetchone()
        for sql, params in _deadline_sql(PATH[seq % len(PATH)][0], case_id, seq, "?", now):
            conn.execute(sql, params).fetchall()
        conn.execute(
            "UPDATE cases SET state=?, version=?, updated_at=?, audit_head=?, audit_count=?, facts=? "
            "WHERE id=? AND version=? AND audit_count=?",
            ("referred", seq, now, digest, seq, FACTS, case_id, seq - 1, seq - 1),
        )
        conn.execute(
            "INSERT INTO case_transitions (case_id, version, event, from_state, to_state, occurred_at, audit_seq) "
            "VALUES (?, ?, 'refer', 'requested', 'referred', ?, ?)",
            (case_id, seq, now, seq),
        )
        conn.execute(
            "INSERT INTO audit_records (case_id, seq, event, outcome, from_state, to_state, actor_id, actor_role, "
            "on_behalf_of, occurred_at, recorded_at, idempotency_key, payload, reason, refusal, prev_hash, hash) "
            "VALUES (?, ?, 'refer', 'accepted', 'requested', 'referred', 'a', 'coordinator', NULL, ?, ?, NULL, ?, "
            "NULL, NULL, ?, ?)",
            (case_id, seq, now, now, payload, digest, digest),
        )
        conn.execute("COMMIT")

    try:
        return timed(one, n)
    finally:
        conn.close()


def raw_postgres(url: str, n: int) -> float:
    conn = psycopg.connect(url)
    case_id = uuid.uuid4().hex
    with conn.transaction():
        conn.execute(
            "INSERT INTO cases (id, patient_ref, route, state, version, opened_at, updated_at, audit_head, audit_count)"
            " VALUES (%s, 'PX', 'domestic', 'requested', 1, now(), now(), %s, 1)",
            (case_id, "0" * 64),
        )
    counter = [1]

    def one() -> None:
        counter[0] += 1
        seq = counter[0]
        now, digest, payload = _row_values(case_id, seq)
        with conn.transaction():
            conn.execute("SELECT * FROM cases WHERE id = %s FOR UPDATE", (case_id,)).fetchone()
            for sql, params in _deadline_sql(PATH[seq % len(PATH)][0], case_id, seq, "%s", now):
                cursor = conn.execute(sql, params)
                if cursor.description:
                    cursor.fetchall()
            conn.execute(
                "UPDATE cases SET state=%s, version=%s, updated_at=%s, audit_head=%s, audit_count=%s, facts=%s "
                "WHERE id=%s AND version=%s AND audit_count=%s",
                ("referred", seq, now, digest, seq, FACTS, case_id, seq - 1, seq - 1),
            )
            conn.execute(
                "INSERT INTO case_transitions (case_id, version, event, from_state, to_state, occurred_at, audit_seq)"
                " VALUES (%s, %s, 'refer', 'requested', 'referred', %s, %s)",
                (case_id, seq, now, seq),
            )
            conn.execute(
                "INSERT INTO audit_records (case_id, seq, event, outcome, from_state, to_state, actor_id, actor_role,"
                " on_behalf_of, occurred_at, recorded_at, idempotency_key, payload, reason, refusal, prev_hash, hash)"
                " VALUES (%s, %s, 'refer', 'accepted', 'requested', 'referred', 'a', 'coordinator', NULL, %s, %s,"
                " NULL, %s, NULL, NULL, %s, %s)",
                (case_id, seq, now, now, payload, digest, digest),
            )

    try:
        return timed(one, n)
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="commands per round (5 rounds)")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test", help="PostgreSQL URL, or ''")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        raw_path, lib_path = Path(tmp) / "raw.sqlite3", Path(tmp) / "lib.sqlite3"
        initialise(f"sqlite:///{raw_path}")
        initialise(f"sqlite:///{lib_path}")
        floor = raw_sqlite(raw_path, args.n)
        rows.append(("sqlite", floor, library_fire(f"sqlite:///{lib_path}", args.n)))
    if args.pg:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.pg, autocommit=True) as admin:
            admin.execute(f"CREATE SCHEMA {schema}")
        url = f"{args.pg}?options=-csearch_path%3D{schema}"
        try:
            initialise(url)
            floor = raw_postgres(url, args.n)
            rows.append(("postgresql", floor, library_fire(url, args.n)))
        finally:
            with psycopg.connect(args.pg, autocommit=True) as admin:
                admin.execute(f"DROP SCHEMA {schema} CASCADE")
    print(f"{'backend':<12}{'raw us/op':>12}{'fire us/op':>12}{'ratio':>8}")
    for name, raw, lib in rows:
        print(f"{name:<12}{raw:>12.1f}{lib:>12.1f}{lib / raw:>8.2f}")


if __name__ == "__main__":
    main()
