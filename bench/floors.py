"""The floors: a raw driver (sqlite3, psycopg) writing the rows the library writes, and nothing else.

``fire``: BEGIN, read the case row (FOR UPDATE on PostgreSQL), the deadline rows the same step of
``PATH`` writes (``refer`` inserts one, ``receive_dossier`` reads and updates it, ``hand_back``
reads it), UPDATE the case, INSERT a transition and an audit record, COMMIT. ``open``: BEGIN,
INSERT the case, its transition and its audit record, COMMIT. A SHA-256 and a timestamp are
computed per command, as the library must; JSON is pre-encoded.

Since the work a command must do grew (:data:`REQUIRED`), both also take the audit log's end
(the advisory lock on PostgreSQL, then the last record's time: issue 16, so that ``sequence``
order is commit order), write the audit record with its channel, encoding and stored body (issue
17), INSERT the change-feed event and read the organisation's active subscriptions (issue 19),
as the library does in the same transaction. ``Raw(url, required=False)`` is the floor as it was
before those, kept to show what they cost.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg

from storage.statements import POSTGRESQL

from .databases import sqlite_path
from .workload import PATH

CHOSEN = {"id": "umc-utrecht", "version": 1, "at": "2026-11-23T09:00:00.000000Z", "by": "coordinator"}
"""The provider every bench case records at opening (:data:`bench.workload.PROVIDER`)."""
FACTS = json.dumps({"route_version": 2, "provider": CHOSEN, "consent": {"basis": "written", "scope": "full dossier"}})
DEADLINE_COLUMNS = (
    "id, case_id, policy, state, calendar, working_days, started_at, due_at, next_action_at, "
    "reminders_sent, explanation, stopped_at, updated_at"
)
EXPLANATION = json.dumps({"calendar": "nl-atw", "start": "2026-11-23", "end": "2026-12-07", "working_days": 10,
                          "skipped": [{"date": "2026-11-28", "kind": "weekend", "name": "zaterdag",
                                       "source": "weekend"}] * 4, "warnings": [], "history": []})  # fmt: skip
OPEN_PAYLOAD = json.dumps({"organisation": "local", "patient_ref": "PX-RAW", "route": "domestic", "route_version": 2,
                           "provider": {"id": "umc-utrecht", "version": 1}})  # fmt: skip
OPENED_FACTS = json.dumps({"route_version": 2, "provider": CHOSEN}).replace("{", "{{").replace("}", "}}")
CASE_INSERT = ("INSERT INTO cases (id, patient_ref, route, state, version, opened_at, updated_at, audit_head, "
               "audit_count, facts, bsn_hash, organisation) VALUES ({m}, 'PX-RAW', 'domestic', 'requested', 1, {m}, "
               f"{{m}}, {{m}}, 1, '{OPENED_FACTS}', NULL, 'local')")  # fmt: skip
CASE_UPDATE = ("UPDATE cases SET state={m}, version={m}, updated_at={m}, audit_head={m}, audit_count={m}, facts={m} "
               "WHERE id={m} AND version={m} AND audit_count={m}")  # fmt: skip
TRANSITION_INSERT = ("INSERT INTO case_transitions (case_id, version, event, from_state, to_state, occurred_at, "
                     "audit_seq) VALUES ({m}, {m}, {m}, {m}, {m}, {m}, {m})")  # fmt: skip
BODY = json.dumps({"actor_id": "bench-desk", "actor_role": "coordinator", "case_id": "so-" + "x" * 16,
                   "channel": "embedded", "event": "refer", "from_state": "requested", "idempotency_key": None,
                   "occurred_at": "2026-11-23T09:00:00.000000Z", "on_behalf_of": None, "outcome": "accepted",
                   "payload": {"provider": "umc-utrecht"}, "prev_hash": "0" * 64, "reason": None,
                   "recorded_at": "2026-11-23T09:00:00.000000Z", "refusal": None, "seq": 2, "to_state": "referred",
                   "v": 2}, separators=(",", ":"))  # fmt: skip
"""An audit record's stored body of the usual length (the library writes each record's own)."""
REQUIRED = (
    "SELECT recorded_at FROM audit_records ORDER BY sequence DESC LIMIT 1",
    "INSERT INTO change_events (id, type, case_id, organisation, route, from_state, to_state, event, version, "
    "occurred_at, recorded_at, actor_role) VALUES ({m}, 'case.transitioned', {m}, 'local', 'domestic', {m}, {m}, {m}, "
    "{m}, {m}, {m}, 'coordinator')",
    "SELECT id, organisation, url, secret, event_types, active, created_at, rotated_at FROM webhook_subscriptions "
    "WHERE organisation = 'local' AND active = {true} ORDER BY id",
)
"""What a command must do beyond writing its rows, and the library does in the same transaction:
the audit log's end read (after its lock), the change-feed event, the subscriptions to deliver it to."""
AUDIT_INSERT_REQUIRED = ("INSERT INTO audit_records (case_id, seq, event, outcome, from_state, to_state, actor_id, "
                         "actor_role, on_behalf_of, occurred_at, recorded_at, idempotency_key, payload, reason, "
                         "refusal, prev_hash, hash, channel, encoding, body) VALUES ({m}, {m}, {m}, 'accepted', {m}, "
                         "{m}, 'bench-desk', 'coordinator', NULL, {m}, {m}, NULL, {m}, NULL, NULL, {m}, {m}, "
                         "'embedded', 2, {m})")  # fmt: skip
AUDIT_INSERT = ("INSERT INTO audit_records (case_id, seq, event, outcome, from_state, to_state, actor_id, actor_role, "
                "on_behalf_of, occurred_at, recorded_at, idempotency_key, payload, reason, refusal, prev_hash, hash) "
                "VALUES ({m}, {m}, {m}, 'accepted', {m}, {m}, 'bench-desk', 'coordinator', NULL, {m}, {m}, NULL, {m}, "
                "NULL, NULL, {m}, {m})")  # fmt: skip


STEPS = [event for event, _, _ in PATH]


def _deadline_sql(step: str, case_id: str, seq: int, m: str, now: str) -> list[tuple[str, tuple[Any, ...]]]:
    """The deadline statements the library runs for this step of PATH (``m``: ? or %s)."""
    if step == "refer":
        marks = ", ".join([m] * 13)
        return [(f"INSERT INTO deadlines ({DEADLINE_COLUMNS}) VALUES ({marks})",
                 (f"{case_id}/d{seq}", case_id, "domestic-dossier", "running", "nl-atw", 10, now, now, now, 0,
                  EXPLANATION, None, now))]  # fmt: skip
    # one case serves every round of PATH: this round's deadline is read by key (one row, as
    # the library reads its case's deadlines by an index)
    referred = f"{case_id}/d{seq - (STEPS.index(step) - STEPS.index('refer'))}"  # this round's refer
    if step == "receive_dossier":
        return [(f"SELECT * FROM deadlines WHERE id = {m}", (referred,)),
                (f"UPDATE deadlines SET state = 'met', stopped_at = {m}, next_action_at = NULL, updated_at = {m}, "
                 f"explanation = {m} WHERE id = {m}", (now, now, EXPLANATION, referred))]  # fmt: skip
    if step == "hand_back":
        return [(f"SELECT * FROM deadlines WHERE id = {m}", (referred,))]
    return []


class Raw:
    """One driver connection; ``fire`` walks one case along PATH forever, ``open`` adds cases."""

    def __init__(self, url: str, required: bool = True) -> None:
        self.sqlite = url.startswith("sqlite")
        self.m = "?" if self.sqlite else "%s"
        self.required = required
        if self.sqlite:
            self.conn: Any = sqlite3.connect(sqlite_path(url), isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
        else:
            self.conn = psycopg.connect(url)
        self.case_id = uuid.uuid4().hex
        self.seq = 1
        self._tx(lambda: self._run(CASE_INSERT, (self.case_id, _now(), _now(), "0" * 64)))

    def close(self) -> None:
        self.conn.close()

    def _run(self, template: str, params: tuple[Any, ...]) -> Any:
        return self.conn.execute(template.format(m=self.m), params)

    def _tx(self, body: Any) -> None:
        if self.sqlite:
            self.conn.execute("BEGIN IMMEDIATE")
            body()
            self.conn.execute("COMMIT")
        else:
            with self.conn.transaction():
                body()

    def fire(self) -> None:
        self.seq += 1
        seq, case_id, now = self.seq, self.case_id, _now()
        digest = hashlib.sha256(f"{case_id}{seq}".encode()).hexdigest()
        step = PATH[seq % len(PATH)][0]

        def body() -> None:
            lock = "" if self.sqlite else " FOR UPDATE"
            self._run(f"SELECT * FROM cases WHERE id = {{m}}{lock}", (case_id,)).fetchone()
            for sql, params in _deadline_sql(step, case_id, seq, self.m, now):
                cursor = self.conn.execute(sql, params)
                if cursor.description:
                    cursor.fetchall()
            if self.required:
                self._log_end()
            self._run(CASE_UPDATE, ("referred", seq, now, digest, seq, FACTS, case_id, seq - 1, seq - 1))
            self._run(TRANSITION_INSERT, (case_id, seq, step, "requested", "referred", now, seq))
            self._audit(case_id, seq, step, "requested", now, "{}", digest)
            if self.required:
                self._publish(case_id, seq, step, "requested", now)

        self._tx(body)

    def _log_end(self) -> None:
        """The audit log's end, as the library takes it before appending (the lock on PostgreSQL)."""
        if not self.sqlite:
            assert POSTGRESQL.audit_lock is not None
            self.conn.execute(POSTGRESQL.audit_lock)
        self._run(REQUIRED[0], ()).fetchone()

    def _audit(self, case_id: str, seq: int, event: str, from_state: str | None, now: str, payload: str,
               digest: str) -> None:  # fmt: skip
        if self.required:
            self._run(AUDIT_INSERT_REQUIRED, (case_id, seq, event, from_state, "referred", now, now, payload, digest,
                                              digest, BODY))  # fmt: skip
        else:
            self._run(AUDIT_INSERT, (case_id, seq, event, from_state, "referred", now, now, payload, digest, digest))

    def _publish(self, case_id: str, seq: int, event: str, from_state: str | None, now: str) -> None:
        """The change-feed event and the read of the subscriptions to queue it for (none here)."""
        self._run(REQUIRED[1], (f"evt_{uuid.uuid4().hex}", case_id, from_state, "referred", event, seq, now, now))
        self._run(REQUIRED[2].replace("{true}", "1" if self.sqlite else "true"), ()).fetchall()

    def open(self) -> None:
        case_id, now = uuid.uuid4().hex, _now()
        digest = hashlib.sha256(case_id.encode()).hexdigest()

        def body() -> None:
            if self.required:
                self._log_end()
            self._run(CASE_INSERT, (case_id, now, now, digest))
            self._run(TRANSITION_INSERT, (case_id, 1, "open", None, "requested", now, 1))
            if self.required:
                self._run(AUDIT_INSERT_REQUIRED, (case_id, 1, "open", None, "requested", now, now, OPEN_PAYLOAD,
                                                  "0" * 64, digest, BODY))  # fmt: skip
                self._publish(case_id, 1, "open", None, now)
            else:
                self._run(AUDIT_INSERT, (case_id, 1, "open", None, "requested", now, now, OPEN_PAYLOAD, "0" * 64,
                                         digest))  # fmt: skip

        self._tx(body)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def hashlib_rate(payloads: list[bytes]) -> float:
    """Records per second that SHA-256 alone gets through, hashing exactly these bytes."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for payload in payloads:
            hashlib.sha256(payload).hexdigest()
        best = min(best, time.perf_counter() - start)
    return len(payloads) / best


async def bare_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The HTTP floor: answers every request with a small JSON body and does nothing else."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"status":"ok"}'})
