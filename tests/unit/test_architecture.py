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
WORKFLOW_THIRD_PARTY = {"transitions", "holidays", "dateutil", "anyascii", "cryptography", "rfc8785", "orjson"}
# anyascii: transliterates names (Sørensen -> sorensen) for the name screen; a table lookup, no I/O
# orjson: reads the stored bodies of audit and access records (3 times json's speed); no I/O
# cryptography: Ed25519 signatures of audit checkpoints (workflow/audit/checkpoint.py); no I/O, no clock


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


# --- the house rules (issue 13) ---------------------------------------------------------------

PRODUCT = ("workflow", "storage", "jobs", "second_opinion")
DRIVERS = {"psycopg", "psycopg2", "sqlite3", "sqlalchemy", "sqlmodel", "alembic"}
MAX_LINES = 450


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _outside_type_checking(tree: ast.Module) -> list[ast.stmt | ast.expr]:
    """Every import node, but those under ``if TYPE_CHECKING:`` (annotations only, never run)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(inner) for stmt in node.body for inner in ast.walk(stmt))
    return [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom) and id(n) not in skipped]


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """Our modules that ``path`` imports (``from pkg import module`` counts as ``pkg.module``);
    the packages above an imported module are not counted, as they only re-export."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: set[str] = set()
    for node in _outside_type_checking(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
            continue
        assert isinstance(node, ast.ImportFrom)
        base = package.rsplit(".", node.level - 1)[0] if node.level else ""
        target = ".".join(p for p in (base, node.module or "") if p)
        for alias in node.names:
            if f"{target}.{alias.name}" in known:
                found.add(f"{target}.{alias.name}")
            elif target in known:
                found.add(target)
    return found - {here}


def product_modules() -> dict[str, Path]:
    return {module_name(p): p for package in PRODUCT for p in modules(package)}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycle_in_the_product() -> None:
    known = product_modules()
    graph = {name: imported_modules(path, set(known)) for name, path in known.items()}
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("package", ["jobs", "second_opinion"])
def test_no_database_driver_outside_storage(package: str) -> None:
    """Driver errors become the project's own at the storage boundary; nothing above it needs a driver."""
    offenders = {str(p.relative_to(ROOT)): sorted(imports_of(p) & DRIVERS) for p in modules(package)}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_no_private_name_imported_from_another_module() -> None:
    known = set(product_modules()) | {module_name(p) for p in modules("tests")} | {module_name(p) for p in
                                                                                   modules("bench")}  # fmt: skip
    offenders = []
    for package in (*PRODUCT, "bench"):
        for path in modules(package):
            for node in _outside_type_checking(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").split(".")[0] in OURS):
                    private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                    if private:
                        offenders.append(f"{path.relative_to(ROOT)}: {node.module} {private}")
    assert known and offenders == []


def test_no_product_module_over_the_limit() -> None:
    lines = {name: len(path.read_text().splitlines()) for name, path in product_modules().items()}
    long = {name: n for name, n in lines.items() if n > MAX_LINES}
    assert long == {}
