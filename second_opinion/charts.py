"""Small SVG charts drawn on the server: a bar chart, a range chart (median and p90) and a line chart.

Hand-written on purpose. Nothing in our dependencies draws a chart without a browser; matplotlib
would add tens of megabytes (numpy, a font cache, a rendering backend) for a few rectangles.
Of the small pure-Python libraries on PyPI, pygal (LGPL-3) points its SVGs at a tooltip script on
kozea.github.io unless told otherwise and carries a style system we would have to audit for
contrast; leather (MIT) is small but sparsely maintained and has no ``<title>``/``<desc>``
of its own; drawsvg draws shapes, not charts, so the layout would still be ours. What we need is a
few hundred lines whose every output byte we can test: so they are here.

Every chart is one self-contained SVG document: no script, no external font, stylesheet or host
(the text uses the reader's own ``sans-serif``), ``role="img"`` with a ``<title>`` and a
``<desc>`` (``aria-labelledby``) and a text label beside each mark, so that a screen reader and
a reader who cannot tell the colours apart get every figure. Colours are dark enough for WCAG 2.1
AA text contrast (4.5:1) against the white background (:data:`PALETTE`, checked by a test).
Every text, labels and titles included, is XML-escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

BACKGROUND = "#ffffff"
INK = "#1a1a1a"
"""Text and axes."""
GRID = "#6e6e6e"
PALETTE = ("#1f5fa8", "#a8321e", "#2e6b30", "#6b3fa0", "#8a5a00")
"""Series colours, each at least 4.5:1 against :data:`BACKGROUND`."""
FONT = "font-family=\"sans-serif\" font-size=\"13\""
WIDTH = 720
LABEL_WIDTH = 190
ROW = 30
TOP = 56
BOTTOM = 40


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


def _text(x: float, y: float, text: str, *, anchor: str = "start", weight: str = "normal", fill: str = INK) -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-weight="{weight}" fill="{fill}">'
            f"{escape(text)}</text>")  # fmt: skip


def _document(ident: str, title: str, description: str, height: float, body: list[str]) -> str:
    t, d = f"{ident}-title", f"{ident}-desc"
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby={quoteattr(f"{t} {d}")} '
        f'width="{WIDTH}" height="{height:.0f}" viewBox="0 0 {WIDTH} {height:.0f}" {FONT}>',
        f"<title id={quoteattr(t)}>{escape(title)}</title>",
        f"<desc id={quoteattr(d)}>{escape(description)}</desc>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{height:.0f}" fill="{BACKGROUND}"/>',
        _text(16, 28, title, weight="bold"),
        *body,
        "</svg>",
    ]) + "\n"  # fmt: skip


def _scale_max(values: Sequence[float]) -> float:
    """A round upper end for an axis holding ``values`` (1, 2 or 5 times a power of ten)."""
    top = max(values, default=0.0)
    if all(float(v).is_integer() for v in values):  # counts: a whole number at each of the 5 gridlines
        return float(max(4, math.ceil(top / 4) * 4))
    if top <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(top))
    return float(next(m * power for m in (1, 2, 5, 10) if m * power >= top))


def _empty(ident: str, title: str, description: str) -> str:
    return _document(ident, title, description, TOP + ROW + BOTTOM, [_text(16, TOP + 16, "No data in this period.")])


def bar_chart(ident: str, title: str, description: str, bars: Sequence[tuple[str, float]], unit: str = "") -> str:
    """Horizontal bars, one per (label, value), the value written beside each bar."""
    if not bars:
        return _empty(ident, title, description)
    top = _scale_max([v for _, v in bars])
    span = WIDTH - LABEL_WIDTH - 90
    body = []
    for i, (label, value) in enumerate(bars):
        y = TOP + i * ROW
        length = span * max(value, 0) / top
        body += [
            _text(LABEL_WIDTH - 8, y + 18, label, anchor="end"),
            f'<rect x="{LABEL_WIDTH}" y="{y + 5}" width="{length:.1f}" height="{ROW - 10}" fill="{PALETTE[0]}"/>',
            _text(LABEL_WIDTH + length + 6, y + 18, f"{_num(value)}{unit}"),
        ]
    body.append(_axis(TOP + len(bars) * ROW, top, span, unit))
    return _document(ident, title, description, TOP + len(bars) * ROW + BOTTOM, body)


def _axis(y: float, top: float, span: float, unit: str) -> str:
    ticks = [f'<line x1="{LABEL_WIDTH}" y1="{y:.1f}" x2="{LABEL_WIDTH + span:.1f}" y2="{y:.1f}" stroke="{GRID}"/>']
    for k in range(5):
        x = LABEL_WIDTH + span * k / 4
        ticks.append(f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{x:.1f}" y2="{y + 5:.1f}" stroke="{GRID}"/>')
        ticks.append(_text(x, y + 20, f"{_num(top * k / 4)}{unit}", anchor="middle"))
    return "\n".join(ticks)


def range_chart(
    ident: str, title: str, description: str, rows: Sequence[tuple[str, float | None, float | None]],
    unit: str = "", marker: tuple[str, float] | None = None,
) -> str:  # fmt: skip
    """Per row a bar up to the 90th percentile with a dark tick at the median, both written out;
    ``marker`` draws a dashed line at a value (a term such as 18 working days), labelled."""
    shown = [(label, median, p90) for label, median, p90 in rows if median is not None and p90 is not None]
    if not shown:
        return _empty(ident, title, description)
    values = [p for _, _, p in shown if p is not None] + ([marker[1]] if marker else [])
    top = _scale_max(values)
    span = WIDTH - LABEL_WIDTH - 190
    beyond = 0.0 if marker is None else span * marker[1] / top  # the values are written past the marker
    body = []
    for i, (label, median, p90) in enumerate(shown):
        assert median is not None and p90 is not None
        y = TOP + i * ROW
        reach, mid = span * p90 / top, span * median / top
        body += [
            _text(LABEL_WIDTH - 8, y + 18, label, anchor="end"),
            f'<rect x="{LABEL_WIDTH}" y="{y + 7}" width="{reach:.1f}" height="{ROW - 14}" fill="{PALETTE[0]}"/>',
            f'<rect x="{LABEL_WIDTH + mid - 2:.1f}" y="{y + 2}" width="4" height="{ROW - 4}" fill="{PALETTE[1]}"/>',
            _text(LABEL_WIDTH + max(reach, mid, beyond) + 8, y + 18,
                  f"median {_num(median)}{unit}, p90 {_num(p90)}{unit}"),
        ]
    bottom = TOP + len(shown) * ROW
    if marker is not None:
        x = LABEL_WIDTH + span * marker[1] / top
        body += [f'<line x1="{x:.1f}" y1="{TOP - 4}" x2="{x:.1f}" y2="{bottom:.1f}" stroke="{PALETTE[2]}" '
                 f'stroke-width="2" stroke-dasharray="6 4"/>',
                 _text(x, TOP - 8, marker[0], anchor="middle", fill=PALETTE[2])]  # fmt: skip
    body.append(_axis(bottom, top, span, unit))
    legend = f"bar: up to the 90th percentile; tick: the median ({unit.strip() or 'value'})"
    body.append(_text(16, bottom + 36, legend))
    return _document(ident, title, description, bottom + BOTTOM + 20, body)


def line_chart(
    ident: str, title: str, description: str, x_labels: Sequence[str], series: Sequence[tuple[str, Sequence[float]]]
) -> str:
    """One line per series over ``x_labels`` (months), a dot and its value at each point; a legend
    names each series in its colour. Every point is also written out in the description's table."""
    if not x_labels or not series:
        return _empty(ident, title, description)
    top = _scale_max([v for _, values in series for v in values])
    left, plot_w, plot_h = 70, WIDTH - 120, 220
    step = plot_w / max(len(x_labels) - 1, 1)
    every = max(1, math.ceil(len(x_labels) / 12))  # at most 12 labels on the axis
    base = TOP + 20 + plot_h
    body = []
    for k in range(5):
        y = base - plot_h * k / 4
        body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="{GRID}" '
                    f'stroke-width="{1 if k == 0 else 0.5}"/>')  # fmt: skip
        body.append(_text(left - 8, y + 4, _num(top * k / 4), anchor="end"))
    for i, label in enumerate(x_labels):
        if i % every == 0:
            body.append(_text(left + i * step, base + 18, label, anchor="middle"))
    for n, (name, values) in enumerate(series):
        colour = PALETTE[n % len(PALETTE)]
        points = [(left + i * step, base - plot_h * v / top) for i, v in enumerate(values)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        body.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for (x, y), v in zip(points, values, strict=False):
            body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>')
            if v:
                body.append(_text(x, y - 6, _num(v), anchor="middle", fill=colour))
        body.append(_text(left + n * 170, base + 42, f"\u25a0 {name}", fill=colour))
    return _document(ident, title, description, base + 60, body)
