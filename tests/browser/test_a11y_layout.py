"""The web desk's layout at 1280x800, on a tablet (768x1024 upright, 1024x768 on its side, as a
touch device), at WCAG 1.4.10's reflow width of 320 px and at 200 % zoom (WCAG 1.4.4: 640x400),
in English and in Dutch (the longer words), for every main page; at 1280x800 and 768x1024 also
with WCAG 1.4.12's text spacing (line height 1.5, letter .12em, word .16em, paragraphs 2em):

* the page never scrolls sideways (``scrollWidth <= clientWidth``) and no element reaches past
  the viewport's right edge unless it is inside a region that scrolls on its own (WCAG 1.4.10);
* each such region (a wide table) is labelled, has a role (region, or group inside a section that
  is already the region of its name) and is reachable by Tab (tabindex=0), so a keyboard user
  can scroll it (WCAG 2.1.1);
* every pointer target is at least 24x24 CSS px (WCAG 2.5.8; see :func:`a11y.small_targets`);
* no text is cut off by an element that hides its overflow.

The viewport is set through DevTools' device metrics, exact to the pixel. The test first plants a
too-wide block, a 10 px button and clipped text and asserts each is reported. One test, one
server, one browser."""

from __future__ import annotations

from typing import Any

from selenium.webdriver.common.by import By

from .a11y import SIZES, TOUCH, fill, overflow, pages, small_targets, text_spacing
from .harness import Site, sign_in, sign_out, viewport

LANGUAGES = ("en", "nl")

REGIONS = """
    return [...document.querySelectorAll('.scroll')].map(e => ({
        role: e.getAttribute('role'), tabindex: e.getAttribute('tabindex'),
        label: e.getAttribute('aria-label') ||
               (document.getElementById(e.getAttribute('aria-labelledby') || '') || {}).textContent || ''}));
"""


def problems_here(driver: Any) -> dict[str, Any]:
    fit = overflow(driver)
    found: dict[str, Any] = {}
    if fit["scrollWidth"] > fit["clientWidth"]:
        found["scrolls sideways"] = (fit["scrollWidth"], fit["clientWidth"])
    if fit["wide"]:
        found["past the right edge"] = fit["wide"]
    if fit["clipped"]:
        found["text cut off"] = fit["clipped"]
    if small := small_targets(driver):
        found["targets under 24x24"] = small
    regions = driver.execute_script(REGIONS)
    if bad := [r for r in regions if r["role"] not in ("region", "group") or r["tabindex"] != "0"
               or not r["label"].strip()]:  # fmt: skip
        found["scroll regions without role, label or tabindex"] = bad
    return found


def planted_faults_are_reported(site: Site, driver: Any) -> None:
    sign_in(driver, site, "consultant")
    viewport(driver, *SIZES["tablet-portrait"], touch=True)
    assert problems_here(driver) == {}
    driver.execute_script("""
        const main = document.querySelector('main');
        const wide = document.createElement('div'); wide.style.width = '1500px'; wide.textContent = 'wide';
        const tiny = document.createElement('button'); tiny.textContent = 'x';
        tiny.style.cssText = 'width:10px;height:10px;padding:0;font-size:6px';
        const cut = document.createElement('p'); cut.textContent = 'a sentence too long for its box '.repeat(5);
        cut.style.cssText = 'width:60px;height:1em;overflow:hidden';
        main.append(wide, tiny, cut);
    """)
    found = problems_here(driver)
    assert set(found) == {"scrolls sideways", "past the right edge", "targets under 24x24", "text cut off"}, found
    text_spacing(driver, True)  # the reader's spacing takes hold, and comes off again
    spacing = "return getComputedStyle(document.querySelector('h1')).letterSpacing"
    assert driver.execute_script(spacing) not in ("normal", "0px")
    text_spacing(driver, False)
    assert driver.execute_script(spacing) in ("normal", "0px")
    sign_out(driver)


def test_every_main_page_fits_desktop_and_tablet_in_english_and_dutch(site: Site, driver: Any) -> None:
    planted_faults_are_reported(site, driver)
    cases = fill(site)
    problems: dict[str, Any] = {}
    measured = 0
    for lang in LANGUAGES:
        driver.get(f"{site.base}/ui/language/{lang}?next=/ui/sign-in")
        shown = {"sign-in": (None, "/ui/sign-in"), **pages(cases)}
        signed_in = None
        for name, (who, path) in shown.items():
            if who != signed_in:
                if signed_in:
                    sign_out(driver)
                if who:
                    sign_in(driver, site, who)
                signed_in = who
            driver.get(site.base + path)
            assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == lang, name
            for size, (width, height) in SIZES.items():
                viewport(driver, width, height, touch=size in TOUCH)
                assert driver.execute_script("return document.documentElement.clientWidth") == width
                if found := problems_here(driver):
                    problems[f"{name} {lang} {size}"] = found
                measured += 1
                if size in ("desktop", "tablet-portrait"):  # a reader's wider text spacing: nothing lost
                    text_spacing(driver, True)
                    if found := problems_here(driver):
                        problems[f"{name} {lang} {size} text spacing"] = found
                    text_spacing(driver, False)
        sign_out(driver)
    viewport(driver, *SIZES["desktop"])
    assert measured == len(LANGUAGES) * len(SIZES) * (1 + len(pages(cases)))
    assert problems == {}
