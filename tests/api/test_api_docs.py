"""docs/api.md is true: its generated tables match the code, and its curl examples, run against a
real `second-opinion serve`, print what the page says they print."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path

import pytest

from second_opinion import connect
from second_opinion.api.docs import GENERATED_END, GENERATED_START, api_markdown
from tests.doc_examples import check, examples, run

PAGE = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_generated_section_is_current() -> None:
    committed = PAGE.read_text()
    start, end = committed.index(GENERATED_START), committed.index(GENERATED_END) + len(GENERATED_END) + 1
    with connect("memory://") as service:
        assert committed[start:end] == api_markdown(service), (
            "docs/api.md is stale: replace its generated section with `second-opinion diagram --api`"
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(shutil.which("curl") is None, reason="the examples are curl commands; curl is not installed")
def test_curl_examples_print_what_the_page_shows(tmp_path: Path) -> None:
    pairs = examples(PAGE.read_text())
    assert len(pairs) >= 10 and any("fhir/Task" in script for script, _, _ in pairs)
    port = str(_free_port())
    pairs = [(script.replace("8080", port), lang, expected) for script, lang, expected in pairs]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECOND_OPINION_")}
    env["SECOND_OPINION_CLOCK"] = "2026-03-02T10:00:00+01:00"
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # the second-opinion of this venv
    outputs = run(pairs, tmp_path, env)
    problems = check(pairs, outputs)
    assert not problems, "\n".join(problems) + "\n(server log:\n" + (tmp_path / "server.log").read_text()[-2000:]
