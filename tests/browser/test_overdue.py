"""A coordinator sees an overdue case on the web desk's work list before and after the worker
records its breach (issue 16: before, a breached deadline dropped off the overdue list, so with the
worker on its interval a coordinator almost never saw an overdue case).

The case is referred on a clock 40 days back (its 10-working-day dossier term long past); the
server and the worker run on the real clock. Every request the browser made stayed on 127.0.0.1."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from selenium.webdriver.common.by import By

from second_opinion import connect
from tests.conftest import walk
from tests.reliability.test_api_servers import cli
from workflow import Actor, FixedClock
from workflow.deadlines.policies import BREACHED, RUNNING

from .harness import Site, requested_urls, sign_in


def overdue_row(driver: Any, case_id: str) -> list[str]:
    """The cells of the case's row in the work list's overdue table (empty: not listed there)."""
    table = driver.find_element(By.XPATH, "//h2[@id='overdue']/following-sibling::div[1]//table")
    for row in table.find_elements(By.CSS_SELECTOR, "tbody tr"):
        cells = [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
        if cells and cells[0] == case_id:
            return cells
    return []


def dossier_deadline(url: str, case_id: str) -> str:
    with connect(url) as service:
        (deadline,) = service.deadlines_of(case_id)
        return deadline.state


def test_an_overdue_case_stays_on_the_work_list_after_the_worker_records_its_breach(site: Site, driver: Any) -> None:
    referred_at = datetime.now(UTC).replace(microsecond=0) - timedelta(days=40)
    with connect(site.url, clock=FixedClock(referred_at)) as service:
        case_id = service.open_case("PX-LATE-01", actor=Actor("desk-cas", "coordinator"),
                                    organisation="org-a").case_id  # fmt: skip
        walk(service, case_id, "referred")  # the domestic dossier term starts: 10 working days
    assert dossier_deadline(site.url, case_id) == RUNNING

    sign_in(driver, site, "coordinator")
    driver.get(f"{site.base}/ui/work")
    before = overdue_row(driver, case_id)
    assert before, driver.page_source[:3000]
    late = int(before[-1])
    assert late >= 5, before  # 40 calendar days hold 25 weekdays, at most 4 of them holidays: over the 10-day term

    swept = cli("worker", "--once", "--db", site.url, cwd=Path(site.url.removeprefix("sqlite:///")).parent)
    assert swept.returncode == 0, swept.stderr
    assert dossier_deadline(site.url, case_id) == BREACHED  # the worker recorded the breach

    driver.get(f"{site.base}/ui/work")
    after = overdue_row(driver, case_id)
    assert after[:4] == before[:4] and int(after[-1]) == late, (before, after)  # still listed, as late

    hosts = {urlsplit(u).hostname for u in requested_urls(driver) if u.startswith(("http:", "https:"))}
    assert hosts == {"127.0.0.1"}, hosts
