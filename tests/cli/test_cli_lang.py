"""``--lang en|nl`` and ``$SECOND_OPINION_LANG`` on the CLI's human output: every everyday command
speaks Dutch and English from the one catalogue, with the tables' labels and Dutch dates in
Europe/Amsterdam; ``--json`` is byte for byte the same in both; a language that cannot be read,
on the flag or in the environment, is one error line, exit 2, and nothing written."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from click.testing import Result
from typer.testing import CliRunner

from second_opinion.cli import app
from tests.conftest import CONSENT

CLOCK = "2026-11-23T10:00:00+01:00"
BASE_ENV: dict[str, str | None] = {
    "SECOND_OPINION_CLOCK": CLOCK, "SECOND_OPINION_ACTOR": "desk-cli", "SECOND_OPINION_DB": None,
    "SECOND_OPINION_ROLE": None, "SECOND_OPINION_LANG": None,
}  # fmt: skip
Run = Callable[..., Result]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Run, str]]:
    """One database for the module (the commands here read it; the writes are checked by version):
    a case referred to UMC Utrecht with its provider, consent and circumstances recorded."""
    db = f"sqlite:///{tmp_path_factory.mktemp('lang') / 'cli.sqlite3'}"
    runner = CliRunner()

    def run(*args: str, code: int = 0, env: dict[str, str | None] | None = None, db_flag: bool = True) -> Result:
        result = runner.invoke(app, [*args, *(["--db", db] if db_flag else [])], env={**BASE_ENV, **(env or {})})
        assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.output
        return result

    run("init")
    case_id = run("open", "--patient-ref", "PX-0009").stdout.strip()
    run("fire", case_id, "choose_provider", "--data", '{"provider": "umc-utrecht"}')
    run("fire", case_id, "give_consent", "--role", "patient", "--data", json.dumps(CONSENT))
    circumstances = {"treated_abroad": False, "insured_abroad": False, "has_pathology": True, "has_imaging": False}
    run("fire", case_id, "record_circumstances", "--data", json.dumps(circumstances))
    run("fire", case_id, "refer", "--role", "gp")
    yield run, case_id


def version(run: Run, case_id: str) -> int:
    return int(json.loads(run("show", case_id, "--json").stdout)["version"])


FACTS = json.dumps({"route": "domestic", "purpose": "treatment", "care_in_basic_package": True,
                    "same_specialty": False, "referral_by": "gp", "returns_to_first_provider": True,
                    "gp_or_obstetric_care": False, "age_band": "adult"})  # fmt: skip

# (command, words only the English output has, words only the Dutch output has)
COMMANDS: list[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = [
    (("show", "{case}"), ("patient ref", "referred", "receive_item", "2026-11-23 10:00"),
     ("patiëntreferentie", "verwezen", "dossierstuk ontvangen (receive_item)", "23 nov 2026 10:00",
      "UMC Utrecht (umc-utrecht, versie 1)")),
    (("next", "{case}", "--as", "second_opinion_doctor"),
     ("as second_opinion_doctor", "referred (version", "missing: letter, pathology", "guard checklist_complete"),
     ("verwezen (versie", "als second-opinionarts", "ontbreekt: brief (letter), pathologieverslag (pathology)",
      "voorwaarde checklist compleet")),
    (("cases",), ("patient ref", "referred", "2026-11-23 10:00"), ("Casussen", "verwezen", "23 nov 2026 10:00")),
    (("cases", "--overdue"), ("working days",), ("werkdagen",)),
    (("deadlines",), ("Deadlines", "reminders sent"), ("Termijnen", "herinneringen verstuurd")),
    (("history", "{case}"), ("History of case", "choose_provider", "accepted"),
     ("Geschiedenis van casus", "zorgaanbieder kiezen", "aanvaard", "patiënt")),
    (("fire", "{case}", "receive_item", "--check", "--data", '{"item": "letter"}'),
     ("check: accepted:", "referred -> referred", "nothing written"),
     ("controle: aanvaard:", "verwezen -> verwezen", "niets vastgelegd")),
    (("providers", "--route", "domestic"), ("patient seen", "when the doctor decides", "item: letter"),
     ("patiënt gezien", "als de arts dat besluit", "dossierstuk: brief (letter)", "Een ziekenhuis in Nederland")),
    (("coverage", "--policy", "pno-basic", "--facts", FACTS),
     ("route domestic", "condition"), ("route binnenland", "voorwaarde")),
    (("report", "--from", "2026-11-01", "--to", "2026-11-30"), ("lead time wd", "Report 2026-11-01"),
     ("doorlooptijd wd", "Rapportage 2026-11-01 tot en met")),
    (("outbox",), ("Outbox", "next attempt"), ("Uitgaande berichten", "volgende poging")),
    (("audit", "verify"), ("audit trail verified",), ("audittrail gecontroleerd",)),
    (("token", "list"), ("API tokens", "revoked"), ("API-tokens", "ingetrokken")),
]
NO_DB = {"providers", "coverage"}


def args_of(command: tuple[str, ...], case_id: str) -> tuple[str, ...]:
    return tuple(a.replace("{case}", case_id) for a in command)


@pytest.mark.parametrize(("command", "english", "dutch"), COMMANDS, ids=[" ".join(c[:2]) for c, _, _ in COMMANDS])
def test_each_command_speaks_both_languages(world, command, english, dutch) -> None:  # type: ignore[no-untyped-def]
    run, case_id = world
    args, db = args_of(command, case_id), command[0] not in NO_DB
    en = run(*args, "--lang", "en", db_flag=db).stdout
    nl = run(*args, "--lang", "nl", db_flag=db).stdout
    assert all(w in en for w in english), en
    assert all(w in nl for w in dutch), nl
    assert english[0] not in nl, nl
    assert run(*args, env={"SECOND_OPINION_LANG": "nl_NL.UTF-8"}, db_flag=db).stdout == nl  # the environment
    assert run(*args, env={"SECOND_OPINION_LANG": ""}, db_flag=db).stdout == en  # empty: English
    assert run(*args, db_flag=db).stdout == en  # unset: English, as before --lang
    assert run(*args, "--lang", "en", env={"SECOND_OPINION_LANG": "nl"}, db_flag=db).stdout == en  # the flag wins


JSON_COMMANDS = [c for c, _, _ in COMMANDS if c[0] not in ("audit",)] + [("audit", "verify")]


@pytest.mark.parametrize("command", JSON_COMMANDS, ids=lambda c: "-".join(c[:2]))
def test_json_is_the_same_in_both_languages(world, command) -> None:  # type: ignore[no-untyped-def]
    run, case_id = world
    args, db = args_of(command, case_id), command[0] not in NO_DB
    en = run(*args, "--json", "--lang", "en", db_flag=db).stdout
    assert en.lstrip().startswith(("{", "["))
    assert run(*args, "--json", "--lang", "nl", db_flag=db).stdout == en
    assert run(*args, "--json", env={"SECOND_OPINION_LANG": "nl"}, db_flag=db).stdout == en


def test_report_csv_is_the_same_in_both_languages(world) -> None:  # type: ignore[no-untyped-def]
    run, _ = world
    period = ("report", "--from", "2026-11-01", "--to", "2026-11-30", "--csv")
    assert run(*period, "--lang", "nl").stdout == run(*period, "--lang", "en").stdout


def test_fire_prints_labels_in_dutch_and_machine_names_in_json(world) -> None:  # type: ignore[no-untyped-def]
    run, case_id = world
    before = version(run, case_id)
    nl = run("fire", case_id, "assign", "--data", '{"assignee": "user:anna"}', "--lang", "nl").stdout
    assert nl.strip() == f"{case_id}: verwezen -> verwezen (versie {before + 1})"
    answer = json.loads(run("fire", case_id, "unassign", "--json", "--lang", "nl").stdout)
    assert answer["from_state"] == "referred" and answer["to_state"] == "referred"


BAD = [
    (("--lang", "fr"), {}, "--lang: 'fr'"),
    (("--lang", "NL_nl"), {}, "--lang: 'NL_nl'"),  # the flag takes en or nl exactly
    (("--lang", ""), {}, "--lang: ''"),
    ((), {"SECOND_OPINION_LANG": "fr_FR.UTF-8"}, "$SECOND_OPINION_LANG: 'fr_FR.UTF-8'"),
    ((), {"SECOND_OPINION_LANG": "dutch"}, "$SECOND_OPINION_LANG: 'dutch'"),
    (("--lang", "nl"), {"SECOND_OPINION_LANG": "xx"}, None),  # a good flag: the environment is not read
]


@pytest.mark.parametrize(("flag", "env", "named"), BAD)
@pytest.mark.parametrize("as_json", [False, True])
def test_a_bad_language_is_one_line_exit_2_and_nothing_written(world, flag, env, named, as_json) -> None:  # type: ignore[no-untyped-def]
    run, case_id = world
    before = version(run, case_id)
    fire = ("fire", case_id, "record_consultation", *(("--json",) if as_json else ()), *flag)
    if named is None:  # the fire itself is refused (not in this state): exit 1, as without --lang
        assert "error:" in run(*fire, code=1, env=env).stderr
        return
    result = run(*fire, code=2, env=env)
    assert result.stdout == ""  # not even a JSON error: a usage error, as click's own
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"error: {named} is not a language")
    assert result.stderr.rstrip().endswith("choose one of: en, nl")
    assert version(run, case_id) == before
    assert run("show", case_id, *flag, code=2, env=env).stdout == ""


def test_the_refused_value_is_bounded_and_never_shows_a_bsn(world) -> None:  # type: ignore[no-untyped-def]
    run, _ = world
    long = run("cases", "--lang", "x" * 10_000, code=2).stderr
    assert len(long) < 200 and "..." in long
    bsn = run("cases", code=2, env={"SECOND_OPINION_LANG": "111222333"}).stderr
    assert "111222333" not in bsn and bsn.startswith("error: $SECOND_OPINION_LANG:")


@pytest.mark.parametrize("value", ["nl", "NL", "nl_NL.UTF-8", "nl-BE", "en_GB.UTF-8", "en"])
def test_locale_style_values_in_the_environment(world, value: str) -> None:  # type: ignore[no-untyped-def]
    run, _ = world
    text = run("cases", env={"SECOND_OPINION_LANG": value}).stdout
    assert ("Casussen" in text) == value.lower().startswith("nl")


def test_help_names_the_option(world) -> None:  # type: ignore[no-untyped-def]
    run, _ = world
    assert "--lang" in run("cases", "--help", db_flag=False).stdout


def test_errors_stay_english(world) -> None:  # type: ignore[no-untyped-def]
    """Refusals come from the domain in English (docs/cli.md says so); the language changes none."""
    run, _ = world
    en = run("show", "so-doesnotexist", "--lang", "en", code=1).stderr
    assert run("show", "so-doesnotexist", "--lang", "nl", code=1).stderr == en



def test_the_other_commands_with_lang(world) -> None:  # type: ignore[no-untyped-def]
    run, _ = world
    nl = {"SECOND_OPINION_LANG": "nl"}
    assert "ingericht op schemaversie" in run("init", env=nl).stdout
    assert "initialised" in run("init", "--lang", "en", env=nl).stdout
    assert run("deadlines", "recompute", "--lang", "nl").stdout.strip() == "geen termijn gewijzigd"
    assert run("deadlines", "recompute").stdout.strip() == "no deadline changed"
    assert "toegangslog gecontroleerd" in run("access-log", "verify", "--lang", "nl").stdout
    token = json.loads(run("token", "create", "--actor", "zc-1", "--role", "care_consultant", "--org", "local",
                           "--json").stdout)["id"]  # fmt: skip
    assert run("token", "revoke", token, "--lang", "nl").stdout.strip() == f"token {token} ingetrokken"
    assert "zorgconsulent" in run("token", "list", "--lang", "nl").stdout
    run("outbox", "retry", "999999", "--lang", "xx", code=2)  # refused before the outbox is read
