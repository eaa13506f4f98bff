"""The work lists' reads over SQL (:meth:`~workflow.ports.CaseRepository.page` and ``counts``),
and the derived columns of the case row they read, kept in step by the repositories."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from workflow.cases.case import Case
from workflow.listing import CaseFilter, Listed, ListedCases, Position, assignee_of, provider_of

from . import codec
from .worklist_statements import BOARD_FILTERS, board_counts, case_counts, case_page

_TIMES = frozenset({"updated_since", "due_before", "due_from", "due_to", "after_key"})


def derived(case: Case) -> dict[str, Any]:
    """The columns the case row derives from the case's facts, for the lists' filters."""
    return {"provider": provider_of(case.facts), "assignee": assignee_of(case.facts)}


def bounded(run: Any, value: datetime) -> Any:
    """A moment as the driver takes it; one past either end of UTC is clamped to that end."""
    try:
        return run.compiled.ts_in(value)
    except OverflowError:
        end = datetime.min if value.year == datetime.min.year else datetime.max
        return run.compiled.ts_in(end.replace(tzinfo=UTC))


def _values(run: Any, where: CaseFilter) -> tuple[list[str], dict[str, Any]]:
    given = where.given()
    dated = given.pop("dated", None)
    names = list(given)
    if dated is not None:
        names.append("dated" if dated else "undated")
    values = {k: bounded(run, v) if k in _TIMES else v for k, v in given.items()}
    return names, values


def page(
    run: Any, where: CaseFilter, order: str, *, descending: bool, after: Position | None, limit: int
) -> ListedCases:
    if order == "due_at":
        where = CaseFilter(**{**where.__dict__, "dated": True})
    names, values = _values(run, where)
    if after is not None:
        values["after_id"] = after.case_id
        if order != "id":
            if after.key is None:
                return []  # no dated row follows an undated position
            values["after_key"] = bounded(run, after.key)
    values["limit"] = limit
    reader, rows = run.read(case_page(names, order, descending, after is not None), values, codec.CASES)
    if not rows:
        return []
    at = [d[0] for d in run.cursor.description].index("due_at")
    ts_out = run.compiled.codec.ts_out
    return [Listed(reader.one(raw), None if raw[at] is None else ts_out(raw[at])) for raw in rows]


def counts(run: Any, where: CaseFilter) -> dict[str, int]:
    """Cases per state: a board's filters (organisation, and route or state) read the counts the
    triggers keep (``case_counts``); any other filter counts the matching cases."""
    names, values = _values(run, where)
    statement = board_counts(names) if "organisation" in names and set(names) <= BOARD_FILTERS else case_counts(names)
    return {str(state): int(n) for state, n in run.run(statement, values).fetchall()}
