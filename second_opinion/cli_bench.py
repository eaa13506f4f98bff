"""``second-opinion bench``: the benchmark harness of ``python -m bench``, same code, same options.

The harness lives in the source checkout's ``bench/`` package (it is not part of the installed
library); every argument is handed to it unparsed, ``--help`` included.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import typer

from workflow.errors import ConfigurationError

from .cli import _guard, app

CHECKOUT = Path(__file__).resolve().parent.parent


@app.command(
    "bench",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
def bench_command(ctx: typer.Context) -> None:
    """Benchmark against floors measured in the same run (see docs/benchmarks.md); --help for options."""
    with _guard():
        runner = _runner()
    raise typer.Exit(runner.main(list(ctx.args), prog="second-opinion bench"))


def _runner() -> ModuleType:
    try:
        return importlib.import_module("bench.runner")
    except ModuleNotFoundError as exc:
        if exc.name not in ("bench", "bench.runner"):
            raise
    if not (CHECKOUT / "bench" / "runner.py").is_file():
        raise ConfigurationError("bench", "the harness ships with the source checkout (bench/), which is not here")
    sys.path.insert(0, str(CHECKOUT))  # an installed console script does not have the checkout on its path
    return importlib.import_module("bench.runner")
