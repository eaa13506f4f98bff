"""The README's CLI tour is run line by line, as a newcomer would paste it: every line succeeds
except the ones its own comment says are refused, and those fail with exit 1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def tour_lines() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("## A short tour of the CLI", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_readme_tour_runs_as_documented(tmp_path):
    lines = tour_lines()
    script = ["set -u"]
    for number, line in enumerate(lines):
        script += [line, f'echo "__rc__ {number} $?"']
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "SECOND_OPINION_CLOCK": "2026-11-23T10:00:00+01:00",
    }
    env.pop("SECOND_OPINION_DB", None)
    result = subprocess.run(
        ["bash", "-c", "\n".join(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    codes = {
        int(number): int(code)
        for number, code in (line.split()[1:] for line in result.stdout.splitlines() if line.startswith("__rc__"))
    }
    assert len(codes) == len(lines), result.stderr
    for number, line in enumerate(lines):
        expected = 1 if "# refused" in line else 0
        assert codes[number] == expected, f"{line!r} exited {codes[number]}\n{result.stderr}"
    assert (tmp_path / "cases.sqlite3").exists() and (tmp_path / "audit.csv").read_text().startswith("sequence,")
    assert "pathology" in result.stderr
