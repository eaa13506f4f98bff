"""Between rows and domain objects: the one place values are converted, in both directions.

Timestamps go in as aware UTC (SQLite, which has no timestamp type, gets fixed-width UTC text
that sorts and compares correctly) and come out as aware UTC on both backends; a naive one is
refused, never guessed. JSON columns are stored as canonical text. Each table has its own decoder
(:class:`TableCodec`), which names an unreadable row the way verification reports it; nothing
guesses a table from its column names.

Decoding works out its per-column steps once per statement (:meth:`TableCodec.reader`), not once
per row: verification reads every record there is, a listing every row it lists.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import MISSING, dataclass, fields
from datetime import UTC, datetime
from functools import partial
from typing import Any, Generic, TypeVar

from workflow.access.log import AccessRecord
from workflow.access.sessions import WebSession
from workflow.access.tokens import ApiToken
from workflow.audit.chain import AuditRecord
from workflow.cases.case import Case, Transition
from workflow.deadlines.policies import Deadline
from workflow.errors import AuditIntegrityError
from workflow.ports import ByCase, Notification, StoredResult, UnreadableRow

TIMESTAMPS = frozenset(
    {"opened_at", "updated_at", "occurred_at", "recorded_at", "created_at", "started_at", "due_at", "next_action_at",
     "stopped_at", "now", "next_attempt_at", "leased_until", "delivered_at", "revoked_at", "at", "seen_at",
     "seen_before", "started_before", "expires_at", "last_used_at", "not_since", "rotated_at"}
)  # fmt: skip
"""Columns (and bound parameters) holding a moment."""
JSON_COLUMNS = frozenset({"facts", "explanation", "name_hashes", "notices", "scopes", "event_types"})
"""Columns stored as canonical JSON text, encoded on the way in by :meth:`Codec.params`."""
PAYLOADS = frozenset({"payload"})
"""JSON columns the repositories encode themselves (audit and outbox payloads), decoded here."""
_UNREADABLE = (ValueError, TypeError, AttributeError)

_PAYLOAD_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
"""What ``json.dumps`` with these options would build on every call (several per command), built once."""


def encode_payload(payload: Any) -> str:
    """Canonical JSON text: sorted keys, no spaces, UTF-8 kept (the audit hashes depend on it)."""
    return _PAYLOAD_ENCODER.encode(payload)


def ts_out(value: Any) -> datetime:
    """A stored moment as aware UTC: SQLite's UTC text, or PostgreSQL's ``timestamptz``."""
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value.astimezone(UTC)  # type: ignore[no-any-return]


def ts_out_sqlite(value: Any) -> datetime:
    """:func:`ts_out` for SQLite's fixed-width UTC text, in one C call rather than two."""
    if isinstance(value, str):
        try:
            found = datetime.fromisoformat(value + "+00:00")
        except ValueError:
            found = None
        if found is not None and found.tzinfo is UTC:  # otherwise not text this module wrote: judge it as ts_out does
            return found
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value.astimezone(UTC)  # type: ignore[no-any-return]


class Codec:
    """The conversions of values going in, for one dialect (``sqlite`` or ``postgresql``)."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.ts_out: Callable[[Any], datetime] = ts_out_sqlite if dialect == "sqlite" else ts_out

    def ts_in(self, value: datetime) -> Any:
        """A moment as the driver takes it; naive refused. May raise OverflowError at the ends of time."""
        if value.tzinfo is UTC:  # what the domain hands over: no conversion needed
            if self.dialect == "sqlite":
                return value.isoformat(sep=" ", timespec="microseconds")[:-6]  # without "+00:00"
            return value
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime refused: store timezone-aware UTC")
        value = value.astimezone(UTC)
        if self.dialect == "sqlite":
            return value.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        return value

    def params(self, values: dict[str, Any]) -> dict[str, Any]:
        """Values as the driver takes them; only the few keys that need it are converted."""
        out = dict(values)
        for name in TIMESTAMPS.intersection(out):
            if out[name] is not None:
                out[name] = self.ts_in(out[name])
        for name in JSON_COLUMNS.intersection(out):
            if out[name] is not None:
                out[name] = encode_payload(out[name])
        return out

    def case_ids(self, case_ids: Sequence[str]) -> Any:
        """The ``:case_ids`` of the several-cases reads: a JSON array for SQLite, a list for PostgreSQL."""
        return json.dumps(list(case_ids)) if self.dialect == "sqlite" else list(case_ids)


class LazyJson(Mapping[str, Any]):
    """A JSON object stored as text, decoded on first use. Listings of deadlines carry their
    explanation (about 1 KB of JSON each) this way, so it costs nothing unless it is read; text
    that is not a JSON object raises :class:`AuditIntegrityError` there, naming its row."""

    __slots__ = ("_text", "_value", "_what")

    def __init__(self, text: str, what: Callable[[], str]) -> None:
        self._text = text
        self._value: dict[str, Any] | None = None
        self._what = what

    def decoded(self) -> dict[str, Any]:
        if self._value is None:
            try:
                value = json.loads(self._text)
                if not isinstance(value, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                raise AuditIntegrityError(str(UnreadableRow(self._what(), str(exc)))) from None
            self._value = value
        return self._value

    def __getitem__(self, key: str) -> Any:
        return self.decoded()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.decoded())

    def __len__(self) -> int:
        return len(self.decoded())

    def __repr__(self) -> str:
        return repr(self.decoded())


_T = TypeVar("_T")


@dataclass(frozen=True)
class TableCodec(Generic[_T]):
    """How one table's rows become ``make`` instances: its columns but ``drop`` are the fields;
    ``describe`` names a row (from its raw values) when it cannot be read; ``finish`` (optional)
    completes the decoded values (and may refuse them itself)."""

    table: str
    make: type[_T]
    describe: Callable[[Mapping[str, Any]], str]
    drop: tuple[str, ...] = ()
    finish: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    def reader(self, codec: Codec, names: Sequence[str], lazy: frozenset[str] = frozenset()) -> RowReader[_T]:
        """A decoder for rows with the columns ``names`` (a statement's); ``lazy`` JSON columns
        become :class:`LazyJson`."""
        return RowReader(self, codec, list(names), lazy)


class RowReader(Generic[_T]):
    """One statement's rows into domain objects, with the per-column steps worked out once."""

    def __init__(self, table: TableCodec[_T], codec: Codec, names: list[str], lazy: frozenset[str]) -> None:
        self._table = table
        self._names = names
        self._steps: list[tuple[int, Callable[[Any], Any]]] = [
            (i, codec.ts_out if column in TIMESTAMPS else json.loads)
            for i, column in enumerate(names)
            if column in TIMESTAMPS or (column not in lazy and (column in JSON_COLUMNS or column in PAYLOADS))
        ]
        self._lazy = [i for i, column in enumerate(names) if column in lazy]
        # when the columns are the fields (those left out having defaults), an instance is made as
        # unpickling makes one (its __dict__ filled in), several times faster than the frozen
        # dataclass's __init__
        made_of = fields(table.make)  # type: ignore[arg-type]
        left_out = {f.name for f in made_of} - set(names)
        self._defaults = {f.name: f.default for f in made_of if f.name in left_out and f.default is not MISSING}
        self._fill = (
            set(names) - set(table.drop) <= {f.name for f in made_of}
            and len(self._defaults) == len(left_out)
            and not hasattr(table.make, "__post_init__")
        )
        self._case_at = names.index("case_id") if "case_id" in names else -1

    def describe(self, raw: Sequence[Any]) -> str:
        return self._table.describe(dict(zip(self._names, raw, strict=True)))

    def _describe_column(self, i: int, raw: Sequence[Any]) -> str:
        return f"the {self._names[i]} of {self.describe(raw)}"

    def one(self, raw: Sequence[Any]) -> _T:
        """The domain object of one row; :class:`UnreadableRow` if a value is not what it should be."""
        values = list(raw)
        try:
            for i, step in self._steps:
                if values[i] is not None:
                    values[i] = step(values[i])
        except _UNREADABLE as exc:
            raise UnreadableRow(self.describe(raw), str(exc)) from None
        for i in self._lazy:
            if values[i] is not None:
                values[i] = LazyJson(values[i], partial(self._describe_column, i, raw))
        state = dict(zip(self._names, values, strict=True))
        for name in self._table.drop:
            del state[name]
        if self._table.finish is not None:
            state = self._table.finish(state)
        if not self._fill:
            return self._table.make(**state)
        made = object.__new__(self._table.make)
        if self._defaults:
            made.__dict__.update(self._defaults)
        made.__dict__.update(state)
        return made

    def all(self, rows: Iterable[Sequence[Any]]) -> list[_T]:
        return [self.one(raw) for raw in rows]

    def by_case(self, rows: Iterable[Sequence[Any]]) -> ByCase[_T]:
        """Rows grouped by their ``case_id``, in the statement's order within each case. An
        unreadable row becomes its case's error: the first one, where a single-case read stops."""
        grouped: dict[str, list[_T]] = {}
        unreadable: dict[str, UnreadableRow] = {}
        at = self._case_at
        for raw in rows:
            case_id = raw[at]
            if case_id in unreadable:
                continue
            try:
                grouped.setdefault(case_id, []).append(self.one(raw))
            except UnreadableRow as problem:
                unreadable[case_id] = problem
        return ByCase(grouped, unreadable)


def _case(state: dict[str, Any]) -> dict[str, Any]:
    state["name_hashes"] = tuple(state["name_hashes"])
    return state


def _stored_result(state: dict[str, Any]) -> dict[str, Any]:
    try:
        state["result"] = json.loads(state["result"])
    except ValueError as exc:
        raise UnreadableRow(f"idempotency key {state['key']!r}", str(exc)) from None
    return state


CASE_DERIVED = ("provider", "assignee", "due_at")
"""Columns of the case row derived for the work lists (:mod:`workflow.listing`), not fields of a case."""
CASES: TableCodec[Case] = TableCodec(
    "cases", Case, lambda r: f"row {r['id']} of cases", drop=CASE_DERIVED, finish=_case
)
AUDIT: TableCodec[AuditRecord] = TableCodec(
    "audit_records", AuditRecord, lambda r: f"audit record {r['seq']} of case {r['case_id']}"
)
TRANSITIONS: TableCodec[Transition] = TableCodec(
    "case_transitions", Transition, lambda r: f"transition {r['version']} of case {r['case_id']}", drop=("id",)
)
KEYS: TableCodec[StoredResult] = TableCodec(
    "idempotency_keys", StoredResult, lambda r: f"row {r['key']} of idempotency_keys", finish=_stored_result
)
DEADLINES: TableCodec[Deadline] = TableCodec("deadlines", Deadline, lambda r: f"deadline {r['id']}", drop=("id",))
OUTBOX: TableCodec[Notification] = TableCodec("outbox", Notification, lambda r: f"row {r['id']} of outbox")
def _token(state: dict[str, Any]) -> dict[str, Any]:
    state["scopes"] = tuple(state["scopes"])
    return state


TOKENS: TableCodec[ApiToken] = TableCodec(
    "api_tokens", ApiToken, lambda r: f"row {r['id']} of api_tokens", finish=_token
)
SESSIONS: TableCodec[WebSession] = TableCodec("web_sessions", WebSession, lambda r: "a row of web_sessions")
def _access(state: dict[str, Any]) -> dict[str, Any]:
    shown = state.pop("cases_shown")
    if shown is not None:
        try:
            state["cases"] = tuple(json.loads(shown))
        except ValueError as exc:
            raise UnreadableRow(f"access record {state['sequence']}", str(exc)) from None
    return state


ACCESS: TableCodec[AccessRecord] = TableCodec(
    "access_records", AccessRecord, lambda r: f"access record {r['sequence']}", finish=_access
)
