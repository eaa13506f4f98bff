"""A report as the outside world gets it: JSON, CSV and the named SVG charts.

The one place the CLI, the API and the web desk turn a :class:`~workflow.service.reports.Report`
into something to show: :func:`report_json`, :func:`report_csv` (every cell through
:func:`second_opinion.render.csv_field`, so no cell opens as a formula) and :func:`chart` by one
of :data:`CHARTS`. A report holds counts and spreads only; nothing here adds a case or a patient.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from workflow.errors import ValidationError
from workflow.service.report_figures import Spread
from workflow.service.reports import Report

from . import charts
from .render import csv_field

CSV_COLUMNS = ("figure", "route", "key", "value")
MEDIA_CSV = "text/csv; charset=utf-8"
MEDIA_SVG = "image/svg+xml"


def report_json(report: Report) -> dict[str, Any]:
    return report.as_dict()


def _spread_rows(figure: str, route: str, spread: Spread) -> Iterator[tuple[str, str, str, Any]]:
    yield figure, route, "n", spread.n
    yield figure, route, "median", spread.as_dict()["median"]
    yield figure, route, "p90", spread.as_dict()["p90"]


def csv_rows(report: Report) -> Iterator[tuple[str, str, str, Any]]:
    """The report in long form: (figure, route, key, value), one figure per row."""
    data = report.as_dict()
    for key in ("from", "to", "timezone", "generated_at", "organisation", "percentile_method"):
        yield "period", "", key, data[key]
    for r in report.routes:
        yield "advice_returned", r.route, "count", r.advice_returned
        yield from _spread_rows("lead_time_calendar_days", r.route, r.lead_time_calendar_days)
        if r.lead_time_working_days is not None:
            yield "lead_time_working_days", r.route, "calendar", r.calendar
            yield from _spread_rows("lead_time_working_days", r.route, r.lead_time_working_days)
        for t in r.dossier_to_report:
            yield "dossier_to_report", r.route, "policy", t.policy
            yield "dossier_to_report", r.route, "term_working_days", t.term_working_days
            yield from _spread_rows("dossier_to_report_calendar_days", r.route, t.calendar_days)
            yield from _spread_rows("dossier_to_report_working_days", r.route, t.working_days)
            yield from _spread_rows("dossier_to_report_counted_working_days", r.route, t.counted_working_days)
            yield "dossier_to_report", r.route, "within_term", t.within_term
        share = r.share_on_time
        yield "deadlines", r.route, "met", r.deadlines_met
        yield "deadlines", r.route, "breached", r.deadlines_breached
        yield "deadlines", r.route, "share_on_time", None if share is None else round(share, 4)
        for month, count in r.breaches_per_month.items():
            yield "breaches_per_month", r.route, month, count
        for state, count in r.cases_per_state.items():
            yield "cases_per_state", r.route, state, count


def report_csv(report: Report) -> str:
    lines = [",".join(CSV_COLUMNS)]
    lines += [",".join(csv_field(cell) for cell in row) for row in csv_rows(report)]
    return "".join(line + "\n" for line in lines)


def _period(report: Report) -> str:
    return f"{report.period.first.isoformat()} to {report.period.last.isoformat()} (Europe/Amsterdam)"


def _lead_time(report: Report) -> str:
    rows, parts = [], []
    for r in report.routes:
        s = r.lead_time_calendar_days
        rows.append((f"{r.route} (n={s.n})", s.median, s.p90))
        known = s.median is not None and s.p90 is not None
        figures = f"median {s.median:.1f}, p90 {s.p90:.1f} days, {s.n} cases" if known else "no advice returned"
        parts.append(f"{r.route}: {figures}")
    description = f"Calendar days from request to advice returned, {_period(report)}. " + "; ".join(parts) + "."
    return charts.range_chart("lead-time", "Lead time: request to advice", description, rows, " d")


def _dossier_to_report(report: Report) -> str:
    rows, parts, term = [], [], None
    for r in report.routes:
        for t in r.dossier_to_report:
            s = t.counted_working_days
            term = t.term_working_days
            rows.append((f"{r.route} (n={s.n})", s.median, s.p90))
            parts.append(f"{r.route}: " + (f"median {s.median:.1f}, p90 {s.p90:.1f} working days, {t.within_term} of "
                                           f"{s.n} within {term}" if s.median is not None and s.p90 is not None
                                           else "no report in this period"))  # fmt: skip
    description = (f"Working days the report deadline ran (pauses left out), complete dossier to report, "
                   f"{_period(report)}. " + ("; ".join(parts) or "No route has such a term") + ".")  # fmt: skip
    marker = None if term is None else (f"term {term} wd", float(term))
    return charts.range_chart("dossier-to-report", "Complete dossier to report", description, rows, " wd", marker)


def _on_time(report: Report) -> str:
    bars, parts = [], []
    for r in report.routes:
        share = r.share_on_time
        decided = r.deadlines_met + r.deadlines_breached
        if share is not None:
            bars.append((f"{r.route} ({r.deadlines_met}/{decided})", round(100 * share, 1)))
        parts.append(f"{r.route}: " + (f"{100 * share:.1f}% on time, {r.deadlines_met} met, {r.deadlines_breached} "
                                       "breached" if share is not None else "no deadline decided"))  # fmt: skip
    description = f"Share of deadlines met before they fell due, {_period(report)}. " + "; ".join(parts) + "."
    return charts.bar_chart("on-time", "Deadlines met on time", description, bars, "%")


def _breaches(report: Report) -> str:
    months = report.period.months
    series = [(r.route, [float(r.breaches_per_month.get(m, 0)) for m in months]) for r in report.routes]
    totals = [f"{r.route}: {sum(r.breaches_per_month.values())}" for r in report.routes]
    detail = "; ".join(f"{m}: {sum(int(r.breaches_per_month.get(m, 0)) for r in report.routes)}" for m in months)
    description = (f"Deadline breaches per month (by the month the deadline fell due), {_period(report)}. "
                   f"Totals {', '.join(totals)}. All routes by month: {detail}.")  # fmt: skip
    return charts.line_chart("breaches-per-month", "Breaches per month", description, months, series)


def _states(report: Report) -> str:
    counts: dict[str, int] = {}
    for r in report.routes:
        for state, n in r.cases_per_state.items():
            counts[state] = counts.get(state, 0) + n
    bars = [(state, float(n)) for state, n in counts.items()]
    description = "Cases per state now, all routes of the report: " + ", ".join(f"{s} {n}" for s, n in counts.items())
    return charts.bar_chart("cases-per-state", "Cases per state (now)", description + ".", bars)


CHARTS: dict[str, Callable[[Report], str]] = {
    "lead-time": _lead_time,
    "dossier-to-report": _dossier_to_report,
    "on-time": _on_time,
    "breaches-per-month": _breaches,
    "cases-per-state": _states,
}
"""The charts by name, as ``GET /reports/charts/{name}.svg`` and ``report --svg NAME`` know them."""


def chart(report: Report, name: str) -> str:
    """The SVG document of chart ``name`` (one of :data:`CHARTS`)."""
    draw = CHARTS.get(name)
    if draw is None:
        raise ValidationError("chart", f"not one of the charts: {', '.join(CHARTS)}")
    return draw(report)
