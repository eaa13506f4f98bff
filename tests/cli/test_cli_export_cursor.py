"""``audit export --after SEQ``: incremental exports by the global sequence, each telling the next
cursor on stderr; and a clock set back refused as one line, nothing written (issue 14)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_cli import Cli, fire_args
from tests.conftest import migrated_sqlite

EARLIER = "2026-11-23T09:59:57+01:00"  # three seconds before the pinned clock of tests.cli.test_cli


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    cli = Cli(tmp_path / "cursor.sqlite3")
    migrated_sqlite(cli.path)
    return cli


def sequences(text: str) -> list[int]:
    return [json.loads(line)["sequence"] for line in text.splitlines()]


def test_export_after_a_cursor_gives_only_later_records_and_the_next_cursor(cli: Cli) -> None:
    case_id = cli.open()
    whole = cli.run("audit", "export", "--after", "0")
    first = sequences(whole.stdout)
    assert len(first) == 1 and whole.stderr == f"next: --after {first[-1]}\n"
    cli.run(*fire_args(case_id, "record_circumstances"))
    cli.open()
    later = cli.run("audit", "export", "--after", str(first[-1]))
    assert sequences(later.stdout) == sequences(cli.run("audit", "export").stdout)[1:]
    assert later.stderr == f"next: --after {sequences(later.stdout)[-1]}\n"
    nothing_new = cli.run("audit", "export", "--after", str(sequences(later.stdout)[-1]), "--format", "csv")
    assert nothing_new.stdout.count("\n") == 1  # the header alone
    assert nothing_new.stderr == f"next: --after {sequences(later.stdout)[-1]}\n"  # the same cursor again
    assert cli.run("audit", "export").stderr == ""  # a whole export is as it was: no cursor
    since = cli.run("audit", "export", "--since", "2026-11-23")
    assert since.stderr == f"next: --after {sequences(since.stdout)[-1]}\n"


def test_export_after_a_negative_sequence_is_a_usage_error(cli: Cli) -> None:
    refused = cli.run("audit", "export", "--after", "-1", code=2)
    assert "--after" in refused.stderr


def test_a_clock_set_back_is_refused_in_one_line_and_writes_nothing(cli: Cli) -> None:
    case_id = cli.open()
    exported = cli.run("audit", "export").stdout
    back = {"SECOND_OPINION_CLOCK": EARLIER}
    refused = cli.run(*fire_args(case_id, "record_circumstances"), code=1, env=back)
    assert refused.stderr == (
        "error: the clock reads 2026-11-23T08:59:57.000000Z, 3.000 s behind the last record at "
        "2026-11-23T09:00:00.000000Z; check the server's time (NTP)\n"
    )
    cli.run("open", "--patient-ref", "PX-0002", code=1, env=back)
    assert cli.run("audit", "export").stdout == exported
    tolerant = {**back, "SECOND_OPINION_CLOCK_TOLERANCE": "5"}
    receipt = json.loads(cli.run(*fire_args(case_id, "record_circumstances"), "--json", env=tolerant).stdout)
    assert receipt["recorded_at"] == "2026-11-23T09:00:00.000000Z"
    bad = cli.run("show", case_id, code=1, env={"SECOND_OPINION_CLOCK_TOLERANCE": "soon"})
    assert bad.stderr.startswith("error: SECOND_OPINION_CLOCK_TOLERANCE: 'soon' is not a number of seconds")
