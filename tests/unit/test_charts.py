"""The SVG charts and the CSV of a report: well-formed, labelled, escaped, readable in contrast."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from second_opinion import charts
from second_opinion.reporting import CHARTS, chart, report_csv
from workflow.errors import ValidationError
from workflow.service.report_figures import Spread
from workflow.service.reports import Period, Report, RouteFigures, TermFigures

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '<b>"x" & \'y\'</b>]]>'


def parse(document: str) -> ET.Element:
    root = ET.fromstring(document)
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title is not None and desc is not None
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    return root


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def luminance(colour: str) -> float:
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(int(colour[i : i + 2], 16) / 255) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_contrast_formula_on_known_pairs() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)  # the classic AA grey


def test_every_colour_meets_wcag_aa_against_the_background() -> None:
    for colour in (*charts.PALETTE, charts.INK):
        assert contrast(colour, charts.BACKGROUND) >= 4.5, colour  # text in that colour: AA
    assert contrast(charts.GRID, charts.BACKGROUND) >= 3.0  # graphical objects: 3:1 (WCAG 1.4.11)


def test_bar_chart_labels_every_bar_and_escapes_every_text() -> None:
    root = parse(charts.bar_chart("x", f"Title {HOSTILE}", f"About {HOSTILE}", [(HOSTILE, 3.0), ("two", 1.5)], "%"))
    assert root.find(f"{SVG}title").text == f"Title {HOSTILE}"  # type: ignore[union-attr]
    assert root.find(f"{SVG}desc").text == f"About {HOSTILE}"  # type: ignore[union-attr]
    assert HOSTILE in texts(root) and "two" in texts(root) and "3%" in texts(root) and "1.5%" in texts(root)
    assert len(root.findall(f"{SVG}rect")) == 1 + 2  # the background and one bar each


def test_no_script_no_external_reference() -> None:
    document = charts.line_chart("l", "t", "d", ["2026-01", "2026-02"], [("a", [1.0, 2.0]), ("b", [0.0, 4.0])])
    parse(document)
    assert "<script" not in document and "href" not in document and "@import" not in document
    assert document.count("http") == 1  # the SVG namespace only: no host is ever asked for anything


def test_range_chart_writes_median_p90_and_the_term() -> None:
    root = parse(charts.range_chart("r", "t", "d", [("royal-doctors", 8.0, 17.6), ("none", None, None)], " wd",
                                    ("term 18 wd", 18.0)))  # fmt: skip
    words = texts(root)
    assert "median 8 wd, p90 17.6 wd" in words and "term 18 wd" in words and "royal-doctors" in words
    assert "none" not in words  # a row without values is left out (its absence is in the description)


def test_empty_charts_say_so() -> None:
    for document in (charts.bar_chart("e", "t", "d", []), charts.range_chart("e", "t", "d", []),
                     charts.line_chart("e", "t", "d", [], [])):  # fmt: skip
        assert "No data in this period." in texts(parse(document))


def test_axis_ends_are_round() -> None:
    assert charts._scale_max([3.0, 1.0]) == 4.0  # counts: whole numbers at the gridlines
    assert charts._scale_max([9.0]) == 12.0
    assert charts._scale_max([66.7]) == 100.0
    assert charts._scale_max([0.3]) == 0.5
    assert charts._scale_max([]) == 4.0


def small_report(organisation: str | None = None) -> Report:
    spread = Spread.of([10.0, 11.0, 28.0])
    term = TermFigures("royal-doctors-report", 18, "nl-business", spread, spread, Spread.of([5.0, 8.0, 20.0]), 2)
    route = RouteFigures("royal-doctors", 3, spread, spread, "nl-business", (term,), 2, 1,
                         {"2026-11": 0, "2026-12": 1}, {"requested": 1, "advice_returned": 3})  # fmt: skip
    return Report(Period(date(2026, 11, 1), date(2026, 12, 31)), datetime(2026, 12, 21, tzinfo=UTC), organisation,
                  (route,))  # fmt: skip


@pytest.mark.parametrize("name", sorted(CHARTS))
def test_every_named_chart_parses_and_describes_its_figures(name: str) -> None:
    root = parse(chart(small_report(), name))
    description = root.find(f"{SVG}desc").text or ""  # type: ignore[union-attr]
    assert "2026-11-01 to 2026-12-31 (Europe/Amsterdam)" in description or name == "cases-per-state"
    assert "royal-doctors" in description or name == "cases-per-state"


def test_unknown_chart() -> None:
    with pytest.raises(ValidationError, match="not one of the charts: lead-time"):
        chart(small_report(), "pie")


def test_csv_is_long_form_and_formula_safe() -> None:
    text = report_csv(small_report())
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["figure", "route", "key", "value"]
    assert ["lead_time_calendar_days", "royal-doctors", "median", "11.0"] in rows
    assert ["dossier_to_report_counted_working_days", "royal-doctors", "p90", "17.6"] in rows
    assert ["deadlines", "royal-doctors", "share_on_time", "0.6667"] in rows
    assert ["cases_per_state", "royal-doctors", "advice_returned", "3"] in rows
    # a cell a spreadsheet would run as a formula gets its leading quote (render.csv_field)
    hostile = report_csv(replace(small_report(), organisation="=HYPERLINK(\"x\")"))
    assert 'period,,organisation,"\'=HYPERLINK(""x"")"' in hostile.splitlines()
