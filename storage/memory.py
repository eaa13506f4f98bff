"""The in-memory backend: the same contract as SQL, for tests and quick experiments.

Write units of work are serialised by one lock (the analogue of SQLite's write lock) and stage
their changes, which become visible only on :meth:`MemoryUnitOfWork.commit`; leaving without a
commit discards them, exactly like a rolled-back transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

from workflow.access.log import AccessRecord
from workflow.access.sessions import WebSession
from workflow.access.tokens import ApiToken
from workflow.audit.chain import GENESIS, AuditRecord
from workflow.audit.transparency import AUDIT
from workflow.cases.case import Case, Transition
from workflow.deadlines.policies import RUNNING, Deadline
from workflow.listing import CaseFilter, Listed, ListedCases, Position, case_due_at, is_open, sort_key
from workflow.ports import SUBSCRIPTION, ByCase, DeadlineTally, Notification, StoredResult

from .memory_feed import MemoryFeed, MemoryFeedStore, MemorySubscriptions
from .memory_log import MemoryLog, MemoryLogStore
from .memory_sessions import MemorySessions
from .memory_values import utc_fields

_T = TypeVar("_T")


def _by_case(rows: Iterable[_T], case_ids: Sequence[str], case_of: Callable[[_T], str]) -> ByCase[_T]:
    wanted = set(case_ids)
    grouped: dict[str, list[_T]] = {}
    for row in rows:
        if case_of(row) in wanted:
            grouped.setdefault(case_of(row), []).append(row)
    return ByCase(grouped)


@dataclass
class MemoryStore:
    """Everything committed; one per ``memory://`` backend, shared by its units of work."""

    cases: dict[str, Case] = field(default_factory=dict)
    audit: list[AuditRecord] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    keys: dict[str, StoredResult] = field(default_factory=dict)
    deadlines: dict[str, Deadline] = field(default_factory=dict)
    outbox: dict[int, Notification] = field(default_factory=dict)
    tokens: dict[str, ApiToken] = field(default_factory=dict)
    sessions: dict[str, WebSession] = field(default_factory=dict)
    access: list[AccessRecord] = field(default_factory=list)
    log: MemoryLogStore = field(default_factory=MemoryLogStore)
    feed: MemoryFeedStore = field(default_factory=MemoryFeedStore)
    lock: threading.Lock = field(default_factory=threading.Lock)


class MemoryCases:
    def __init__(self, uow: MemoryUnitOfWork) -> None:
        self._uow = uow

    def get(self, case_id: str, *, lock: bool = False) -> Case | None:
        return self._uow.staged_cases.get(case_id)

    def add(self, case: Case) -> None:
        if case.id in self._uow.staged_cases:
            raise ValueError(f"case {case.id} exists")
        self._uow.staged_cases[case.id] = utc_fields(case)

    def update(self, case: Case, *, expected_version: int, expected_audit_count: int) -> bool:
        current = self._uow.staged_cases.get(case.id)
        if current is None or (current.version, current.audit_count) != (expected_version, expected_audit_count):
            return False
        self._uow.staged_cases[case.id] = utc_fields(case)
        return True

    def find_by_bsn_hash(self, bsn_hash: str) -> list[Case]:
        return [c for c in self.list() if c.bsn_hash == bsn_hash]

    def list(
        self, state: str | None = None, *, organisation: str | None = None, route: str | None = None
    ) -> list[Case]:
        cases = sorted(self._uow.staged_cases.values(), key=lambda c: (c.opened_at, c.id))
        return [
            c for c in cases
            if (state is None or c.state == state)
            and (organisation is None or c.organisation == organisation)
            and (route is None or c.route == route)
        ]  # fmt: skip


    def page(
        self, where: CaseFilter, order: str, *, descending: bool = False, after: Position | None = None, limit: int
    ) -> ListedCases:
        if order == "due_at":
            where = replace(where, dated=True)
        listed = [Listed(c, due) for c in self._uow.staged_cases.values()
                  if where.keeps(c, due := self._due(c.id))]  # fmt: skip

        def key(item: Listed) -> tuple[Any, str]:
            return (sort_key(item, order) if order != "id" else "", item.case.id)

        listed.sort(key=key, reverse=descending)
        if after is not None:
            mark = (after.key if order != "id" else "", after.case_id)
            listed = [x for x in listed if (key(x) < mark if descending else key(x) > mark)]
        return listed[:limit]

    def counts(self, where: CaseFilter) -> dict[str, int]:
        found: dict[str, int] = {}
        for c in self._uow.staged_cases.values():
            if where.keeps(c, self._due(c.id)):
                found[c.state] = found.get(c.state, 0) + 1
        return found

    def _due(self, case_id: str) -> datetime | None:
        return case_due_at(d for d in self._uow.staged_deadlines.values() if d.case_id == case_id)


class MemoryAudit:
    def __init__(self, uow: MemoryUnitOfWork) -> None:
        self._uow = uow

    def append(self, record: AuditRecord) -> None:
        self._uow.new_audit.append(utc_fields(record))

    def _all(self) -> list[AuditRecord]:
        return self._uow.store.audit + self._uow.new_audit

    def for_case(self, case_id: str) -> list[AuditRecord]:
        return [r for r in self._all() if r.case_id == case_id]

    def for_cases(self, case_ids: Sequence[str]) -> ByCase[AuditRecord]:
        return _by_case(self._all(), case_ids, lambda r: r.case_id)

    def since(self, recorded_from: datetime | None, after: int | None = None) -> Iterator[AuditRecord]:
        return iter([
            r for r in self._all()
            if (recorded_from is None or r.recorded_at >= recorded_from)
            and (after is None or r.sequence is None or r.sequence > after)  # (None: staged, after all stored)
        ])  # fmt: skip

    def last_recorded_at(self) -> datetime | None:
        every = self._all()  # write units hold the store's lock: nobody appends meanwhile
        return every[-1].recorded_at if every else None


class MemoryTransitions:
    def __init__(self, uow: MemoryUnitOfWork) -> None:
        self._uow = uow

    def add(self, transition: Transition) -> None:
        self._uow.new_transitions.append(utc_fields(transition))

    def for_case(self, case_id: str) -> list[Transition]:
        every = self._uow.store.transitions + self._uow.new_transitions
        return sorted((t for t in every if t.case_id == case_id), key=lambda t: t.version)

    def for_cases(self, case_ids: Sequence[str]) -> ByCase[Transition]:
        every = self._uow.store.transitions + self._uow.new_transitions
        return _by_case(sorted(every, key=lambda t: t.version), case_ids, lambda t: t.case_id)

    def of_event_between(self, event: str, since: datetime, until: datetime) -> list[Transition]:
        every = self._uow.store.transitions + self._uow.new_transitions
        found = (t for t in every if t.event == event and since <= t.occurred_at < until)
        return sorted(found, key=lambda t: (t.occurred_at, t.case_id))


class MemoryKeys:
    def __init__(self, uow: MemoryUnitOfWork) -> None:
        self._uow = uow

    def get(self, key: str) -> StoredResult | None:
        return self._uow.new_keys.get(key) or self._uow.store.keys.get(key)

    def put(self, stored: StoredResult) -> None:
        self._uow.new_keys[stored.key] = utc_fields(stored)


class MemoryDeadlines:
    def __init__(self, uow: MemoryUnitOfWork) -> None:
        self._uow = uow

    def for_case(self, case_id: str) -> list[Deadline]:
        return sorted((d for d in self._uow.staged_deadlines.values() if d.case_id == case_id), key=lambda d: d.id)

    def for_cases(self, case_ids: Sequence[str], *, lazy: bool = False) -> ByCase[Deadline]:
        # explanations are objects already: nothing to defer
        return _by_case(sorted(self._uow.staged_deadlines.values(), key=lambda d: d.id), case_ids, lambda d: d.case_id)

    def save(self, deadline: Deadline, *, new: bool = False) -> None:
        self._uow.staged_deadlines[deadline.id] = utc_fields(deadline)

    def tally(self, due_soon_before: datetime) -> list[DeadlineTally]:
        found: dict[tuple[str, str], list[int]] = {}
        for d in (d for d in self._uow.staged_deadlines.values() if d.stopped_at is None):
            tally = found.setdefault((d.policy, d.state), [0, 0])
            tally[0] += 1
            tally[1] += d.state == RUNNING and d.due_at is not None and d.due_at < due_soon_before
        return [DeadlineTally(policy, state, n, soon) for (policy, state), (n, soon) in sorted(found.items())]

    def claim_due(self, now: datetime) -> str | None:
        due = [
            d for d in self._uow.staged_deadlines.values()
            if d.state == RUNNING and d.next_action_at is not None and d.next_action_at <= now
        ]  # fmt: skip
        return min(due, key=lambda d: (d.next_action_at, d.id)).case_id if due else None

    def open_due(self, due_before: datetime, due_from: datetime | None = None) -> list[Deadline]:
        rows = [
            d for d in self._uow.staged_deadlines.values()
            if is_open(d) and d.due_at is not None and d.due_at < due_before
            and (due_from is None or d.due_at >= due_from)
        ]  # fmt: skip
        return sorted(rows, key=lambda d: (d.due_at, d.id))

    def list(self, state: str | None = None, due_before: datetime | None = None) -> list[Deadline]:
        rows = [
            d for d in self._uow.staged_deadlines.values()
            if (state is None or d.state == state)
            and (due_before is None or (d.due_at is not None and d.due_at < due_before))
        ]  # fmt: skip
        return sorted(rows, key=lambda d: (d.due_at is None, d.due_at or d.started_at, d.id))


class MemoryOutbox:
    def __init__(self, uow: MemoryUnitOfWork) -> None:
        self._uow = uow

    def add(self, notification: Notification) -> None:
        staged = self._uow.staged_outbox
        if any(n.key == notification.key for n in staged.values()):
            raise ValueError(f"outbox key {notification.key} exists")
        new_id = max(staged, default=0) + 1
        staged[new_id] = replace(utc_fields(notification), id=new_id)

    def claim(self, now: datetime, lease_until: datetime, limit: int) -> list[Notification]:
        rows = sorted(self._uow.staged_outbox.values(), key=lambda n: n.id or 0)
        heads: dict[tuple[str, str], int | None] = {}  # each subscription's and case's first undelivered
        for n in rows:
            if n.channel == SUBSCRIPTION and n.status != "delivered":
                heads.setdefault((n.target, n.case_id), n.id)
        free = [
            n for n in rows
            if n.status == "pending" and n.next_attempt_at <= now and (n.leased_until is None or n.leased_until <= now)
            and (n.channel != SUBSCRIPTION or heads[(n.target, n.case_id)] == n.id)
        ]  # fmt: skip
        claimed = [replace(n, leased_until=lease_until) for n in sorted(free, key=lambda n: (n.next_attempt_at, n.id))]
        for n in claimed[:limit]:
            assert n.id is not None
            self._uow.staged_outbox[n.id] = n
        return claimed[:limit]

    def save(self, notification: Notification) -> None:
        assert notification.id is not None
        self._uow.staged_outbox[notification.id] = utc_fields(notification)

    def save_all(self, notifications: Sequence[Notification]) -> None:
        for notification in notifications:
            self.save(notification)

    def backlog(self) -> tuple[int, datetime | None]:
        pending = [n.created_at for n in self._uow.staged_outbox.values() if n.status == "pending"]
        return len(pending), min(pending, default=None)

    def list(self, status: str | None = None) -> list[Notification]:
        rows = sorted(self._uow.staged_outbox.values(), key=lambda n: n.id or 0)
        return [n for n in rows if status is None or n.status == status]


class MemoryTokens:
    def __init__(self, uow: MemoryUnitOfWork) -> None:
        self._uow = uow

    def add(self, token: ApiToken) -> None:
        if token.id in self._uow.staged_tokens or self.by_hash(token.token_hash) is not None:
            raise ValueError(f"token {token.id} exists")
        self._uow.staged_tokens[token.id] = utc_fields(token)

    def get(self, token_id: str) -> ApiToken | None:
        return self._uow.staged_tokens.get(token_id)

    def by_hash(self, token_hash: str) -> ApiToken | None:
        return next((t for t in self._uow.staged_tokens.values() if t.token_hash == token_hash), None)

    def save(self, token: ApiToken) -> None:
        self._uow.staged_tokens[token.id] = utc_fields(token)

    def touch(self, token_id: str, at: datetime, not_since: datetime) -> None:
        found = self._uow.staged_tokens.get(token_id)
        if found is not None and (found.last_used_at is None or found.last_used_at <= not_since):
            self._uow.staged_tokens[token_id] = utc_fields(replace(found, last_used_at=at))

    def list(self) -> list[ApiToken]:
        return sorted(self._uow.staged_tokens.values(), key=lambda t: (t.created_at, t.id))


class MemoryAccess:
    def __init__(self, uow: MemoryUnitOfWork) -> None:
        self._uow = uow

    def _all(self) -> list[AccessRecord]:
        return self._uow.store.access + self._uow.new_access

    def head(self) -> str:
        log = self._all()
        return log[-1].hash if log else GENESIS

    def last_at(self) -> datetime | None:
        log = self._all()
        return log[-1].at if log else None

    def append(self, records: list[AccessRecord]) -> None:
        taken = {r.prev_hash for r in self._all()}
        for record in records:
            if record.prev_hash in taken:
                raise ValueError("access log fork: that head was already extended")
            taken.add(record.prev_hash)
            self._uow.new_access.append(utc_fields(record))

    def all(self) -> list[AccessRecord]:
        return self._all()

    def shown(self) -> list[tuple[str, str]]:
        # the memory backend finds pages by their own lists: its index is the records themselves
        return sorted({(r.prev_hash, c) for r in self._all() for c in r.cases or ()})

    def for_case(self, case_id: str) -> list[AccessRecord]:
        return [r for r in self._all() if r.names(case_id)]

    def for_organisation(self, organisation: str) -> list[AccessRecord]:
        return [r for r in self._all() if r.case_organisation == organisation
                or (r.case_organisation is None and r.organisation == organisation)]  # fmt: skip


class MemoryUnitOfWork:
    """Staged copies of the store, made visible by :meth:`commit`; writers hold the store's lock."""

    def __init__(self, store: MemoryStore, write: bool) -> None:
        self.store = store
        self._write = write

    def __enter__(self) -> MemoryUnitOfWork:
        if self._write:
            self.store.lock.acquire()
        self.staged_cases = dict(self.store.cases)
        self.staged_deadlines = dict(self.store.deadlines)
        self.staged_outbox = dict(self.store.outbox)
        self.staged_tokens = dict(self.store.tokens)
        self.staged_sessions = dict(self.store.sessions)
        self.new_audit: list[AuditRecord] = []
        self.new_transitions: list[Transition] = []
        self.new_keys: dict[str, StoredResult] = {}
        self.new_access: list[AccessRecord] = []
        self.cases = MemoryCases(self)
        self.audit = MemoryAudit(self)
        self.transitions = MemoryTransitions(self)
        self.keys = MemoryKeys(self)
        self.deadlines = MemoryDeadlines(self)
        self.outbox = MemoryOutbox(self)
        self.tokens = MemoryTokens(self)
        self.access = MemoryAccess(self)
        self.sessions = MemorySessions(self)
        self.log = MemoryLog(self.store.log, self._committed_records)
        self.feed = MemoryFeed(self.store.feed)
        self.subscriptions = MemorySubscriptions(self.store.feed, self)
        return self

    def _committed_records(self, kind: str) -> list[tuple[int, str, datetime]]:
        if kind == AUDIT:
            return [(r.sequence or 0, r.hash, r.recorded_at) for r in self.store.audit]
        return [(r.sequence or 0, r.hash, r.at) for r in self.store.access]

    def commit(self) -> None:
        if not self._write:
            raise RuntimeError("read-only unit of work")
        store = self.store
        self.log.commit()
        self.feed.commit()
        self.subscriptions.commit()
        start = len(store.audit)
        store.audit.extend(replace(r, sequence=start + i) for i, r in enumerate(self.new_audit, start=1))
        store.transitions.extend(self.new_transitions)
        store.keys.update(self.new_keys)
        store.cases = self.staged_cases
        store.deadlines = self.staged_deadlines
        store.outbox = self.staged_outbox
        store.tokens = self.staged_tokens
        store.sessions = self.staged_sessions
        begin = len(store.access)
        store.access.extend(replace(r, sequence=begin + i) for i, r in enumerate(self.new_access, start=1))
        self.new_access = []
        self.new_audit, self.new_transitions, self.new_keys = [], [], {}

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._write:
            self.store.lock.release()
