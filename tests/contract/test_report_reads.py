"""The named query behind reports, on every backend: transitions of one event in a window of time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.conftest import BACKENDS, T0
from tests.report_data import AT_END, build
from workflow import CaseService, FixedClock


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_transitions_of_an_event_in_a_window(service: CaseService, clock: FixedClock) -> None:
    """The named query behind the report: half-open window, by occurred_at then case id."""
    ids = build(service, clock)
    with service.runtime.uow(False) as uow:
        returned = uow.transitions.of_event_between("return_advice", T0, AT_END)
        assert [t.case_id for t in returned] == [ids["A"], ids["B"], ids["C"]]
        assert all(t.occurred_at.tzinfo is not None for t in returned)
        a_at = returned[0].occurred_at
        # from is included, until excluded
        assert [t.case_id for t in uow.transitions.of_event_between("return_advice", a_at, returned[1].occurred_at)] \
            == [ids["A"]]  # fmt: skip
        assert uow.transitions.of_event_between("return_advice", T0, a_at) == []
        dossiers = uow.transitions.of_event_between("receive_dossier", T0, datetime(2026, 11, 24, tzinfo=UTC))
        assert sorted(t.case_id for t in dossiers) == sorted([ids["A"], ids["C"]])
        assert uow.transitions.of_event_between("no_such_event", T0, AT_END) == []


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_deadlines_of_many_cases_read_lazily_are_the_same(service: CaseService, clock: FixedClock) -> None:
    ids = sorted(build(service, clock).values())
    with service.runtime.uow(False) as uow:
        eager, lazy = uow.deadlines.for_cases(ids), uow.deadlines.for_cases(ids, lazy=True)
        for case_id in ids:
            assert lazy.of(case_id) == eager.of(case_id) and eager.of(case_id)
            assert [dict(d.explanation) for d in lazy.of(case_id)] == [dict(d.explanation) for d in eager.of(case_id)]
