"""Screenshots of the web desk's main pages for docs/ui.md: ``python -m tests.browser.screenshots``.

Serves a fresh SQLite database on 127.0.0.1, opens a few cases through the API, and photographs
the pages in headless Chromium at 1280x800 (the case page at its full height) into docs/ui/, and
two on a tablet (768x1024 upright; the case page at its full height, in Dutch on its side).
Every size is the viewport's, exact (:func:`harness.viewport`)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

from .harness import Site, browser_problem, chrome, served, sign_in, sign_out, viewport

OUT = Path(__file__).resolve().parents[2] / "docs" / "ui"


def fire(site: Site, who: str, case_id: str, event: str, **body: Any) -> None:
    answer = httpx.post(f"{site.base}/cases/{case_id}/events", json={"event": event, **body},
                        headers={"Authorization": f"Bearer {site.tokens[who]}"})  # fmt: skip
    answer.raise_for_status()


def open_case(site: Site, patient: str, route: str) -> str:
    answer = httpx.post(f"{site.base}/cases", json={"patient_ref": patient, "route": route},
                        headers={"Authorization": f"Bearer {site.tokens['consultant']}"})  # fmt: skip
    answer.raise_for_status()
    case_id: str = answer.json()["case_id"]
    return case_id


def populate(site: Site) -> str:
    """Cases in several states; returns a Royal Doctors case with its dossier complete."""
    consent = {"basis": "written", "scope": "full dossier"}
    circumstances = {"treated_abroad": False, "insured_abroad": False, "has_pathology": False, "has_imaging": False}
    for n in range(1, 4):
        open_case(site, f"PX-00{n}", "domestic")
    referred = open_case(site, "PX-RD-0100", "royal-doctors")
    for case_id in (referred, rd := open_case(site, "PX-RD-0101", "royal-doctors")):
        fire(site, "consultant", case_id, "record_circumstances", data=circumstances)
        fire(site, "consultant", case_id, "give_consent", data=consent)
        fire(site, "consultant", case_id, "refer")
    for item in ("medical_history", "examinations", "lab_reports"):
        fire(site, "consultant", rd, "receive_item", data={"item": item})
    fire(site, "consultant", rd, "receive_dossier")
    return rd


def full_height(driver: Any, width: int, touch: bool = False) -> None:
    """The viewport as tall as the page (at most 4000 px), for a screenshot of all of it."""
    viewport(driver, width, 800, touch=touch)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    viewport(driver, width, min(int(height), 4000), touch=touch)


def main() -> int:
    problem = browser_problem()
    if problem:
        print(f"cannot take screenshots: {problem}", file=sys.stderr)
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="desk-shots-") as tmp, served(Path(tmp)) as site:
        case_id = populate(site)
        driver = chrome()
        try:
            driver.get(f"{site.base}/ui/sign-in")
            driver.save_screenshot(str(OUT / "sign-in.png"))
            sign_in(driver, site, "consultant")
            for name, path in (("board", "/ui/board"), ("work", "/ui/work"),
                               ("search", "/ui/search?patient_ref=PX-RD-0101")):  # fmt: skip
                driver.get(site.base + path)
                driver.save_screenshot(str(OUT / f"{name}.png"))
            driver.get(f"{site.base}/ui/cases/{case_id}")
            full_height(driver, 1280)
            driver.save_screenshot(str(OUT / "case.png"))
            viewport(driver, 768, 1024, touch=True)  # a tablet held upright: the forms in one column
            full_height(driver, 768, touch=True)
            driver.save_screenshot(str(OUT / "case-tablet.png"))
            viewport(driver, 1280, 800)
            sign_out(driver)
            sign_in(driver, site, "auditor")
            driver.get(f"{site.base}/ui/audit?verify=1")
            driver.save_screenshot(str(OUT / "audit.png"))
            driver.get(f"{site.base}/ui/language/nl?next=/ui/board")
            viewport(driver, 1024, 768, touch=True)  # a tablet on its side
            driver.save_screenshot(str(OUT / "board-nl-tablet.png"))
        finally:
            driver.quit()
    print(f"screenshots written to {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
