"""A real ``second-opinion serve`` on 127.0.0.1 with a SQLite file, and headless Chromium
(Debian's ``chromium`` and ``chromium-driver``) driven by Selenium: shared by the browser tests
and by ``python -m tests.browser.screenshots``."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.reliability.test_api_servers import Server, cli, free_ports

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
DRIVER = "chromedriver"
READY_SECONDS = 120  # four browser modules start their servers at once on a loaded 2-core machine


def browser_problem() -> str | None:
    """Why no browser test can run here (None: they can)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    if not any(shutil.which(name) for name in CHROMIUM):
        return "Chromium is not installed (apt-get install -y chromium chromium-driver)"
    if not shutil.which(DRIVER):
        return "chromedriver is not installed (apt-get install -y chromium-driver)"
    return None


@dataclass
class Site:
    """A served database with a token per (organisation, role)."""

    base: str
    url: str
    tokens: dict[str, str] = field(default_factory=dict)
    server: Server | None = None


def make_token(url: str, actor: str, role: str, org: str, cwd: Path) -> str:
    made = cli("token", "create", "--actor", actor, "--role", role, "--org", org, "--db", url, "--json", cwd=cwd)
    assert made.returncode == 0, made.stderr
    token: str = json.loads(made.stdout)["token"]
    return token


@contextmanager
def served(tmp: Path, env: dict[str, str] | None = None) -> Iterator[Site]:
    """``serve`` on a fresh SQLite file under ``tmp``, with tokens for org-a's care consultant,
    second-opinion doctor, coordinator and auditor, and org-b's coordinator."""
    url = f"sqlite:///{tmp / 'desk.sqlite3'}"
    made = cli("init", "--db", url, cwd=tmp)
    assert made.returncode == 0, made.stderr
    site = Site("", url)
    for name, actor, role, org in (
        ("consultant", "zc-anna", "care_consultant", "org-a"),
        ("doctor", "dr-bram", "second_opinion_doctor", "org-a"),
        ("coordinator", "desk-cas", "coordinator", "org-a"),
        ("auditor", "aud-dirk", "auditor", "org-a"),
        ("other", "desk-eva", "coordinator", "org-b"),
    ):
        site.tokens[name] = make_token(url, actor, role, org, tmp)
    (port,) = free_ports(1)
    rates = {"SECOND_OPINION_RATE_READ": "off", "SECOND_OPINION_RATE_TOKEN": "off",
             "SECOND_OPINION_RATE_CASE": "off", "SECOND_OPINION_RATE_CASE_TOKEN": "off"}  # fmt: skip
    server = Server(url, port, tmp, env={**rates, **(env or {})})
    try:
        server.wait_ready(time.monotonic() + READY_SECONDS)
        site.base, site.server = server.base, server
        yield site
    finally:
        server.stop()


def chrome(width: int = 1280, height: int = 800, lang: str = "en") -> Any:
    """Headless Chromium with its network log on (``goog:loggingPrefs`` performance)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = next(p for p in (shutil.which(n) for n in CHROMIUM) if p)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 f"--window-size={width},{height}", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-default-apps",
                 "--disable-extensions", f"--lang={lang}", "--hide-scrollbars"):  # fmt: skip
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": lang})
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    os.environ.setdefault("SE_AVOID_STATS", "true")  # Selenium Manager is not asked: both paths are given
    driver = webdriver.Chrome(service=Service(shutil.which(DRIVER)), options=options)
    driver.set_page_load_timeout(30)
    return driver


def viewport(driver: Any, width: int, height: int, *, touch: bool = False) -> None:
    """Lay the page out for exactly ``width`` x ``height`` CSS pixels (DevTools' device metrics,
    not the window size: a headless window's own chrome would make "1280x800" a guess), as a
    touch device when ``touch`` (a tablet)."""
    metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": touch}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": touch, "maxTouchPoints": 5})


def requested_urls(driver: Any) -> list[str]:
    """Every URL the browser asked for since the last call, from its performance (network) log."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def sign_in(driver: Any, site: Site, who: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{site.base}/ui/sign-in")
    driver.find_element(By.ID, "token").send_keys(site.tokens[who])
    submit(driver, driver.find_element(By.CSS_SELECTOR, "form[action='/ui/sign-in'] button"))
    assert driver.current_url.endswith("/ui/board"), driver.page_source[:2000]


def sign_out(driver: Any) -> None:
    from selenium.webdriver.common.by import By

    submit(driver, driver.find_element(By.CSS_SELECTOR, "form[action='/ui/sign-out'] button"))
    assert driver.current_url.endswith("/ui/sign-in")


def fire(driver: Any, event: str, fields: dict[str, str] | None = None, reason: str | None = None) -> None:
    """Fill in the next-step form of ``event`` on the case page shown and submit it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    form = driver.find_element(By.ID, f"form-{event}")
    for name, value in (fields or {}).items():
        element = form.find_element(By.NAME, name)
        if element.tag_name == "select":
            Select(element).select_by_value(value)
        elif element.get_attribute("type") == "checkbox":
            if (value == "on") != element.is_selected():
                element.click()
        else:
            element.clear()
            element.send_keys(value)
    if reason is not None:
        form.find_element(By.NAME, "reason").send_keys(reason)
    submit(driver, form.find_element(By.CSS_SELECTOR, "button[type=submit]"))


def submit(driver: Any, button: Any) -> None:
    """Click ``button`` and wait until the browser has left the page it was on (the answer shown)."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    page = driver.find_element("tag name", "html")
    button.click()

    def left(_: Any) -> bool:
        try:
            page.is_enabled()  # any call on the old page's element
            return False
        except WebDriverException:  # stale, or its node gone while the next page loads
            return True

    WebDriverWait(driver, 20).until(left)
    WebDriverWait(driver, 20).until(lambda d: d.execute_script("return document.readyState") == "complete")


def text_of(driver: Any, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    text: str = driver.find_element(By.ID, element_id).text
    return text
