"""The benchmark harness runs end to end through ``python -m bench``, and its JSON holds every
figure. The suite runs ``--quick``, as CI must (every section at small sizes, under a minute on an
idle development machine); ``SECOND_OPINION_BENCH_MODE=smoke`` runs ``--smoke`` instead (every
section and every figure at the tiniest sizes), with the same checks.
Nothing here is about speed: the figures are only checked to be there and to be numbers; the
worker runs must lose and duplicate no breach."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.config import MODES
from tests.conftest import PG_URL, _require_postgres

MODE = os.environ.get("SECOND_OPINION_BENCH_MODE") or "quick"

ROOT = Path(__file__).resolve().parents[2]
FIGURES = [
    *(f"{command}.{backend}" for backend in ("sqlite", "postgresql") for command in ("fire", "open")),
    *(f"clients.postgresql.{n}" for n in (1, 2, 4)),
    "sweep.sqlite", "sweep.postgresql",
    *(f"{query}.{backend}" for backend in ("sqlite", "postgresql") for query in ("history", "overdue")),
    "verify.sqlite", "verify.postgresql", "verify_hash.sqlite", "verify_hash.postgresql",
    *(f"{part}.{backend}" for backend in ("sqlite", "postgresql") for part in ("verify_body", "verify_rebuild")),
    "verify_progress.sqlite", "verify_progress.postgresql",  # issue 18
    *(f"workers.postgresql.{n}" for n in (1, 2, 4)),
    "api.read", "api.fire",
    "startup.show",
    "report.sqlite", "report.postgresql",  # issue 16
    *(f"worklist.{figure}.{backend}.{n}" for figure in ("board", "list_page", "overdue_page")
      for backend in ("sqlite", "postgresql") for n in MODES[MODE].worklist_cases),
    *(f"log.{figure}.{backend}.{n}" for figure in ("head", "inclusion", "consistency")  # issue 17
      for backend in ("sqlite", "postgresql") for n in MODES[MODE].log_records),
    "observed.fire.sqlite", "observed.fire.postgresql",  # issue 18
]  # fmt: skip


def _run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.mark.postgres
def test_quick_run_writes_every_figure(tmp_path: Path) -> None:
    _require_postgres()
    out = tmp_path / "bench.json"
    # a bound against a hung harness, not a figure: the quick run takes 2-5 minutes on 2 shared cores
    done = _run("-m", "bench", f"--{MODE}", "--json", str(out), "--pg", PG_URL, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    document = json.loads(out.read_text())
    figures = document["figures"]
    assert sorted(figures) == sorted(FIGURES)
    for name, figure in figures.items():
        for key in ("value", "floor", "ratio"):
            assert isinstance(figure[key], float | int) and math.isfinite(figure[key]) and figure[key] > 0, name
        assert figure["unit"] and figure["what"], name
    for n in (1, 2, 4):
        worker = figures[f"workers.postgresql.{n}"]["detail"]
        assert worker["duplicates"] == 0 and worker["losses"] == 0, worker
        assert worker["breach_records"] == worker["due"] and sum(worker["swept_per_process"]) == worker["due"]
    for name, figure in figures.items():
        if name.startswith("log.") and not name.endswith(f".{MODES[MODE].log_records[0]}"):
            assert figure["detail"]["reads_growth_from_smallest"] < 2, figure  # O(log n) reads, not O(n)
    sweep = figures["sweep.postgresql"]["detail"]["seconds_by_open"]
    assert list(sweep) == [str(n) for n in MODES[MODE].sweep_open]  # quick: ["1000", "10000"]
    meta = document["meta"]
    assert meta["mode"] == MODE and meta["command"].startswith(f"python -m bench --{MODE}")
    assert meta["machine"]["cores"] and meta["machine"]["cpu"] and meta["machine"]["postgresql"]
    assert "figure" in done.stdout and "workers.postgresql.4" in done.stdout  # the table


def test_the_harness_is_run_from_the_checkout() -> None:
    module = _run("-m", "bench", "--help", timeout=60)
    assert module.returncode == 0, module.stderr
    assert "--quick" in module.stdout and "--json PATH" in module.stdout and "startup" in module.stdout
    command = _run("-m", "second_opinion", "bench", "--help", timeout=60)  # not a command of the product
    assert command.returncode == 2 and "No such command 'bench'" in command.stderr


def test_a_bad_option_is_a_usage_error() -> None:
    done = _run("-m", "bench", "--only", "nothing", timeout=60)
    assert done.returncode == 2 and "invalid choice" in done.stderr
