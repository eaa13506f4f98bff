"""Every main page of the web desk, rendered by Chromium against a real ``serve``, in English and
in Dutch, has no violation of axe-core's WCAG 2.0/2.1 A and AA rules (issue 16), nor of its best
practices (unique landmarks, heading order...): sign-in, board
(also filtered and with the notice after opening a case), work list, search (form, results, none
found, a refused reference), the case page (a dossier complete with checklist, deadline bar and
forms; a case just opened; a withdrawn case; the doctor's view), reports, the auditor's page and
the error pages (404, 403, 422). In English each page is audited again at 768x1024 (a tablet held
upright), where the wide tables scroll inside their regions.

No rule is excluded. The test first plants three faults in a page and asserts axe reports each:
an audit that cannot fail would prove nothing.

One test on one server and one browser: pytest-xdist would otherwise start a server per worker."""

from __future__ import annotations

from typing import Any

from selenium.webdriver.common.by import By

from .a11y import SIZES, axe_script, axe_violations, fill, pages
from .harness import Site, sign_in, sign_out, submit, viewport

LANGUAGES = ("en", "nl")


def in_language(driver: Any, site: Site, lang: str, path: str) -> None:
    """Choose ``lang`` with the desk's own switch (a cookie), landing on ``path``."""
    driver.get(f"{site.base}/ui/language/{lang}?next={path}")
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == lang


def axe_reports_planted_faults(site: Site, driver: Any, script: str) -> None:
    driver.get(f"{site.base}/ui/sign-in")
    driver.execute_script("""
        const main = document.querySelector('main');
        main.append(document.createElement('input'));                        // no label
        const pale = document.createElement('p'); pale.textContent = 'pale'; pale.style.color = '#bbbbbb';
        main.append(pale);                                                   // 1.9:1 contrast
        const img = document.createElement('img'); img.src = 'data:,'; main.append(img);  // no alt
    """)
    found = {v["id"] for v in axe_violations(driver, script)}
    assert {"label", "color-contrast", "image-alt"} <= found, found


def test_every_main_page_passes_axe_wcag_a_and_aa_in_english_and_dutch(site: Site, driver: Any) -> None:
    driver.set_script_timeout(90)  # axe on a long page, on a loaded 2-core machine
    script = axe_script()
    axe_reports_planted_faults(site, driver, script)
    cases = fill(site)
    problems: dict[str, Any] = {}
    audited = []
    for lang in LANGUAGES:
        in_language(driver, site, lang, "/ui/sign-in")
        problems[f"sign-in {lang}"] = axe_violations(driver, script)
        driver.find_element(By.ID, "token").send_keys("sot_not-a-token")  # the page with its problem shown
        submit(driver, driver.find_element(By.CSS_SELECTOR, "form[action='/ui/sign-in'] button"))
        assert driver.find_elements(By.CSS_SELECTOR, ".problem")
        problems[f"sign-in refused {lang}"] = axe_violations(driver, script)
        signed_in = None
        for name, (who, path) in pages(cases).items():
            if who != signed_in:
                if signed_in:
                    sign_out(driver)
                sign_in(driver, site, who)
                signed_in = who
            driver.get(site.base + path)
            assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == lang, name
            problems[f"{name} {lang}"] = axe_violations(driver, script)
            if lang == "en":  # upright on a tablet the wide tables scroll in their regions: axe again
                viewport(driver, *SIZES["tablet-portrait"], touch=True)
                problems[f"{name} {lang} tablet"] = axe_violations(driver, script)
                viewport(driver, *SIZES["desktop"])
            audited.append(name)
        if signed_in != "consultant":
            sign_out(driver)
            sign_in(driver, site, "consultant")
        driver.get(f"{site.base}/ui/board")  # a case opened from the board: its notice (role=status)
        driver.find_element(By.ID, "patient_ref").send_keys(f"PX-A11Y-NEW-{lang}")
        submit(driver, driver.find_element(By.CSS_SELECTOR, "form[action='/ui/cases'] button"))
        assert driver.find_elements(By.CSS_SELECTOR, ".notice")
        problems[f"case with notice {lang}"] = axe_violations(driver, script)
        sign_out(driver)
    assert len(audited) == 2 * len(pages(cases))
    assert {k: v for k, v in problems.items() if v} == {}
