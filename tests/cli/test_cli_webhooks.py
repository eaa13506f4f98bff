"""``second-opinion webhook ...``: the secret printed once, never listed, bad input refused with
nothing written, another organisation's subscription left alone."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from tests.cli.test_cli import Cli
from tests.conftest import migrated_sqlite

SECRET_ENV = {"SECOND_OPINION_SECRET": "cli-test-identity-key-of-32-bytes!"}
HOOK = "https://hooks.example.org/so"


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    found = Cli(tmp_path / "cli.sqlite3")
    migrated_sqlite(found.path)
    found.runner.env = {**found.runner.env, **SECRET_ENV}  # type: ignore[dict-item]
    return found


def rows(cli: Cli) -> list[tuple[str, ...]]:
    with closing(sqlite3.connect(cli.path)) as conn:
        return conn.execute("SELECT id, organisation, url, secret FROM webhook_subscriptions").fetchall()


def test_add_list_rotate_remove(cli):
    events = ["--event", "case.*", "--event", "deadline.breach"]
    made = cli.json("webhook", "add", "--org", "org-a", "--url", HOOK, *events)
    secret, sub = made["secret"], made["id"]
    assert secret.startswith("whsec_") and made["event_types"] == ["case.*", "deadline.breach"] and made["active"]
    listed = cli.run("webhook", "list", "--org", "org-a", "--json").stdout
    assert sub in listed and secret not in listed and "secret" not in listed
    assert cli.json("webhook", "list", "--org", "org-b") == []
    assert all(secret not in stored for *_, stored in rows(cli))  # sealed, never in clear
    cli.run("webhook", "rotate-secret", sub, "--org", "org-b", code=1)  # not theirs
    rotated = cli.json("webhook", "rotate-secret", sub, "--org", "org-a")
    assert rotated["secret"] != secret and rotated["rotated_at"]
    assert "inactive" in cli.run("webhook", "deactivate", sub).stdout
    assert cli.json("webhook", "list", "--org", "org-a")[0]["active"] is False
    cli.run("webhook", "activate", sub)
    assert "removed" in cli.run("webhook", "remove", sub).stdout
    assert rows(cli) == []


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--url", "http://hooks.example.org/x"], "must be https"),
        (["--url", "http://127.0.0.1:9000/x"], "ALLOW_LOCAL_HTTP"),
        (["--url", HOOK, "--event", "case.deleted"], "event_types"),
        (["--url", "https://" + "a" * 2000 + ".org/"], "at most 2000"),
    ],
)
def test_bad_input_is_one_error_line_and_nothing_written(cli, args, problem):
    result = cli.run("webhook", "add", "--org", "org-a", *args, code=1)
    assert problem in result.stderr and result.stderr.count("\n") == 1
    assert rows(cli) == []


def test_local_http_is_allowed_when_the_setting_says_so(cli):
    env = {"SECOND_OPINION_WEBHOOK_ALLOW_LOCAL_HTTP": "1"}
    made = cli.run("webhook", "add", "--org", "org-a", "--url", "http://127.0.0.1:9000/x", env=env)
    assert "secret whsec_" in made.stdout


def test_without_the_identity_key_nothing_is_made(cli):
    result = cli.run("webhook", "add", "--org", "org-a", "--url", HOOK, env={"SECOND_OPINION_SECRET": None}, code=1)
    assert "SECOND_OPINION_SECRET" in result.stderr
    assert rows(cli) == []
