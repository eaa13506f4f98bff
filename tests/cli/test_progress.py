"""The progress bar of long commands (issue 18): drawn on a terminal's stderr with counts and rate;
under ``--json``, or when stderr is not a terminal, nothing extra anywhere. Either way stdout is
byte for byte what the command prints without a bar (the formats themselves are pinned by
``test_cli.py`` and its neighbours, which run without a terminal)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from rich.console import Console

from second_opinion import connect
from second_opinion.cli import progress as progress_module
from second_opinion.cli.progress import progress_bar, stderr_is_terminal
from storage.migrate import head_revision
from tests.cli.test_cli import Cli
from tests.conftest import DESK, T0, migrated_sqlite, walk
from workflow import FixedClock


def fake_terminal() -> tuple[Console, io.StringIO]:
    screen = io.StringIO()
    return Console(file=screen, force_terminal=True, width=120, color_system=None), screen


def test_the_bar_shows_label_counts_unit_and_rate() -> None:
    console, screen = fake_terminal()
    with progress_bar("verifying", "cases", console=console) as progress:
        assert progress is not None
        progress(500, 3000)
        progress(1500, 3000)
    drawn = screen.getvalue()
    assert "verifying" in drawn and "1500/3000" in drawn and "cases" in drawn and "cases/s" in drawn
    console, screen = fake_terminal()
    with progress_bar("exporting", "records", console=console) as progress:
        assert progress is not None
        progress(7000, None)  # a total not known yet
    assert "7000/?" in screen.getvalue()


def test_no_bar_under_json_or_when_stderr_is_no_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    console, screen = fake_terminal()
    with progress_bar("verifying", "cases", as_json=True, console=console) as progress:
        assert progress is None
    assert screen.getvalue() == ""
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # a pipe or a file: no isatty() that says yes
    assert not stderr_is_terminal()
    with progress_bar("verifying", "cases") as progress:
        assert progress is None


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    cli = Cli(tmp_path / "cli.sqlite3")
    migrated_sqlite(cli.path)
    with connect(cli.db, clock=FixedClock(T0)) as service:  # the CLI's pinned clock
        for i in range(3):
            walk(service, service.open_case(f"PX-{i:04d}", actor=DESK).case_id, "referred")
    return cli


def pretend_terminal(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """Make the commands believe stderr is a terminal; what they draw lands in the returned buffer."""
    console, screen = fake_terminal()
    monkeypatch.setattr(progress_module, "stderr_is_terminal", lambda: True)
    monkeypatch.setattr(progress_module, "terminal", lambda: console)
    return screen


COMMANDS = [
    (("audit", "verify"), "3/3 cases"),
    (("audit", "verify", "--json"), None),
    (("audit", "export"), "15/15 records"),
    (("audit", "export", "--format", "csv"), "15/15 records"),
    (("deadlines", "recompute"), "3/3 cases"),
    (("deadlines", "recompute", "--json"), None),
]


@pytest.mark.parametrize(("argv", "drawn"), COMMANDS, ids=[" ".join(a) for a, _ in COMMANDS])
def test_a_terminal_gets_a_bar_and_the_output_stays_byte_equal(
    cli: Cli, argv: tuple[str, ...], drawn: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = cli.run(*argv)  # CliRunner's stderr is no terminal: no bar, as in a pipe
    assert plain.stdout  # something to compare
    screen = pretend_terminal(monkeypatch)
    shown = cli.run(*argv)
    assert shown.stdout_bytes == plain.stdout_bytes and shown.stderr_bytes == plain.stderr_bytes
    if drawn is None:  # --json: a script's output, nothing drawn even on a terminal
        assert screen.getvalue() == ""
    else:
        assert drawn in screen.getvalue()


def test_init_shows_the_migrations_and_prints_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outputs, screen = [], io.StringIO()
    for name in ("plain", "shown"):
        if name == "shown":
            screen = pretend_terminal(monkeypatch)
        (tmp_path / name).mkdir()
        monkeypatch.chdir(tmp_path / name)  # the same relative URL, so the same line printed
        outputs.append(Cli(Path("cli.sqlite3")).run("init"))
    plain, shown = outputs
    assert shown.stdout_bytes == plain.stdout_bytes and shown.stderr_bytes == plain.stderr_bytes
    total = int(head_revision())
    assert f"{total}/{total} migrations" in screen.getvalue()
