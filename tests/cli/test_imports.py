"""A read command answers at once: ``show``, ``cases``, ``history`` and ``deadlines`` import only
what they use (issue 13), never the HTTP stack, the scheduler, the worker or the benchmarks; under
``--json`` not even rich. Checked in a fresh interpreter, as the console script starts. And the
command-line package keeps its shape: no import cycle among its modules, no private name
imported from another module, no module over 450 lines."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

from second_opinion.bootstrap import connect, init
from workflow.cases.case import Actor

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "second_opinion" / "cli"
NEVER = ("fastapi", "starlette", "uvicorn", "httpx", "apscheduler", "jobs", "second_opinion.api", "bench",
         "schemathesis", "typer.rich_utils", "holidays", "alembic", "psycopg")  # fmt: skip
"""Modules no read command may load (psycopg: on a SQLite file). The storage layer still loads
pydantic and the SQLAlchemy ORM (through sqlmodel, for its tables): they join this list once
that import is gone."""
NOT_FOR_JSON = ("rich",)

PROBE = """
import contextlib, io, json, sys
from second_opinion.cli import app
never, not_for_json = json.loads(sys.argv[1]), json.loads(sys.argv[2])
found = {}
for argv in json.loads(sys.argv[3]):
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            app(argv, prog_name="second-opinion")
        except SystemExit as exc:
            assert exc.code in (0, None), (argv, exc.code)
    banned = never + (not_for_json if "--json" in argv else [])
    found[" ".join(argv[:-2])] = [name for name in banned if name in sys.modules]
print(json.dumps(found))
"""


def test_read_commands_load_no_heavy_module(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'reads.sqlite3'}"
    init(url)
    with connect(url) as service:
        case_id = service.open_case("PX-0001", actor=Actor("desk-7", "coordinator")).case_id
        service.fire(case_id, "refer", actor=Actor("gp-12", "gp"))
    reads = [["show", case_id], ["cases"], ["history", case_id], ["deadlines"]]
    commands = [[*argv, *extra, "--db", url] for extra in (["--json"], []) for argv in reads]  # JSON first: no rich yet
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECOND_OPINION_")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(NEVER), json.dumps(NOT_FOR_JSON), json.dumps(commands)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout)
    assert len(found) == len(commands)
    assert found == {command: [] for command in found}, found


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module imported from, names) for each ``from`` import of a module of the package."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 1:
                module = f"second_opinion.cli.{module}" if module else "second_opinion.cli"
            elif node.level == 2:
                module = f"second_opinion.{module}" if module else "second_opinion"
            found.append((module, [alias.name for alias in node.names]))
    return found


def test_the_package_has_no_cycle_and_no_private_imports() -> None:
    modules = {p.stem: p for p in PACKAGE.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for stem, path in modules.items():
        assert len(path.read_text(encoding="utf-8").splitlines()) <= 450, path
        graph[stem] = set()
        for module, names in _imports(path):
            private = [n for n in names if n.startswith("_") and n != "__version__"]
            assert not private, f"{path.name} imports {private} from {module}"
            if module == "second_opinion.cli":  # the package itself: only __init__ may name it
                graph[stem].update(n for n in names if n in modules)
                continue
            if module.startswith("second_opinion.cli."):
                graph[stem].add(module.rsplit(".", 1)[1])
    done: set[str] = set()

    def visit(stem: str, path: tuple[str, ...]) -> None:
        assert stem not in path, f"import cycle: {' -> '.join((*path, stem))}"
        if stem in done:
            return
        for target in graph.get(stem, ()):
            visit(target, (*path, stem))
        done.add(stem)

    for stem in graph:
        visit(stem, ())
    assert not graph["common"], graph["common"]  # what every command imports imports no command
