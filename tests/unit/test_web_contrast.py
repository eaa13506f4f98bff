"""The web desk's palette meets WCAG 2.1 AA: every text colour on every background it is used
on has a contrast ratio of at least 4.5:1, and the stylesheet uses no colour outside the palette."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CSS = (Path(__file__).resolve().parents[2] / "second_opinion" / "web" / "static" / "style.css").read_text()
PALETTE = dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-fA-F]{6})\s*;", CSS))
PAIRS = [
    ("ink", "paper"), ("ink", "panel"), ("muted", "paper"), ("muted", "panel"), ("accent", "paper"),
    ("accent", "panel"), ("accent-ink", "accent"), ("ok", "note-bg"), ("ok", "paper"), ("bad", "bad-bg"),
    ("bad", "paper"), ("ink", "bad-bg"),
]  # fmt: skip
"""(text, background) as the stylesheet combines them."""


def luminance(colour: str) -> float:
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def ratio(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_ratio_is_computed_as_wcag_does() -> None:
    assert ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert ratio("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)  # the well-known just-fails grey


@pytest.mark.parametrize(("text", "background"), PAIRS)
def test_text_on_background_is_at_least_4_5(text: str, background: str) -> None:
    assert ratio(PALETTE[text], PALETTE[background]) >= 4.5


NON_TEXT = [("focus", "paper"), ("focus", "panel"), ("muted", "paper"), ("muted", "panel"), ("accent", "panel")]
"""(mark, background) of WCAG 1.4.11 (non-text contrast, 3:1): the focus ring, drawn 2 px off the
control so that it lies on the page or on a card (never on the button's own colour); the border
of inputs, selects, textareas and fieldsets (muted); the header's rule (accent on panel)."""


def test_the_focus_ring_stands_out_at_3_to_1() -> None:
    assert ratio(PALETTE["focus"], PALETTE["paper"]) >= 3.0  # WCAG 1.4.11, non-text contrast


@pytest.mark.parametrize(("mark", "background"), NON_TEXT)
def test_focus_ring_and_control_borders_stand_out_at_3_to_1_where_drawn(mark: str, background: str) -> None:
    assert ratio(PALETTE[mark], PALETTE[background]) >= 3.0


def test_the_focus_ring_is_drawn_off_the_control_on_every_focusable_kind() -> None:
    """The ring lies beside the control (outline-offset), so its contrast is against the page
    or card (NON_TEXT), and every kind of control the desk has gets it, scroll regions included."""
    rule = re.search(r"([^{}]*):focus-visible\s*\{([^}]*)\}", CSS.replace("\n", " "))
    assert rule, "no :focus-visible rule"
    selectors, body = rule.group(0).split("{", 1)
    for kind in ("a", "button", "input", "select", "textarea", "summary", "main", ".scroll"):
        assert f"{kind}:focus-visible" in selectors, kind
    assert "outline:" in body and "var(--focus)" in body and "outline-offset: 2px" in body


def test_no_colour_outside_the_palette() -> None:
    body = CSS.split("}", 1)[1]  # after :root
    assert re.findall(r"#[0-9a-fA-F]{3,8}\b|rgba?\(|hsla?\(", body) == []
    assert set(PALETTE) >= {t for pair in PAIRS for t in pair}


def test_no_web_fonts_and_no_other_host() -> None:
    assert "@font-face" not in CSS and "@import" not in CSS and "url(" not in CSS
