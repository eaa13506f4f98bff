"""Issue 18: one typed settings object (second_opinion/settings.py) for every environment variable
the product reads; docs/operations.md's table generated from it; bad values one line naming the
variable; key material never shown; nothing else reads the environment."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from second_opinion import bootstrap
from second_opinion.cli.config import GENERATED_END, GENERATED_START, effective, settings_markdown, shown
from second_opinion.settings import MASK, PREFIX, Settings, env_name, env_text, load
from workflow.errors import ConfigurationError, ValidationError

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("workflow", "storage", "jobs", "second_opinion")
KEY = "k" * 40


def test_operations_doc_holds_the_generated_settings_table() -> None:
    committed = (ROOT / "docs" / "operations.md").read_text()
    start, end = committed.index(GENERATED_START), committed.index(GENERATED_END) + len(GENERATED_END) + 1
    assert committed[start:end] == settings_markdown(), (
        "docs/operations.md is stale: replace its generated section with `second-opinion config --markdown`"
    )
    assert committed.startswith("# Operations\n") and "\n## Configuration\n" in committed


def test_every_setting_has_a_description_and_a_row() -> None:
    table = settings_markdown()
    for name, field in Settings.model_fields.items():
        assert field.description and len(field.description) > 10, name
        assert f"| `{env_name(name)}` |" in table


def test_nothing_but_settings_reads_the_environment() -> None:
    """``os.environ``, ``os.getenv`` and ``os.environ.get`` appear only in second_opinion/settings.py."""
    readers = re.compile(r"\bos\.environ\b|\bgetenv\(|\benviron\.get\(")
    found = []
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == ROOT / "second_opinion" / "settings.py":
                continue
            found += [f"{path.relative_to(ROOT)}:{n}" for n, line in enumerate(path.read_text().splitlines(), 1)
                      if readers.search(line)]  # fmt: skip
    assert found == []


def test_every_variable_the_cli_or_bootstrap_names_is_a_setting() -> None:
    """click reads ``--role``/``--org``'s variables itself (``envvar=``); bootstrap names the rest."""
    names = {env_name(field) for field in Settings.model_fields}
    for path in sorted((ROOT / "second_opinion" / "cli").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "envvar":
                assert isinstance(node.value, ast.Constant) and node.value.value in names, path
    constants = {value for name, value in vars(bootstrap).items() if name.startswith("ENV_")}
    assert constants and constants <= names


def test_values_come_from_flags_over_the_environment_over_defaults() -> None:
    env = {"SECOND_OPINION_DB": "sqlite:///env.sqlite3", "SECOND_OPINION_SEND_TIMEOUT": "2.5",
           "SECOND_OPINION_CLOCK": "2026-11-23T10:00:00+01:00", "SECOND_OPINION_RATE_READ": ""}  # fmt: skip
    config = load(env, db="memory://")
    assert (config.db, config.source("db")) == ("memory://", "flag")
    assert (config.send_timeout, config.source("send_timeout")) == (2.5, "environment")
    assert shown(config, "clock") == "2026-11-23T09:00:00Z"
    assert (config.rate_read, config.source("rate_read")) == ("600/60", "default")  # empty is unset
    assert load({}).source("db") == "default"
    assert env_text("db", env) == "sqlite:///env.sqlite3" and env_text("lang", env) == ""
    with pytest.raises(KeyError):
        env_text("no_such_setting", env)


def test_blank_values_are_unset_and_switches_read_as_words() -> None:
    config = load(
        {"SECOND_OPINION_DB_LOCK_TIMEOUT": "  ", "SECOND_OPINION_CLOCK": " ", "SECOND_OPINION_TLS_PROXY": "on"}
    )
    assert config.db_lock_timeout == 15.0 and config.clock is None and config.tls_proxy is True
    assert load({"SECOND_OPINION_TLS_PROXY": "0"}).tls_proxy is False


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("SECOND_OPINION_TLS_PROXY", "maybe", "'maybe' is not one of 1/true/yes/on or 0/false/no/off"),
        ("SECOND_OPINION_SESSION_KEY", "short", "the key must be at least 32 bytes"),
        ("SECOND_OPINION_SECRET", "short", "the key must be at least 32 bytes (got 5)"),
        ("SECOND_OPINION_WEBHOOK_URL", "ftp://hooks", "'ftp://hooks' is not an http(s) URL"),
        ("SECOND_OPINION_WEBHOOK_URL", "ftp://u:pw@h", "'ftp://u:********@h' is not an http(s) URL"),
        ("SECOND_OPINION_RATE_CASE_TOKEN", "lots", "must be COUNT/SECONDS"),
        ("SECOND_OPINION_ORGANISATION", "umc utrecht!", "SECOND_OPINION_ORGANISATION: "),
        ("SECOND_OPINION_DB_POOL_TIMEOUT", "0", "must be a number of seconds above 0 to 3600"),
        ("SECOND_OPINION_DB_STATEMENT_TIMEOUT", "-1", "must be a number of seconds from 0 to 3600"),
        ("SECOND_OPINION_SEND_TIMEOUT", "5s", "'5s' is not a number of seconds above 0, at most 60"),
        ("SECOND_OPINION_CLOCK_TOLERANCE", "soon", "'soon' is not a number of seconds from 0 to 3600"),
    ],
)  # fmt: skip
def test_a_bad_value_is_one_error_naming_the_variable(variable: str, value: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        load({variable: value})
    assert str(refused.value).startswith(f"{variable}: ") and fragment in str(refused.value)
    assert "\n" not in str(refused.value)


def test_a_bad_clock_is_the_validation_error_it_always_was() -> None:
    with pytest.raises(ValidationError, match="SECOND_OPINION_CLOCK: 'next tuesday' is not an ISO 8601"):
        load({"SECOND_OPINION_CLOCK": "next tuesday"})


def test_a_flag_of_the_wrong_type_names_the_flag_and_a_key_never_shows() -> None:
    with pytest.raises(ConfigurationError, match=r"^--db: Input should be a valid string \(got '123'\)$"):
        load({}, db=123)
    with pytest.raises(ConfigurationError) as refused:
        load({}, secret=["x" * 40])
    assert str(refused.value).startswith("SECOND_OPINION_SECRET: ") and "xxxx" not in str(refused.value)


def test_key_material_and_url_passwords_are_masked() -> None:
    env = {"SECOND_OPINION_SECRET": KEY, "SECOND_OPINION_SESSION_KEY": "s" * 32,
           "SECOND_OPINION_DB": "postgresql://so:hunter2@db/so", "SECOND_OPINION_SECRET_FILE": "/etc/so/key",
           "SECOND_OPINION_WEBHOOK_URL": "https://hook:tok3n@example.org/x"}  # fmt: skip
    config = load(env)
    rows = {row["variable"]: row for row in effective(config)}
    assert rows["SECOND_OPINION_SECRET"]["value"] == MASK == rows["SECOND_OPINION_SESSION_KEY"]["value"]
    assert rows["SECOND_OPINION_DB"]["value"] == f"postgresql://so:{MASK}@db/so"
    assert rows["SECOND_OPINION_WEBHOOK_URL"]["value"] == f"https://hook:{MASK}@example.org/x"
    assert rows["SECOND_OPINION_SECRET_FILE"]["value"] == "/etc/so/key"  # a path is no secret
    dumped = json.dumps(effective(config)) + repr(config) + str(config)
    assert KEY not in dumped and "hunter2" not in dumped and "s" * 32 not in dumped and "tok3n" not in dumped
    assert set(rows) == {PREFIX + name.upper() for name in Settings.model_fields}


def test_bootstrap_reads_the_settings_object() -> None:
    assert bootstrap.identity_key_from_env({"SECOND_OPINION_SECRET": KEY}) == KEY.encode()
    assert bootstrap.database_url(None, {"SECOND_OPINION_DB": "memory://"}) == "memory://"
    assert bootstrap.timeouts_from_env({"SECOND_OPINION_DB_LOCK_TIMEOUT": "0.5"}).lock == 0.5
    assert [c.name for c in bootstrap.channels_from_env({"SECOND_OPINION_WEBHOOK_URL": "https://x.example"})] == [
        "log", "webhook"]  # fmt: skip


def test_a_token_in_a_urls_query_is_masked_as_its_password_is() -> None:
    from second_opinion.settings import masked_url

    assert masked_url("https://hooks.example/in?token=SEKRET") == f"https://hooks.example/in?{MASK}"
    assert masked_url("https://u:pw@idp.example/jwks?key=k") == f"https://u:{MASK}@idp.example/jwks?{MASK}"
    assert masked_url("postgresql://u:pw@db/x?sslmode=require") == f"postgresql://u:{MASK}@db/x?sslmode=require"
    assert masked_url("sqlite:///cases.sqlite3") == "sqlite:///cases.sqlite3"
    shown = repr(load({"SECOND_OPINION_OIDC_JWKS": "https://idp.example/jwks?key=SEKRET"}))
    assert "SEKRET" not in shown
