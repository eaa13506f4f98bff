"""The repositories of :mod:`workflow.ports` over SQLite and PostgreSQL.

Each runs named statements of :mod:`storage.statements` on its unit of work's DBAPI cursor and
turns rows into domain objects with :mod:`storage.codec`; none holds SQL or converts a value itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from workflow.access.log import AccessRecord
from workflow.access.sessions import WebSession
from workflow.access.tokens import ApiToken
from workflow.audit.chain import GENESIS, AuditRecord
from workflow.cases.case import Case, Transition
from workflow.deadlines.policies import Deadline
from workflow.errors import AuditIntegrityError
from workflow.listing import CaseFilter, ListedCases, Position
from workflow.ports import ByCase, DeadlineTally, KeyTaken, Notification, StoredResult, UnreadableRow

from . import codec, worklists
from .codec import LazyJson, RowReader, TableCodec, encode_payload
from .statements import DEADLINE_COLUMNS, Compiled, case_listing

_T = TypeVar("_T")
_EAGER: frozenset[str] = frozenset()
_EXPLANATION = frozenset({"explanation"})


class Runner:
    """Executes the named statements on one DBAPI cursor, and reads their rows."""

    def __init__(self, compiled: Compiled, cursor: Any) -> None:
        self.compiled = compiled
        self.cursor = cursor

    def run(self, name: str, values: dict[str, Any]) -> Any:
        """Execute statement ``name`` with ``values`` (converted by the codec); returns the cursor."""
        params = self.compiled.params(values)
        sql = self.compiled.sql[name]  # (a work-list statement is compiled here, its constants with it)
        if name in self.compiled.constants:
            params = {**self.compiled.constants[name], **params}
        self.cursor.execute(sql, params)
        return self.cursor

    def read(
        self, name: str, values: dict[str, Any], table: TableCodec[_T], lazy: frozenset[str] = _EAGER
    ) -> tuple[RowReader[_T], list[Any]]:
        """Execute statement ``name``; its rows, and the reader that decodes them into ``table``'s objects."""
        cursor = self.run(name, values)
        readers = self.compiled.readers
        reader = readers.get((name, lazy))
        if reader is None:  # a statement's columns never change: its steps are worked out once per engine
            reader = readers[(name, lazy)] = table.reader(self.compiled.codec, [d[0] for d in cursor.description], lazy)
        return reader, cursor.fetchall()

    def all(self, name: str, values: dict[str, Any], table: TableCodec[_T], lazy: frozenset[str] = _EAGER) -> list[_T]:
        reader, rows = self.read(name, values, table, lazy)
        return reader.all(rows)

    def by_case(
        self, name: str, case_ids: Sequence[str], table: TableCodec[_T], lazy: frozenset[str] = _EAGER
    ) -> ByCase[_T]:
        reader, rows = self.read(name, {"case_ids": self.compiled.codec.case_ids(case_ids)}, table, lazy)
        return reader.by_case(rows)

    def first(self, name: str, values: dict[str, Any], table: TableCodec[_T]) -> _T | None:
        found = self.all(name, values, table)
        return found[0] if found else None


class SqlCases:
    def __init__(self, runner: Runner) -> None:
        self._run = runner

    def get(self, case_id: str, *, lock: bool = False) -> Case | None:
        return self._run.first("get_case_for_update" if lock else "get_case", {"id": case_id}, codec.CASES)

    def add(self, case: Case) -> None:
        self._run.run("insert_case", {**case.__dict__, **worklists.derived(case), "due_at": None})

    def update(self, case: Case, *, expected_version: int, expected_audit_count: int) -> bool:
        values = {
            "b_id": case.id,
            "b_version": expected_version,
            "b_count": expected_audit_count,
            "state": case.state,
            "version": case.version,
            "updated_at": case.updated_at,
            "audit_head": case.audit_head,
            "audit_count": case.audit_count,
            "facts": case.facts,
            **worklists.derived(case),
        }
        return self._run.run("update_case", values).rowcount == 1  # type: ignore[no-any-return]

    def find_by_bsn_hash(self, bsn_hash: str) -> list[Case]:
        return self._run.all("cases_by_bsn", {"bsn_hash": bsn_hash}, codec.CASES)

    def list(
        self, state: str | None = None, *, organisation: str | None = None, route: str | None = None
    ) -> list[Case]:
        given = {"organisation": organisation, "state": state, "route": route}
        values = {column: value for column, value in given.items() if value is not None}
        name = case_listing(organisation=organisation is not None, state=state is not None, route=route is not None)
        return self._run.all(name, values, codec.CASES)

    def page(
        self, where: CaseFilter, order: str, *, descending: bool = False, after: Position | None = None, limit: int
    ) -> ListedCases:
        return worklists.page(self._run, where, order, descending=descending, after=after, limit=limit)

    def counts(self, where: CaseFilter) -> dict[str, int]:
        return worklists.counts(self._run, where)


class SqlAudit:
    def __init__(self, runner: Runner) -> None:
        self._run = runner
        self._held = False

    def _hold(self) -> None:
        """The audit log's end, held until the unit ends (PostgreSQL; SQLite's write lock holds it)."""
        lock = self._run.compiled.backend.audit_lock
        if lock is not None and not self._held:
            self._run.cursor.execute(lock)
        self._held = True

    def last_recorded_at(self) -> datetime | None:
        self._hold()
        found = self._run.run("audit_last", {}).fetchone()
        if found is None:
            return None
        try:
            return self._run.compiled.codec.ts_out(found[0])
        except (TypeError, ValueError):
            raise UnreadableRow("the last audit record", "its recorded_at is not a timestamp") from None

    def append(self, record: AuditRecord) -> None:
        self._hold()  # whoever appends without asking for the last time still commits in order
        values = dict(record.__dict__)
        del values["sequence"]
        values["payload"] = encode_payload(record.payload)
        self._run.run("insert_audit", values)

    def for_case(self, case_id: str) -> list[AuditRecord]:
        return self._run.all("audit_for_case", {"case_id": case_id}, codec.AUDIT)

    def for_cases(self, case_ids: Sequence[str]) -> ByCase[AuditRecord]:
        return self._run.by_case("audit_for_cases", case_ids, codec.AUDIT)

    def since(self, recorded_from: datetime | None, after: int | None = None) -> Iterator[AuditRecord]:
        # the rows are fetched now, each decoded as the caller reaches it (an unreadable one there)
        values: dict[str, Any] = {}
        if recorded_from is not None:
            try:  # converted here, as the codec converts columns: bound as it is, SQLite would compare
                # its own spelling of the instant (with "+00:00") and miss the records of that very instant
                values["since"] = self._run.compiled.ts_in(recorded_from)
            except OverflowError:  # a moment past either end of time in UTC: before every record, or after
                if recorded_from.year != datetime.min.year:
                    return iter(())
                recorded_from = None
        if after is not None:
            values["after"] = after
        name = {(False, False): "audit_all", (True, False): "audit_since", (False, True): "audit_after",
                (True, True): "audit_since_after"}[("since" in values, after is not None)]  # fmt: skip
        reader, rows = self._run.read(name, values, codec.AUDIT)
        return (reader.one(raw) for raw in rows)


class SqlTransitions:
    def __init__(self, runner: Runner) -> None:
        self._run = runner

    def add(self, transition: Transition) -> None:
        self._run.run("insert_transition", dict(transition.__dict__))

    def for_case(self, case_id: str) -> list[Transition]:
        return self._run.all("transitions_for_case", {"case_id": case_id}, codec.TRANSITIONS)

    def for_cases(self, case_ids: Sequence[str]) -> ByCase[Transition]:
        return self._run.by_case("transitions_for_cases", case_ids, codec.TRANSITIONS)

    def of_event_between(self, event: str, since: datetime, until: datetime) -> list[Transition]:
        values = {"event": event, "since": self._run.compiled.ts_in(since), "until": self._run.compiled.ts_in(until)}
        return self._run.all("transitions_of_event_between", values, codec.TRANSITIONS)


class SqlKeys:
    def __init__(self, runner: Runner) -> None:
        self._run = runner

    def get(self, key: str) -> StoredResult | None:
        return self._run.first("get_key", {"key": key}, codec.KEYS)

    def put(self, stored: StoredResult) -> None:
        values = {
            "key": stored.key,
            "fingerprint": stored.fingerprint,
            "case_id": stored.case_id,
            "result": encode_payload(stored.result),
            "created_at": stored.created_at,
        }
        # No savepoint: a clash means the whole command reruns (and then replays the key).
        try:
            self._run.run("insert_key", values)
        except self._run.compiled.integrity_error:
            raise KeyTaken(stored.key) from None


class SqlDeadlines:
    def __init__(self, runner: Runner) -> None:
        self._run = runner

    def for_case(self, case_id: str) -> list[Deadline]:
        return self._run.all("deadlines_for_case", {"case_id": case_id}, codec.DEADLINES)

    def for_cases(self, case_ids: Sequence[str], *, lazy: bool = False) -> ByCase[Deadline]:
        return self._run.by_case("deadlines_for_cases", case_ids, codec.DEADLINES, _EXPLANATION if lazy else _EAGER)

    def save(self, deadline: Deadline, *, new: bool = False) -> None:
        values = {name: getattr(deadline, name) for name in DEADLINE_COLUMNS}
        if isinstance(deadline.explanation, LazyJson):  # one from a listing, saved as it is
            values["explanation"] = deadline.explanation.decoded()
        if new or self._run.run("update_deadline", {"b_id": deadline.id, **values}).rowcount == 0:
            self._run.run("insert_deadline", {"id": deadline.id, **values})
        self._run.run("refresh_case_due", {"case_id": deadline.case_id})  # the case's work-list due moment

    def open_due(self, due_before: datetime, due_from: datetime | None = None) -> list[Deadline]:
        values = {"due_before": worklists.bounded(self._run, due_before)}
        if due_from is not None:
            values["due_from"] = worklists.bounded(self._run, due_from)
        name = "deadlines_open_due_before" if due_from is None else "deadlines_open_due_between"
        return self._run.all(name, values, codec.DEADLINES, _EXPLANATION)

    def tally(self, due_soon_before: datetime) -> list[DeadlineTally]:
        rows = self._run.run("deadline_tally", {"soon": self._run.compiled.ts_in(due_soon_before)}).fetchall()
        return [DeadlineTally(str(policy), str(state), int(n), int(soon or 0)) for policy, state, n, soon in rows]

    def claim_due(self, now: datetime) -> str | None:
        found = self._run.run("claim_due", {"now": now}).fetchone()
        return None if found is None else str(found[0])

    def list(self, state: str | None = None, due_before: datetime | None = None) -> list[Deadline]:
        # the filters are the SQL's; explanations stay undecoded until someone reads one
        values: dict[str, Any] = {} if state is None else {"state": state}
        name = "deadlines_all" if state is None else "deadlines_in_state"
        if due_before is not None:
            try:
                values["due_before"] = self._run.compiled.ts_in(due_before)
            except OverflowError:  # a bound past either end of time in UTC: before every moment, or after
                if due_before.year == datetime.min.year:
                    return []
                values["due_before"] = self._run.compiled.ts_in(datetime.max.replace(tzinfo=UTC))
            name = "deadlines_due_before" if state is None else "deadlines_in_state_due_before"
        return self._run.all(name, values, codec.DEADLINES, _EXPLANATION)


def _outbox_outcome(notification: Notification) -> dict[str, Any]:
    return {
        "b_id": notification.id,
        "status": notification.status,
        "attempts": notification.attempts,
        "next_attempt_at": notification.next_attempt_at,
        "leased_until": notification.leased_until,
        "last_error": notification.last_error,
        "delivered_at": notification.delivered_at,
    }


class SqlOutbox:
    def __init__(self, runner: Runner) -> None:
        self._run = runner

    def add(self, notification: Notification) -> None:
        values = dict(notification.__dict__)
        del values["id"]
        values["payload"] = encode_payload(notification.payload)
        self._run.run("insert_outbox", values)

    def claim(self, now: datetime, lease_until: datetime, limit: int) -> list[Notification]:
        free = self._run.all("claim_outbox", {"now": now, "limit": limit}, codec.OUTBOX)
        claimed = [Notification(**{**n.__dict__, "leased_until": lease_until}) for n in free]
        self.save_all(claimed)
        return claimed

    def save(self, notification: Notification) -> None:
        self._run.run("update_outbox", _outbox_outcome(notification))

    def save_all(self, notifications: Sequence[Notification]) -> None:
        # executemany: psycopg pipelines the statements, one round trip rather than one each
        if notifications:
            params = [self._run.compiled.params(_outbox_outcome(n)) for n in notifications]
            self._run.cursor.executemany(self._run.compiled.sql["update_outbox"], params)

    def backlog(self) -> tuple[int, datetime | None]:
        count, oldest = self._run.run("outbox_backlog", {}).fetchone()
        return int(count), None if oldest is None else self._run.compiled.codec.ts_out(oldest)

    def list(self, status: str | None = None) -> list[Notification]:
        if status is None:
            return self._run.all("outbox_all", {}, codec.OUTBOX)
        return self._run.all("outbox_in_status", {"status": status}, codec.OUTBOX)


class SqlTokens:
    def __init__(self, runner: Runner) -> None:
        self._run = runner

    def add(self, token: ApiToken) -> None:
        self._run.run("insert_token", dict(token.__dict__))

    def get(self, token_id: str) -> ApiToken | None:
        return self._run.first("get_token", {"id": token_id}, codec.TOKENS)

    def by_hash(self, token_hash: str) -> ApiToken | None:
        return self._run.first("token_by_hash", {"token_hash": token_hash}, codec.TOKENS)

    def save(self, token: ApiToken) -> None:
        self._run.run("revoke_token", {"b_id": token.id, "revoked_at": token.revoked_at})

    def touch(self, token_id: str, at: datetime, not_since: datetime) -> None:
        self._run.run("touch_token", {"b_id": token_id, "last_used_at": at, "not_since": not_since})

    def list(self) -> list[ApiToken]:
        return self._run.all("tokens_all", {}, codec.TOKENS)


def _access_row(record: AccessRecord) -> dict[str, Any]:
    row = {k: v for k, v in record.__dict__.items() if k not in ("sequence", "cases")}
    row["cases_shown"] = None if record.cases is None else encode_payload(list(record.cases))
    return row


class SqlAccess:
    def __init__(self, runner: Runner) -> None:
        self._run = runner
        self._last_at: datetime | None = None
        self._tail_read = False

    def head(self) -> str:
        lock = self._run.compiled.backend.access_lock
        if lock is not None:
            self._run.cursor.execute(lock)
        found = self._run.run("access_head", {}).fetchone()
        self._tail_read = True
        if found is None:
            self._last_at = None
            return GENESIS
        try:
            self._last_at = self._run.compiled.codec.ts_out(found[1])
        except (TypeError, ValueError):
            problem = UnreadableRow("the last access record", "its time is not a timestamp")
            raise AuditIntegrityError(str(problem)) from None
        return str(found[0])

    def last_at(self) -> datetime | None:
        if not self._tail_read:  # read with the head, under its lock
            self.head()
        return self._last_at

    def append(self, records: list[AccessRecord]) -> None:
        rows = [self._run.compiled.params(_access_row(r)) for r in records]
        if rows:
            self._run.cursor.executemany(self._run.compiled.sql["insert_access"], rows)
        shown = [{"prev_hash": r.prev_hash, "case_id": c} for r in records for c in sorted(set(r.cases or ()))]
        if shown:
            self._run.cursor.executemany(self._run.compiled.sql["insert_access_shown"], shown)

    def all(self) -> list[AccessRecord]:
        return self._run.all("access_all", {}, codec.ACCESS)

    def shown(self) -> list[tuple[str, str]]:
        return [(str(row[0]), str(row[1])) for row in self._run.run("access_shown_all", {}).fetchall()]

    def for_case(self, case_id: str) -> list[AccessRecord]:
        return self._run.all("access_for_case", {"case_id": case_id}, codec.ACCESS)

    def for_organisation(self, organisation: str) -> list[AccessRecord]:
        return self._run.all("access_for_organisation", {"organisation": organisation}, codec.ACCESS)


class SqlSessions:
    def __init__(self, runner: Runner) -> None:
        self._run = runner

    def add(self, session: WebSession) -> None:
        self._run.run("insert_session", dict(session.__dict__))

    def get(self, key: str) -> WebSession | None:
        return self._run.first("get_session", {"key": key}, codec.SESSIONS)

    def save(self, session: WebSession) -> None:
        self._run.run("save_session", {"b_key": session.key, "seen_at": session.seen_at, "notices": session.notices})

    def remove(self, key: str) -> None:
        self._run.run("delete_session", {"key": key})

    def remove_token(self, token_id: str) -> None:
        self._run.run("delete_token_sessions", {"token_id": token_id})

    def remove_expired(self, seen_before: datetime, started_before: datetime) -> None:
        self._run.run("delete_expired_sessions", {"seen_before": seen_before, "started_before": started_before})

    def of_token(self, token_id: str) -> list[WebSession]:
        return self._run.all("token_sessions", {"token_id": token_id}, codec.SESSIONS)

    def count(self) -> int:
        return int(self._run.run("count_sessions", {}).fetchone()[0])

    def remove_least_recent(self) -> None:
        self._run.run("delete_least_recent_session", {})
