"""The work lists' statements (:mod:`workflow.listing`), named beside their SQL as in
:mod:`storage.statements`, whose catalogue includes them: the fixed ones in
:data:`WORKLIST_STATEMENTS`, and the case pages and counts, one statement per combination of
filters and order, built by :func:`worklist_statement` from their names and compiled on first use.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, tuple_
from sqlalchemy.sql.expression import ClauseElement

from workflow.deadlines.policies import BREACHED, RUNNING

from .tables import CaseCountRow, CaseRow, DeadlineRow

CASES = CaseRow.__table__  # type: ignore[attr-defined]
COUNTS = CaseCountRow.__table__  # type: ignore[attr-defined]
DEADLINES = DeadlineRow.__table__  # type: ignore[attr-defined]
_BY_DUE = (DEADLINES.c.due_at, DEADLINES.c.id)

_OPEN_DEADLINE = and_(
    DEADLINES.c.stopped_at.is_(None), or_(DEADLINES.c.state == RUNNING, DEADLINES.c.state == BREACHED)
)
"""Running, or breached and not stopped since: :data:`workflow.listing.OPEN_DEADLINE_STATES`. With a
range on ``due_at`` it reads through ``ix_deadlines_open_due_at`` (stopped_at, due_at, id): every
stopped deadline has ``stopped_at``, a paused one no due moment."""
WORKLIST_STATEMENTS: dict[str, tuple[ClauseElement, list[str] | None]] = {
    # after every write of a deadline: the case's work-list due moment, from its open deadlines
    "refresh_case_due": (
        CASES.update()
        .where(CASES.c.id == bindparam("case_id"))
        .values(
            due_at=select(func.min(DEADLINES.c.due_at))
            .where(DEADLINES.c.case_id == bindparam("case_id"), _OPEN_DEADLINE)
            .scalar_subquery()
        ),
        None,
    ),
    # deadlines --overdue / --due-within: read through ix_deadlines_open_due_at
    "deadlines_open_due_before": (
        select(DEADLINES).where(_OPEN_DEADLINE, DEADLINES.c.due_at < bindparam("due_before")).order_by(*_BY_DUE),
        None,
    ),
    "deadlines_open_due_between": (
        select(DEADLINES)
        .where(
            _OPEN_DEADLINE,
            DEADLINES.c.due_at >= bindparam("due_from"),
            DEADLINES.c.due_at < bindparam("due_before"),
        )
        .order_by(*_BY_DUE),
        None,
    ),
}

_PAGE_FILTERS: dict[str, Any] = {
    **{name: lambda name=name: CASES.c[name] == bindparam(name)
       for name in ("organisation", "state", "route", "provider", "assignee", "patient_ref")},
    "updated_since": lambda: CASES.c.updated_at >= bindparam("updated_since"),
    "due_before": lambda: CASES.c.due_at < bindparam("due_before"),
    "due_from": lambda: CASES.c.due_at >= bindparam("due_from"),
    "due_to": lambda: CASES.c.due_at <= bindparam("due_to"),
    "dated": lambda: CASES.c.due_at.is_not(None),
    "undated": lambda: CASES.c.due_at.is_(None),
}  # fmt: skip
"""Each filter of a case page or count (:class:`workflow.listing.CaseFilter`), as SQL."""
PAGE_ORDERS = ("opened_at", "updated_at", "due_at", "id")


def case_page(filters: Sequence[str], order: str, descending: bool, after: bool) -> str:
    """The name of the case page with these filters (names of :data:`_PAGE_FILTERS`), order, and
    keyset start; its statement is built by :func:`worklist_statement` when first run."""
    start = "after" if after else "first"
    return f"case_page:{order}:{'desc' if descending else 'asc'}:{start}:{','.join(sorted(filters))}"


def case_counts(filters: Sequence[str]) -> str:
    """The name of the per-state count with these filters."""
    return f"case_counts:{','.join(sorted(filters))}"


BOARD_FILTERS = frozenset({"organisation", "route", "state"})
"""The filters :data:`COUNTS` can answer: a board's (its rows are per organisation, route and state)."""


def board_counts(filters: Sequence[str]) -> str:
    """The name of the per-state count read from ``case_counts``, for filters within :data:`BOARD_FILTERS`."""
    return f"board_counts:{','.join(sorted(filters))}"


def worklist_statement(name: str) -> ClauseElement:
    """The statement a :func:`case_page` or :func:`case_counts` name stands for: a conjunction of
    the named filters, each an equality or range on one column of ``cases``, so that the indexes on
    (organisation, order column, id) serve the WHERE, the ORDER BY and the LIMIT together. A page
    after a position continues strictly after its (key, id) in the listing's order (keyset)."""
    kind, _, rest = name.partition(":")
    if kind == "board_counts":  # a few rows per organisation, whatever its number of cases
        where = [COUNTS.c[f] == bindparam(f) for f in rest.split(",") if f]
        return select(COUNTS.c.state, func.sum(COUNTS.c.n)).where(*where, COUNTS.c.n > 0).group_by(COUNTS.c.state)
    if kind == "case_counts":
        wheres = [_PAGE_FILTERS[f]() for f in rest.split(",") if f]
        return select(CASES.c.state, func.count()).where(*wheres).group_by(CASES.c.state)
    order, direction, start, filters = rest.split(":")
    if kind != "case_page" or order not in PAGE_ORDERS:
        raise KeyError(name)
    wheres = [_PAGE_FILTERS[f]() for f in filters.split(",") if f]
    column, ident = CASES.c[order], CASES.c.id
    descending = direction == "desc"
    if start == "after":
        beyond: Callable[[Any, Any], Any] = operator.lt if descending else operator.gt
        if order == "id":
            wheres.append(beyond(ident, bindparam("after_id")))
        else:
            # a row value, not ``key > k OR (key = k AND id > i)``: both databases take the row
            # comparison as a range of the index (organisation, key, id) and start reading at the
            # position; the OR was a filter on every entry of the organisation before it
            # (PostgreSQL: a page half-way down 100k cases went from 2.5 to 17 ms; bench/worklists.py)
            key = bindparam("after_key", type_=column.type)
            wheres.append(beyond(tuple_(column, ident), tuple_(key, bindparam("after_id"))))
    keys = [column.desc(), ident.desc()] if descending else [column, ident]
    if order == "id":
        keys = keys[1:]
    return select(CASES).where(*wheres).order_by(*keys).limit(bindparam("limit"))
