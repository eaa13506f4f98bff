"""What the accessibility tests share: axe-core run inside the page, the sizes measured (set
exactly by :func:`harness.viewport`), the desk's main pages with the data that fills them, and
the measurements of the layout tests.

axe-core comes from the ``axe-core-python`` package (its ``axe.min.js``), injected with
``execute_script``: nothing is fetched, and the version is the package's, pinned by pip."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .harness import Site
from .screenshots import fire as api_fire
from .screenshots import open_case, populate

RULE_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice")
"""The axe-core tags of WCAG 2.0 and 2.1, levels A and AA (the rules of issue 16), and axe's
best practices (unique landmarks, heading order, one main, a page heading): they pass too, and
they catch a page that is compliant only on paper."""
SIZES = {
    "desktop": (1280, 800),
    "tablet-portrait": (768, 1024),
    "tablet-landscape": (1024, 768),
    "reflow-320": (320, 640),
    "zoom-200": (640, 400),
}
"""The viewports of issue 16 in CSS pixels; WCAG 1.4.10's reflow width (320 px: a phone, or
1280 px zoomed to 400 %), where the page still must not scroll sideways; and 1280x800 zoomed to
200 % (WCAG 1.4.4), which lays the page out as 640x400 does."""
TOUCH = ("tablet-portrait", "tablet-landscape", "reflow-320")
"""The sizes laid out as a touch device."""
TEXT_SPACING = (
    "* { line-height: 1.5 !important; letter-spacing: .12em !important; word-spacing: .16em !important; }"
    " p { margin-bottom: 2em !important; }"
)
"""WCAG 1.4.12's text spacing, as a reader's own stylesheet would set it: nothing may be lost."""
LONG_REF = "PX-" + "W" * 61
"""The longest patient reference the desk takes (64 characters), without a place to break."""
TARGET = 24
"""WCAG 2.5.8 (target size, minimum): a pointer target is at least 24 by 24 CSS pixels."""


def axe_script() -> str:
    import axe_core_python

    return (Path(axe_core_python.__file__).parent / "axe.min.js").read_text(encoding="utf-8")


def axe_violations(driver: Any, script: str) -> list[dict[str, Any]]:
    """axe-core's violations of the WCAG 2.x A/AA rules on the page shown, each cut to what a
    failing assertion needs to say (rule, impact, help and the first few elements)."""
    driver.execute_script(script)
    options = json.dumps({"runOnly": {"type": "tag", "values": list(RULE_TAGS)}, "resultTypes": ["violations"]})
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        f"axe.run(document, {options}).then(r => done(r.violations), e => done([{{id: 'axe-error', help: String(e), nodes: []}}]));"  # noqa: E501
    )
    return [
        {"id": v["id"], "impact": v.get("impact"), "help": v.get("help"),
         "nodes": [(n.get("target"), n.get("failureSummary")) for n in v.get("nodes", [])[:5]]}
        for v in result
    ]  # fmt: skip


@dataclass
class Cases:
    """The cases the pages are shown with: a dossier complete (checklist, deadline, forms), one
    just opened (many forms), one withdrawn (a terminal case, no forms), and one with the longest
    patient reference the desk takes (64 characters, unbroken) and a 1500-character unbroken
    reason in its timeline: what a real desk's data does to a layout tried on short words."""

    complete: str
    opened: str
    withdrawn: str
    long: str


def fill(site: Site) -> Cases:
    complete = populate(site)
    opened = open_case(site, "PX-A11Y-0001", "royal-doctors")
    withdrawn = open_case(site, "PX-A11Y-0002", "domestic")
    api_fire(site, "coordinator", withdrawn, "withdraw", reason="the patient's wish")
    long = open_case(site, LONG_REF, "royal-doctors")
    unticked = dict.fromkeys(("treated_abroad", "insured_abroad", "has_pathology", "has_imaging"), False)
    api_fire(site, "consultant", long, "record_circumstances", data=unticked, reason="R" * 1500)
    return Cases(complete, opened, withdrawn, long)


def pages(cases: Cases) -> dict[str, tuple[str, str]]:
    """Every main page of the desk: name -> (who signs in, path). ``None`` signs nobody in."""
    return {
        "board": ("consultant", "/ui/board"),
        "board-filtered": ("consultant", "/ui/board?route=royal-doctors&state=dossier_received"),
        "work": ("consultant", "/ui/work"),
        "search-form": ("consultant", "/ui/search"),
        "search-results": ("consultant", "/ui/search?patient_ref=PX-RD-0101"),
        "search-none": ("consultant", "/ui/search?patient_ref=PX-NOBODY"),
        "search-bad": ("consultant", "/ui/search?patient_ref=%21%21"),
        "case-complete": ("consultant", f"/ui/cases/{cases.complete}"),
        "case-opened": ("consultant", f"/ui/cases/{cases.opened}"),
        "case-withdrawn": ("consultant", f"/ui/cases/{cases.withdrawn}"),
        "case-doctor": ("doctor", f"/ui/cases/{cases.complete}"),
        "case-long": ("consultant", f"/ui/cases/{cases.long}"),
        "search-long": ("consultant", f"/ui/search?patient_ref={LONG_REF}"),
        "reports": ("coordinator", "/ui/reports"),
        "audit": ("auditor", "/ui/audit?verify=1"),
        "error-404": ("consultant", "/ui/cases/so-doesnotexist"),
        "error-403": ("consultant", "/ui/audit"),
        "error-422": ("consultant", "/ui/audit/export?format=xml"),
    }


def text_spacing(driver: Any, on: bool) -> None:
    """Put :data:`TEXT_SPACING` on the page shown (``on``), or take it off. A constructed
    stylesheet (CSSOM), not a ``<style>`` element: the desk's Content-Security-Policy refuses
    inline styles, as it should."""
    driver.execute_script(
        "const sheet = new CSSStyleSheet(); sheet.replaceSync(arguments[1]);"
        "document.adoptedStyleSheets = arguments[0] ? [sheet] : [];",
        on,
        TEXT_SPACING,
    )


def overflow(driver: Any) -> dict[str, Any]:
    """How the page fits its viewport: the document's scroll width against its client width,
    the elements wider than the viewport that are not inside a scrolling region, and the text
    elements whose content is cut (scroll size above client size with overflow hidden)."""
    found: dict[str, Any] = driver.execute_script("""
        const root = document.documentElement, width = root.clientWidth;
        const scrolls = el => { for (let e = el.parentElement; e; e = e.parentElement) {
            const o = getComputedStyle(e).overflowX; if (o === 'auto' || o === 'scroll') return true; } return false; };
        const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
            (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
        const wide = [], clipped = [];
        for (const el of document.body.querySelectorAll('*')) {
            const box = el.getBoundingClientRect();
            if (box.width === 0 || el.closest('.sr, .skip')) continue;
            if (box.right > width + 1 && !scrolls(el)) wide.push(name(el) + ' right=' + Math.round(box.right));
            const style = getComputedStyle(el);
            if (style.overflow !== 'visible' && !['auto', 'scroll'].includes(style.overflowX) &&
                el.textContent.trim() && (el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1)
                && !['INPUT', 'SELECT', 'TEXTAREA', 'svg'].includes(el.tagName) && el.clientWidth > 0)
                clipped.push(name(el));
        }
        return {scrollWidth: root.scrollWidth, clientWidth: width,
                wide: wide.slice(0, 10), clipped: clipped.slice(0, 10)};
    """)
    return found


def small_targets(driver: Any) -> list[str]:
    """Pointer targets (links, buttons, form controls, summaries, focusable regions) smaller than
    24x24 CSS px. Stricter than WCAG 2.5.8, which also lets a smaller target pass when it sits in
    a sentence or has 24 px of room around it: the desk has no such target, and on a tablet a
    finger is happier without them."""
    small: list[str] = driver.execute_script(f"""
        const sel = 'a[href], button, input:not([type=hidden]), select, textarea, summary, ' +
                    '[tabindex]:not([tabindex="-1"])';
        return [...document.querySelectorAll(sel)]
            .filter(e => e.getClientRects().length && !e.closest('.sr'))
            .map(e => [e, e.getBoundingClientRect()])
            .filter(([e, b]) => b.width < {TARGET} || b.height < {TARGET})
            .map(([e, b]) => e.outerHTML.slice(0, 80) + ' ' + Math.round(b.width) + 'x' + Math.round(b.height));
    """)
    return small
