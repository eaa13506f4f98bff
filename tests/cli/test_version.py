"""``second-opinion --version`` names the installed version; ``bench`` is not a command of the
installed program (the harness is ``python -m bench`` in a source checkout: docs/benchmarks.md)."""

from __future__ import annotations

from importlib.metadata import version

from typer.testing import CliRunner

import second_opinion
from second_opinion.cli import app


def test_version_prints_the_package_version_and_exits_0() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "second-opinion 0.1.0\n"
    assert version("second-opinion") == second_opinion.__version__ == "0.1.0"


def test_version_is_listed_in_help_and_runs_no_command() -> None:
    result = CliRunner().invoke(app, ["--version", "show", "nope", "--db", "memory://"])
    assert (result.exit_code, result.stdout) == (0, "second-opinion 0.1.0\n")
    assert "--version" in CliRunner().invoke(app, ["--help"]).stdout


def test_bench_is_not_a_command_of_the_installed_program() -> None:
    assert " bench " not in CliRunner().invoke(app, ["--help"]).stdout
    result = CliRunner().invoke(app, ["bench", "--quick"])
    assert result.exit_code == 2
    assert "No such command 'bench'" in result.stderr
