"""Issue 18 on the command line: ``second-opinion config`` shows the effective settings (masked,
with their sources), and ``serve``/``worker`` refuse a pinned clock unless told
``--allow-clock-override``, while every other command keeps obeying it."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from second_opinion.cli import app
from second_opinion.cli.config import settings_markdown
from second_opinion.cli.serve import pinned_clock
from workflow.errors import ConfigurationError

CLOCK = "2026-11-23T10:00:00+01:00"
KEY = "k" * 40


def run(*args: str, env: dict[str, str | None] | None = None) -> object:
    cleared: dict[str, str | None] = {"SECOND_OPINION_CLOCK": None, "SECOND_OPINION_DB": None,
                                      "SECOND_OPINION_SECRET": None}  # fmt: skip
    return CliRunner().invoke(app, list(args), env={**cleared, **(env or {})})


def test_config_prints_every_setting_its_source_and_no_key() -> None:
    result = run("config", "--json", "--db", "memory://", env={"SECOND_OPINION_SECRET": KEY,
                                                                "SECOND_OPINION_SEND_TIMEOUT": "2.5"})  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = {row["variable"]: row for row in json.loads(result.stdout)}
    assert rows["SECOND_OPINION_DB"] == {"variable": "SECOND_OPINION_DB", "value": "memory://", "source": "flag"}
    assert rows["SECOND_OPINION_SECRET"] == {"variable": "SECOND_OPINION_SECRET", "value": "********",
                                             "source": "environment"}  # fmt: skip
    assert rows["SECOND_OPINION_SEND_TIMEOUT"]["value"] == "2.5"
    assert rows["SECOND_OPINION_RATE_READ"] == {"variable": "SECOND_OPINION_RATE_READ", "value": "600/60",
                                                "source": "default"}  # fmt: skip
    assert KEY not in result.output
    human = run("config", env={"SECOND_OPINION_SECRET": KEY})
    assert human.exit_code == 0 and "SECOND_OPINION_SECRET" in human.stdout and "********" in human.stdout
    assert KEY not in human.output


def test_config_markdown_is_the_generated_table() -> None:
    result = run("config", "--markdown")
    assert result.exit_code == 0 and result.stdout == settings_markdown()


def test_a_bad_value_is_one_line_naming_the_variable_exit_1() -> None:
    for args in (["config"], ["cases", "--db", "memory://"]):
        result = run(*args, env={"SECOND_OPINION_TLS_PROXY": "maybe"})
        assert result.exit_code == 1, result.output
        assert (
            result.stderr == "error: SECOND_OPINION_TLS_PROXY: 'maybe' is not one of 1/true/yes/on or 0/false/no/off\n"
        )
    as_json = run("config", "--json", env={"SECOND_OPINION_SEND_TIMEOUT": "5s"})
    assert as_json.exit_code == 1 and json.loads(as_json.stdout)["error"]["type"] == "ConfigurationError"


@pytest.mark.parametrize("command", [["serve", "--port", "1"], ["worker", "--once"], ["worker"]])
def test_serve_and_worker_refuse_a_pinned_clock_without_the_flag(command: list[str]) -> None:
    result = run(*command, "--db", "memory://", env={"SECOND_OPINION_CLOCK": CLOCK})
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"error: SECOND_OPINION_CLOCK: {command[0]} refuses a pinned clock")
    assert "--allow-clock-override" in result.stderr and result.stderr.count("\n") == 1
    assert "second-opinion API on" not in result.output and "swept" not in result.output  # nothing ran


def test_the_worker_obeys_a_pinned_clock_when_allowed_and_warns() -> None:
    result = run("worker", "--once", "--allow-clock-override", "--db", "memory://",
                 env={"SECOND_OPINION_CLOCK": CLOCK, "SECOND_OPINION_LOG_FORMAT": "json"})  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("swept 0 cases")
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    warnings = [line["event"] for line in lines if line["level"] == "warning"]
    assert warnings == ["SECOND_OPINION_CLOCK pins the clock at 2026-11-23T09:00:00.000000Z (--allow-clock-override): "
                        "not for production"]  # fmt: skip


def test_the_pinned_clock_check() -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("SECOND_OPINION_CLOCK", raising=False)
        assert pinned_clock("serve", allowed=False) is None
        patch.setenv("SECOND_OPINION_CLOCK", CLOCK)
        assert "pins the clock at 2026-11-23T09:00:00.000000Z" in str(pinned_clock("serve", allowed=True))
        with pytest.raises(ConfigurationError, match=r"^SECOND_OPINION_CLOCK: serve refuses a pinned clock"):
            pinned_clock("serve", allowed=False)


def test_other_commands_keep_obeying_the_clock() -> None:
    result = run("calendar", "working-days", "2026-11-23", "2026-11-30", env={"SECOND_OPINION_CLOCK": CLOCK})
    assert result.exit_code == 0, result.output
    cases = run("cases", "--json", "--db", "memory://", env={"SECOND_OPINION_CLOCK": CLOCK})
    assert cases.exit_code == 0 and json.loads(cases.stdout) == []
