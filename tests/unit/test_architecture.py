"""Imports point inward: the domain depends on nothing of ours outside it.

``workflow`` may import only the standard library, ``transitions`` and itself; ``storage`` and
``jobs`` may import ``workflow`` but not the composition root; only ``second_opinion`` wires
everything together. A violation here is how a domain quietly grows a database dependency.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = {"workflow", "storage", "jobs", "second_opinion"}
ALLOWED = {
    "workflow": {"workflow"},
    "storage": {"workflow", "storage"},
    "jobs": {"workflow", "jobs"},  # jobs call the service layer, never storage
    "second_opinion": OURS,
}
WORKFLOW_THIRD_PARTY = {"transitions", "holidays", "dateutil"}  # pure computation: no I/O, no clock


def imports_of(path: Path, package: str | None = None) -> set[str]:
    """Top-level packages imported by ``path``; relative imports count as its own package."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = package or path.relative_to(ROOT).parts[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add(package if node.level else (node.module or "").split(".")[0])
    return found


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(OURS))
def test_imports_point_inward(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted((imports_of(path) & OURS) - ALLOWED[package]) for path in modules(package)
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_workflow_uses_only_stdlib_and_transitions() -> None:
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    foreign = {
        str(path.relative_to(ROOT)): sorted(imports_of(path) - stdlib - WORKFLOW_THIRD_PARTY - {"workflow"})
        for path in modules("workflow")
    }
    assert {k: v for k, v in foreign.items() if v} == {}


def test_checker_sees_a_violation(tmp_path: Path) -> None:
    """The rule can fail: a domain module importing storage is caught."""
    bad = tmp_path / "violation.py"
    bad.write_text("import json\nfrom storage import open_backend\nfrom . import engine\n")
    assert imports_of(bad, "workflow") & OURS - ALLOWED["workflow"] == {"storage"}


def test_no_wall_clock_outside_the_clock_module() -> None:
    """One injectable clock: ``datetime.now``/``utcnow``/``time.time`` appear only in SystemClock."""
    hits = []
    for package in sorted(OURS):
        for path in modules(package):
            if path == ROOT / "workflow" / "clock.py":
                continue
            text = path.read_text()
            for needle in ("datetime.now(", "datetime.utcnow(", ".today(", "time.time("):
                if needle in text:
                    hits.append(f"{path.relative_to(ROOT)}: {needle}")
    assert hits == []


def test_public_api_is_one_import() -> None:
    import second_opinion

    assert callable(second_opinion.connect)
    missing = [name for name in second_opinion.__all__ if not hasattr(second_opinion, name)]
    assert missing == []
