"""What the domain needs from storage, and nothing more.

The service layer talks only to these protocols; :mod:`storage` implements them for SQLite and
PostgreSQL, and ships an in-memory implementation for tests. A unit of work is one
transaction: everything done through it is committed by :meth:`UnitOfWork.commit` or, on any
exit without it, rolled back, so a failure between two writes leaves no partial case behind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from workflow.audit.chain import AuditRecord
from workflow.cases.case import Case, Transition
from workflow.deadlines.policies import Deadline

if TYPE_CHECKING:
    from workflow.access.log import AccessRecord
    from workflow.access.sessions import WebSession
    from workflow.access.tokens import ApiToken
    from workflow.audit.transparency import Leaf, Pending
    from workflow.feed.events import ChangeEvent
    from workflow.feed.subscriptions import Subscription
    from workflow.listing import CaseFilter, ListedCases, Position


class KeyTaken(Exception):
    """Storage found an idempotency key inserted by a concurrent transaction; retry the command."""


class UnreadableRow(Exception):
    """A stored row cannot be turned back into a domain object (a timestamp or payload that is
    not one): only tampering or a foreign writer produces this, so verification reports it."""

    def __init__(self, what: str, problem: str) -> None:
        self.what = what
        self.problem = problem
        super().__init__(f"{what} cannot be read ({problem})")


_T = TypeVar("_T")


@dataclass(frozen=True)
class ByCase(Generic[_T]):
    """Rows of several cases read in one go, grouped by case, each case's rows in the order its
    single-case read gives. A row that cannot be read back spoils only its own case: it is kept
    and raised when that case's rows are asked for, as the single-case read would have raised it."""

    rows: dict[str, list[_T]]
    unreadable: dict[str, UnreadableRow] = field(default_factory=dict)

    def of(self, case_id: str) -> list[_T]:
        problem = self.unreadable.get(case_id)
        if problem is not None:
            raise UnreadableRow(problem.what, problem.problem)
        return self.rows.get(case_id, [])


@dataclass(frozen=True)
class StoredResult:
    """The first result given for an idempotency key, with the fingerprint of its request."""

    key: str
    fingerprint: str
    case_id: str
    result: dict[str, Any]
    created_at: datetime


class CaseRepository(Protocol):
    def get(self, case_id: str, *, lock: bool = False) -> Case | None:
        """Load a case; ``lock`` holds it against concurrent writers until the unit ends."""
        ...

    def add(self, case: Case) -> None: ...

    def update(self, case: Case, *, expected_version: int, expected_audit_count: int) -> bool:
        """Write ``case`` if the stored row is still at the expected version and chain length."""
        ...

    def find_by_bsn_hash(self, bsn_hash: str) -> list[Case]: ...

    def list(
        self, state: str | None = None, *, organisation: str | None = None, route: str | None = None
    ) -> list[Case]:
        """Cases (in ``state``, of ``organisation``, on ``route``: each filter when given), by opening, then id."""
        ...

    def page(
        self, where: CaseFilter, order: str, *, descending: bool = False, after: Position | None = None, limit: int
    ) -> ListedCases:
        """At most ``limit`` cases ``where`` keeps, each with its work-list due moment, ordered by
        ``order`` (``opened_at``, ``updated_at``, ``due_at`` or ``id``) then id, both descending if
        asked, and strictly after ``after`` in that order (keyset pagination). Ordered by ``due_at``,
        only cases with a due moment are listed (``where.dated`` is taken as True)."""
        ...

    def counts(self, where: CaseFilter) -> dict[str, int]:
        """How many cases ``where`` keeps, per state (states without a case left out)."""
        ...


class AuditLog(Protocol):
    def append(self, record: AuditRecord) -> None: ...

    def for_case(self, case_id: str) -> list[AuditRecord]:
        """The case's records in storage order (global sequence)."""
        ...

    def for_cases(self, case_ids: Sequence[str]) -> ByCase[AuditRecord]:
        """:meth:`for_case` of each case, in one read."""
        ...

    def since(self, recorded_from: datetime | None, after: int | None = None) -> Iterator[AuditRecord]:
        """Records in storage order (global ``sequence``): those recorded from ``recorded_from`` on
        and with a sequence above ``after``, each filter when given."""
        ...

    def last_recorded_at(self) -> datetime | None:
        """``recorded_at`` of the last record in storage order (None when there is none), this
        unit's own appends included. In a write unit it holds the end of the log against other
        appenders until the unit ends, so that storage order, commit order and ``recorded_at``
        order are one: an export after a sequence, or from a moment, then misses nothing."""
        ...


class TransitionLog(Protocol):
    def add(self, transition: Transition) -> None: ...

    def for_case(self, case_id: str) -> list[Transition]: ...

    def for_cases(self, case_ids: Sequence[str]) -> ByCase[Transition]:
        """:meth:`for_case` of each case, in one read."""
        ...

    def of_event_between(self, event: str, since: datetime, until: datetime) -> list[Transition]:
        """Transitions of ``event`` that occurred from ``since`` (included) to ``until`` (excluded),
        by ``occurred_at``, then case id: a report's cases that finished in its period."""
        ...


class IdempotencyStore(Protocol):
    def get(self, key: str) -> StoredResult | None: ...

    def put(self, stored: StoredResult) -> None:
        """Remember a result; raise :class:`KeyTaken` if a concurrent writer got there first."""
        ...


SUBSCRIPTION = "subscription"
"""The outbox channel of a delivery to a webhook subscription: ``target`` is the subscription's id."""


@dataclass(frozen=True)
class Notification:
    """An outbox row: one message for one channel, delivered after the transaction that made it."""

    key: str
    case_id: str
    kind: str
    channel: str
    target: str
    payload: dict[str, Any]
    next_attempt_at: datetime
    created_at: datetime
    status: str = "pending"
    attempts: int = 0
    leased_until: datetime | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None
    id: int | None = None


@dataclass(frozen=True)
class DeadlineTally:
    """How many of one policy's deadlines, not stopped, are in one state (``running``, ``paused``,
    ``breached``), and how many of the running ones fall due before the moment asked about."""

    policy: str
    state: str
    count: int
    due_soon: int


class DeadlineStore(Protocol):
    def for_case(self, case_id: str) -> list[Deadline]: ...

    def tally(self, due_soon_before: datetime) -> list[DeadlineTally]:
        """The deadlines not stopped, counted by policy and state (one row each, by policy then
        state): at most policies x states rows, read from the index of open deadlines."""
        ...

    def for_cases(self, case_ids: Sequence[str], *, lazy: bool = False) -> ByCase[Deadline]:
        """:meth:`for_case` of each case, in one read. ``lazy``: each ``explanation`` may stay
        undecoded until it is read, as in :meth:`list` (a report reads few of them)."""
        ...

    def save(self, deadline: Deadline, *, new: bool = False) -> None:
        """Insert or replace the row of ``deadline.id``; ``new`` promises there is none yet (one
        statement instead of two)."""
        ...

    def claim_due(self, now: datetime) -> str | None:
        """Lock and return the case of the earliest running deadline whose next action is due by
        ``now``, skipping cases another transaction holds; None when nothing is due."""
        ...

    def open_due(self, due_before: datetime, due_from: datetime | None = None) -> list[Deadline]:
        """Open deadlines (running, or breached and not stopped: :data:`workflow.listing.OPEN_DEADLINE_STATES`)
        due strictly before ``due_before`` and, when given, at or after ``due_from``; by due moment."""
        ...

    def list(self, state: str | None = None, due_before: datetime | None = None) -> list[Deadline]:
        """Deadlines (in ``state``, and due strictly before ``due_before``, when given) by due moment.

        A listing may leave each ``explanation`` undecoded until it is read: storage then
        raises :class:`~workflow.errors.AuditIntegrityError` there if the stored text is not JSON."""
        ...


class Outbox(Protocol):
    def add(self, notification: Notification) -> None: ...

    def claim(self, now: datetime, lease_until: datetime, limit: int) -> list[Notification]:
        """Lease pending notifications due by ``now`` (and not leased) until ``lease_until``. A
        delivery to a subscription (channel :data:`SUBSCRIPTION`) is leased only when every earlier
        one of the same subscription and case has been delivered: a case's events arrive in order."""
        ...

    def save(self, notification: Notification) -> None:
        """Write back a claimed notification's delivery outcome (by id)."""
        ...

    def save_all(self, notifications: Sequence[Notification]) -> None:
        """:meth:`save` of each, in one round trip where the database allows."""
        ...

    def list(self, status: str | None = None) -> list[Notification]: ...

    def backlog(self) -> tuple[int, datetime | None]:
        """Pending notifications: how many, and when the oldest of them was made (None: none)."""
        ...


class TokenStore(Protocol):
    def add(self, token: ApiToken) -> None: ...

    def get(self, token_id: str) -> ApiToken | None: ...

    def by_hash(self, token_hash: str) -> ApiToken | None: ...

    def save(self, token: ApiToken) -> None:
        """Write back a token's revocation (by id)."""
        ...

    def touch(self, token_id: str, at: datetime, not_since: datetime) -> None:
        """Set the token's ``last_used_at`` to ``at`` unless it is already later than ``not_since``:
        conditional, so concurrent uses within a minute write once."""
        ...

    def list(self) -> list[ApiToken]: ...


class AccessLogStore(Protocol):
    def head(self) -> str:
        """The hash of the log's last record (GENESIS when empty), holding the log's end against
        other appenders until the unit ends, so that the chain stays one line."""
        ...

    def last_at(self) -> datetime | None:
        """The time of the log's last record (None when empty), read under the hold that
        :meth:`head` takes: the next record must not be dated before it."""
        ...

    def append(self, records: list[AccessRecord]) -> None: ...

    def all(self) -> list[AccessRecord]:
        """The whole log in storage order (for verification)."""
        ...

    def shown(self) -> list[tuple[str, str]]:
        """Every row of the index behind :meth:`for_case`'s list pages, ``(prev_hash, case_id)``:
        which record showed which case (for verification against the records' own lists)."""
        ...

    def for_case(self, case_id: str) -> list[AccessRecord]:
        """Records about the case, and the list pages that showed it (:attr:`AccessRecord.cases`)."""
        ...

    def for_organisation(self, organisation: str) -> list[AccessRecord]:
        """Records about the organisation's cases, and its own accesses that name no case."""
        ...


class WebSessionStore(Protocol):
    """The web desk's sessions (:mod:`workflow.access.sessions`), shared by every server process."""

    def add(self, session: WebSession) -> None: ...

    def get(self, key: str) -> WebSession | None: ...

    def save(self, session: WebSession) -> None:
        """Write ``seen_at`` and ``notices`` of an existing session (nothing if it is gone)."""
        ...

    def remove(self, key: str) -> None: ...

    def remove_token(self, token_id: str) -> None:
        """End every session of a token."""
        ...

    def remove_expired(self, seen_before: datetime, started_before: datetime) -> None:
        """End the sessions idle since before ``seen_before`` or started before ``started_before``."""
        ...

    def of_token(self, token_id: str) -> list[WebSession]:
        """A token's sessions, least recently seen first."""
        ...

    def count(self) -> int: ...

    def remove_least_recent(self) -> None:
        """End the session seen least recently (the bound on sessions in all)."""
        ...


class TransparencyLog(Protocol):
    """The one log over every audit and access record (:mod:`workflow.audit.transparency`)."""

    def hold(self) -> None:
        """Hold the log's end until the unit ends: one sequencer at a time."""
        ...

    def size(self) -> int: ...

    def last_ref(self, kind: str) -> int:
        """The highest sequence of ``kind``'s records already in the log (0: none)."""
        ...

    def pending(self, kind: str, after: int, limit: int) -> list[Pending]:
        """Up to ``limit`` records of ``kind`` after sequence ``after``, oldest first."""
        ...

    def append(self, leaves: Sequence[Leaf], nodes: dict[tuple[int, int], bytes]) -> None: ...

    def hashes(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Stored hashes by (level, index); level 0 is a leaf. KeyError for one not stored."""
        ...

    def position_of(self, kind: str, ref: int) -> int | None: ...

    def leaves(self, start: int = 0) -> list[Leaf]:
        """Every position from ``start``, in order (verification; the leaves a witness keeps)."""
        ...

    def record_hashes(self, kind: str) -> dict[int, str]:
        """Every record of ``kind`` as it is stored now: sequence -> hash (verification)."""
        ...

    def add_checkpoint(self, size: int, root: bytes, note: str, at: datetime) -> None: ...

    def checkpoints(self) -> list[str]:
        """The signed notes of every checkpoint made, oldest first."""
        ...


class ChangeFeed(Protocol):
    """The change feed (:mod:`workflow.feed.events`), appended in the unit of the change it reports."""

    def append(self, event: ChangeEvent) -> None: ...

    def page(self, organisation: str, after: int, limit: int) -> list[ChangeEvent]:
        """Up to ``limit`` events of ``organisation`` with a sequence above ``after``, by sequence."""
        ...


class SubscriptionStore(Protocol):
    """Webhook subscriptions (:mod:`workflow.feed.subscriptions`)."""

    def add(self, subscription: Subscription) -> None: ...

    def get(self, subscription_id: str) -> Subscription | None: ...

    def of_organisation(self, organisation: str, *, active_only: bool = False) -> list[Subscription]:
        """By creation, then id."""
        ...

    def save(self, subscription: Subscription) -> None:
        """Write back the secret, rotation time and active flag (by id)."""
        ...

    def remove(self, subscription_id: str, now: datetime) -> None:
        """Delete the subscription, and dead-letter its deliveries still pending (``subscription
        removed``), so the worker neither tries them nor holds a case's later events behind them."""
        ...


class UnitOfWork(Protocol):
    @property
    def cases(self) -> CaseRepository: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def transitions(self) -> TransitionLog: ...

    @property
    def keys(self) -> IdempotencyStore: ...

    @property
    def deadlines(self) -> DeadlineStore: ...

    @property
    def outbox(self) -> Outbox: ...

    @property
    def tokens(self) -> TokenStore: ...

    @property
    def access(self) -> AccessLogStore: ...

    @property
    def sessions(self) -> WebSessionStore: ...

    @property
    def log(self) -> TransparencyLog: ...

    @property
    def feed(self) -> ChangeFeed: ...

    @property
    def subscriptions(self) -> SubscriptionStore: ...

    def __enter__(self) -> UnitOfWork: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def commit(self) -> None: ...


UnitOfWorkFactory = Callable[[bool], UnitOfWork]
"""``factory(write)``: a new unit of work; ``write=True`` takes the write lock up front."""
