"""Browser tests: skipped with the reason when Chromium, its driver or selenium is missing, but
failed under CI=true (as the PostgreSQL tests are), so CI never passes without running them."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .harness import Site, browser_problem, chrome, served


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.browser)


def _require_browser() -> None:
    problem = browser_problem()
    if problem:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{problem} (CI=true requires the browser tests)")
        pytest.skip(problem)


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    _require_browser()
    with tempfile.TemporaryDirectory(prefix="desk-") as tmp, served(Path(tmp)) as running:
        yield running


@pytest.fixture(scope="module")
def driver(site: Site) -> Iterator[Any]:
    browser = chrome()
    try:
        yield browser
    finally:
        browser.quit()
