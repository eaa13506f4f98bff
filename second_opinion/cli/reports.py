"""The ``report`` command: figures per route over a period (docs/reports.md); registered in
:mod:`second_opinion.cli.root`.

The command line is the operator's: it reads every organisation's cases unless ``--org`` names
one (the API's ``GET /reports/summary`` is always scoped to the caller's organisation and logged).
Same conventions as every command: user errors print one line on stderr and exit 1.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from workflow.errors import ValidationError
from workflow.service.reports import Report, Reports, period

from .. import render
from ..labels import Words
from ..reporting import CHARTS, chart, report_csv, report_json
from .common import Db, Json, Lang, emit, guard, open_service, words

Route = Annotated[str | None, typer.Option("--route", help="Only this route (default: every route).")]
From = Annotated[str | None, typer.Option("--from", help="First day, YYYY-MM-DD in Europe/Amsterdam (default: "
                                          "the first of the month eleven months ago).")]  # fmt: skip
To = Annotated[str | None, typer.Option("--to", help="Last day, YYYY-MM-DD in Europe/Amsterdam (default: today).")]
Org = Annotated[str | None, typer.Option("--org", help="Only this organisation's cases (default: all).")]
Csv = Annotated[bool, typer.Option("--csv", help="Print the figures as CSV.")]
Svg = Annotated[str | None, typer.Option("--svg", help=f"Print one chart as SVG: {', '.join(CHARTS)}.")]


def report_command(
    route: Route = None,
    first: From = None,
    last: To = None,
    org: Org = None,
    as_csv: Csv = False,
    svg: Svg = None,
    db: Db = None,
    as_json: Json = False,
    lang: Lang = None,
) -> None:
    """Lead time, complete dossier to report, share on time, breaches per month and cases per state."""
    with guard(as_json):
        if sum((as_json, as_csv, svg is not None)) > 1:
            raise ValidationError("output", "give at most one of --json, --csv and --svg")
        if svg is not None and svg not in CHARTS:
            raise ValidationError("--svg", f"not one of the charts: {', '.join(CHARTS)}")
        with open_service(db) as service:
            found = Reports(service.runtime).summary(org, route, period(first, last, service.clock.now()))
        if as_csv:
            sys.stdout.write(report_csv(found))
        elif svg is not None:
            sys.stdout.write(chart(found, svg))
        else:
            emit(as_json, report_json(found), lambda: report_table(found, words(lang)))


def report_table(report: Report, w: Words | None = None) -> object:
    """The figures as a table a person reads (every value the JSON holds, per route); the CSV and
    the JSON keep their English column names in every language."""
    w = w or Words()
    t = w.t
    data = report.as_dict()
    caption = t("percentiles: linear interpolation; d: calendar days, wd: working days")
    title = t("Report %(from)s to %(to)s (Europe/Amsterdam)") % {"from": data["from"], "to": data["to"]}
    table = render.new_table(title=title, caption=caption)
    for column in (t("route"), t("advice"), t("lead time d (median/p90)"), t("lead time wd"),
                   t("dossier to report wd"), t("on time"), t("breaches"), t("cases now")):  # fmt: skip
        table.add_column(column)
    for r in report.routes:
        cal, wd = r.lead_time_calendar_days, r.lead_time_working_days
        terms = "; ".join(f"{_pair(d.counted_working_days.median, d.counted_working_days.p90)} " + t(
            "(%(within)s/%(n)s within %(term)s)") % {"within": d.within_term, "n": d.counted_working_days.n,
                                                      "term": d.term_working_days}
                          for d in r.dossier_to_report) or "-"  # fmt: skip
        share, decided = r.share_on_time, r.deadlines_met + r.deadlines_breached
        table.add_row(
            w.route(r.route), str(r.advice_returned), _pair(cal.median, cal.p90),
            "-" if wd is None else _pair(wd.median, wd.p90),
            terms, "-" if share is None else f"{100 * share:.1f}% ({r.deadlines_met}/{decided})",
            str(sum(r.breaches_per_month.values())), str(sum(r.cases_per_state.values())),
        )  # fmt: skip
    return table


def _pair(median: float | None, p90: float | None) -> str:
    return "-" if median is None or p90 is None else f"{median:.1f} / {p90:.1f}"
