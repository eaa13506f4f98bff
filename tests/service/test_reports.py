"""Reports on every backend, over the hand-computed dataset of tests/report_data.py."""

from __future__ import annotations

import pytest

from tests.conftest import BACKENDS, CONSULTANT, T0
from tests.report_data import build
from workflow import CaseService, FixedClock
from workflow.errors import ValidationError
from workflow.service import reports
from workflow.service.reports import Reports, period


def report(service: CaseService, first: str = "2026-11-01", last: str = "2026-12-31", **kw):  # type: ignore[no-untyped-def]
    return Reports(service.runtime).summary(kw.get("organisation"), kw.get("route"),
                                            period(first, last, service.clock.now()))  # fmt: skip


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_every_figure_as_worked_out_by_hand(service: CaseService, clock: FixedClock) -> None:
    build(service, clock)
    found = report(service)
    royal = found.route("royal-doctors").as_dict()
    assert royal["advice_returned"] == 3
    # lead time: 10, 11, 28 calendar days; 8, 9, 20 working days on nl-business
    assert royal["lead_time"] == {"calendar_days": {"n": 3, "median": 11.0, "p90": 24.6},
                                  "working_days": {"n": 3, "median": 9.0, "p90": 17.8}, "calendar": "nl-business"}
    (term,) = royal["dossier_to_report"]
    assert term == {
        "policy": "royal-doctors-report", "term_working_days": 18, "calendar": "nl-business",
        "calendar_days": {"n": 3, "median": 10.0, "p90": 24.4},  # 10, 10, 28
        "working_days": {"n": 3, "median": 8.0, "p90": 17.6},  # 8, 8, 20 elapsed
        "counted_working_days": {"n": 3, "median": 8.0, "p90": 17.6},  # 8, 5 (B's pause left out), 20
        "within_term": 2,
    }  # fmt: skip
    assert royal["deadlines"] == {"met": 2, "breached": 1, "share_on_time": 0.6667}
    assert royal["breaches_per_month"] == {"2026-11": 0, "2026-12": 1}
    assert royal["cases_per_state"]["advice_returned"] == 3 and sum(royal["cases_per_state"].values()) == 3

    domestic = found.route("domestic").as_dict()
    assert domestic["advice_returned"] == 0 and domestic["lead_time"]["calendar_days"] == {
        "n": 0, "median": None, "p90": None}  # an open case contributes nothing to lead time  # fmt: skip
    assert domestic["lead_time"]["calendar"] == "nl-atw" and domestic["dossier_to_report"] == []
    assert domestic["deadlines"] == {"met": 0, "breached": 1, "share_on_time": 0.0}
    assert domestic["breaches_per_month"] == {"2026-11": 0, "2026-12": 1}
    assert domestic["cases_per_state"]["referred"] == 1

    online = found.route("online").as_dict()  # no deadline policy: no working days, no share
    assert online["lead_time"]["working_days"] is None and online["deadlines"]["share_on_time"] is None


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_the_period_chooses_the_cases_that_finished_in_it(service: CaseService, clock: FixedClock) -> None:
    build(service, clock)
    # from 4 December: B (4 Dec) and C (21 Dec) finished; A (3 Dec) did not in this period
    later = report(service, "2026-12-04", "2026-12-31", route="royal-doctors")
    assert [r.route for r in later.routes] == ["royal-doctors"]
    royal = later.route("royal-doctors")
    assert royal.advice_returned == 2 and royal.lead_time_calendar_days.median == 19.5  # (11 + 28) / 2
    assert (royal.deadlines_met, royal.deadlines_breached) == (1, 1)
    # November only: nothing finished and nothing was decided; the cases are still counted by state
    november = report(service, "2026-11-01", "2026-11-30").route("royal-doctors")
    assert november.advice_returned == 0 and november.share_on_time is None
    assert november.breaches_per_month == {"2026-11": 0}
    assert november.cases_per_state["advice_returned"] == 3  # cases per state are now, not in the period


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_a_report_is_scoped_to_one_organisation(service: CaseService, clock: FixedClock) -> None:
    build(service, clock)  # every case is in "local"
    service.open_case("PX-O1", actor=CONSULTANT, route="royal-doctors", organisation="org-b")
    other = report(service, organisation="org-b").route("royal-doctors")
    assert other.advice_returned == 0 and other.cases_per_state["requested"] == 1
    assert sum(other.cases_per_state.values()) == 1
    assert report(service, organisation="local").route("royal-doctors").advice_returned == 3
    assert sum(report(service).route("royal-doctors").cases_per_state.values()) == 4  # the operator: all


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_reads_go_in_bounded_batches(service: CaseService, clock: FixedClock, monkeypatch: pytest.MonkeyPatch) -> None:
    build(service, clock)
    whole = report(service).as_dict()
    monkeypatch.setattr(reports, "BATCH", 1)  # one case per for_cases read: the same figures
    assert report(service).as_dict() == whole


def test_bad_route_and_organisation_are_refused(service: CaseService) -> None:
    span = period("2026-11-01", "2026-11-30", T0)
    with pytest.raises(ValidationError, match="route"):
        Reports(service.runtime).summary(None, "nowhere", span)
    with pytest.raises(ValidationError, match="organisation"):
        Reports(service.runtime).summary("a b;c", None, span)
