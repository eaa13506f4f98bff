"""A program embedding the library type-checks against it as installed (issue 18).

``mypy --strict`` runs in a fresh interpreter, from an empty directory, on ``example_app.py`` (the
way README.md says to embed: ``connect``, commands, reads, ``verify``) and on ``bad_app.py`` (one
mistake a line). The packages are laid out as the wheel installs them, on a path of their own, so
mypy finds them as an installed distribution: it reads their hints only because each ships
``py.typed`` (without it: ``import-untyped``, and under ``--strict`` an error). The repository's own
mypy settings play no part. (setuptools' editable install is an import hook, which mypy cannot
follow: hence the copy; see README.md, "The Python API".)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent
PACKAGES = ("workflow", "storage", "jobs", "second_opinion")


def test_every_package_ships_py_typed() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert sorted(f"{p}*" for p in PACKAGES) == sorted(config["packages"]["find"]["include"])
    for package in PACKAGES:
        assert (ROOT / package / "py.typed").is_file(), package
        assert "py.typed" in config["package-data"][package], f"{package}: py.typed is not in the wheel"


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """mypy --strict on both programs, once: each file's error lines (``LINE: message``)."""
    work = tmp_path_factory.mktemp("embedding")
    site = work / "site"
    for package in PACKAGES:  # what the wheel holds: the packages' files, no caches
        shutil.copytree(ROOT / package, site / package, ignore=shutil.ignore_patterns("__pycache__"))
    program = work / "program"
    program.mkdir()
    for name in ("example_app.py", "bad_app.py"):
        shutil.copy(HERE / name, program / name)
    env = {k: v for k, v in os.environ.items() if k not in ("MYPYPATH", "PYTHONPATH")}
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--hide-error-context",
         "--cache-dir", str(work / "cache"), "example_app.py", "bad_app.py"],
        cwd=program, env={**env, "PYTHONPATH": str(site)}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr  # 2: mypy itself failed
    found: dict[str, list[str]] = {"example_app.py": [], "bad_app.py": []}
    for line in done.stdout.splitlines():
        match = re.match(r"(\w+\.py):(\d+): error: (.*)", line)
        assert match and match[1] in found, f"unexpected mypy output: {line}\n{done.stdout}"
        found[match[1]].append(f"{match[2]}: {match[3]}")
    return found


def test_the_example_program_type_checks_strictly(mypy_output: dict[str, list[str]]) -> None:
    assert mypy_output["example_app.py"] == []


def test_mypy_reports_each_deliberate_mistake(mypy_output: dict[str, list[str]]) -> None:
    marked = [n for n, line in enumerate((HERE / "bad_app.py").read_text().splitlines(), 1) if "  # error:" in line]
    reported = sorted({int(line.split(":")[0]) for line in mypy_output["bad_app.py"]})
    assert reported == marked, "\n".join(mypy_output["bad_app.py"])
    assert any('has no attribute "name"' in line for line in mypy_output["bad_app.py"])


def test_the_example_program_runs() -> None:
    done = subprocess.run([sys.executable, str(HERE / "example_app.py")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "verified 1 case(s), 4 record(s): ok" in done.stdout
