"""The patient's name: registered at opening as keyed hashes of its words, then refused wherever it is
typed about the case, on every backend and through every way in, with nothing written.

The tokeniser and the screen are tested on their own first (particles, diacritics, whole words only),
then the service on each backend (a refused command leaves every table as it was), then the CLI's
``--patient-name-stdin``, the API's write-only ``patient_name`` and the server's request log.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from second_opinion import connect
from second_opinion.api.request_target import HIDDEN
from second_opinion.cli import app
from second_opinion.cli.serve import RequestLine
from tests.api_support import Api, problem
from tests.conftest import BACKENDS, DESK, SQL_BACKENDS, sql_engine
from tests.contract.test_audit_tamper import sql
from workflow import Actor, CaseService, ValidationError
from workflow.access.rules import WITHHELD
from workflow.errors import ConfigurationError, IdempotencyConflict
from workflow.privacy import NAME_PARTICLES, check_names, name_hashes, name_words
from workflow.service.runtime import Runtime
from workflow.service.views import Views

KEY = b"n" * 32
NAME = "Anna van der Berg-Müller"


def screen(text: Any, name: str = NAME, field: str = "reason") -> None:
    check_names({field: text}, KEY, name_hashes(name, KEY))


def refused(text: Any, name: str = NAME) -> bool:
    try:
        screen(text, name)
    except ValidationError:
        return True
    return False


# --- the tokeniser --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("van der Berg", ["berg"]),
        ("Jan de Vries", ["jan", "vries"]),
        ("Müller", ["muller"]),
        ("Muller", ["muller"]),
        ("Ångström-Øberg", ["angstrom", "oberg"]),  # transliterated (anyascii): NFKD left ø as it was
        ("Sørensen", ["sorensen"]),
        ("Łukasz Øster", ["lukasz", "oster"]),
        ("Ber\u200bg\u00ad", ["berg"]),  # invisible characters removed
        ("Anna\u3000Berg", ["anna", "berg"]),  # any Unicode space separates
        ("'t Hart", ["hart"]),
        ("Gruß", ["gruss"]),
        ("J. ten Brink", ["brink"]),
        ("Ludwig von Beethoven y Goya", ["ludwig", "beethoven", "goya"]),
        ("O'Neill", ["neill"]),
        ("K.Kuipers_2", ["kuipers"]),
    ],
)
def test_name_words_are_casefolded_without_diacritics_or_particles(name: str, words: list[str]) -> None:
    assert name_words(name) == words


def test_the_particles_are_a_table() -> None:
    assert {"van", "de", "der", "den", "ter", "ten", "von"} <= NAME_PARTICLES


@pytest.mark.parametrize(
    "text",
    ["spoke with Mrs Muller", "MÜLLER", "berg", "Anna", "K.Berg", "PX-Berg-1", "berg_2", "the Berg's file",
     "mu\u0308ller"],
)  # fmt: skip
def test_a_word_of_the_name_is_refused_however_it_is_written(text: str) -> None:
    assert refused(text)


@pytest.mark.parametrize(
    "text",
    ["bakkerij op de hoek", "Bergen op Zoom", "annamaria", "van der", "de", "AnnaBerg", "Berger", "ijsberg"],
)
def test_a_name_word_inside_another_word_and_particles_are_not_a_match(text: str) -> None:
    assert not refused(text)


def test_bakker_does_not_refuse_bakkerij() -> None:
    assert refused("gesproken met Bakker", "Bakker") and not refused("brood van de bakkerij", "Bakker")


def test_data_is_screened_at_any_depth_keys_and_values_named_without_the_value() -> None:
    """Named by the field given, never by the key or position inside it (see the next test)."""
    hashes = name_hashes("Jan Jansen", KEY)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"data": {"note": "called Jansen"}}, "data"),
        ({"data": {"Jansen": True}}, "data"),
        ({"data": {"a": [1, {"b": ["x", "JANSEN"]}]}}, "data"),
        ({"data": {"a": {"jansen": 1}}}, "data"),
        ({"reason": None, "actor id": "j.jansen"}, "actor id"),
    ]
    for fields, where in cases:
        with pytest.raises(ValidationError) as caught:
            check_names(fields, KEY, hashes)
        assert caught.value.field == where
        assert "jansen" not in str(caught.value).lower() and "registered name" in str(caught.value)
    check_names({"data": {"n": 1, "ok": [True, None, 1.5, "written"]}, "reason": "fine"}, KEY, hashes)


def test_without_a_registered_name_the_screen_does_nothing() -> None:
    check_names({"reason": "Jan Jansen"}, KEY, ())


def test_hashes_are_keyed_sorted_and_never_the_words() -> None:
    hashes = name_hashes(NAME, KEY)
    assert len(hashes) == 3 and list(hashes) == sorted(hashes)
    assert name_hashes(NAME, b"x" * 32) != hashes and name_hashes("anna BERG muller", KEY) == hashes
    assert not any(w in "".join(hashes) for w in ("anna", "berg", "muller"))
    assert not refused("Anna", "Berg") and refused("Berg", "Anna Berg")


@pytest.mark.parametrize("name", ["", "   ", "de", "J. v.d.", "Jan\nJansen", "x" * 201])
def test_a_name_with_nothing_to_screen_for_is_refused_without_repeating_it(name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        name_hashes(name, KEY)
    assert caught.value.field == "patient name"
    assert len(name.strip()) < 5 or name.strip()[:5] not in str(caught.value)  # "de" is in "besides"


# --- the service, on every backend ----------------------------------------------------------------------


@pytest.fixture
def keyed(db_url: str, clock: Any) -> Any:
    with connect(db_url, clock=clock, identity_key=KEY) as service:
        yield service


def _everything(service: CaseService) -> str:
    """What the service would show of all it holds: cases, audit records, keys, deadlines, access log."""
    with service.unit_of_work(False) as uow:
        cases = uow.cases.list()
        return repr((cases, [uow.audit.for_case(c.id) for c in cases], [uow.keys.get(k) for k in ("k-1", "intake")],
                     uow.deadlines.list(), uow.access.all()))  # fmt: skip


FIRE_REFUSALS: list[tuple[str, dict[str, Any]]] = [  # named by the fields given, never by the one that matched
    ("reason or actor id", {"event": "withdraw", "reason": "patient Anna asked"}),
    ("data or actor id", {"event": "contact_costs_team", "data": {"note": "called Mrs van der Berg"}}),
    ("data or actor id", {"event": "contact_costs_team", "data": {"Müller": True}}),
    ("data or actor id", {"event": "contact_costs_team", "data": {"a": [{"b": "MULLER"}]}}),
    ("actor id", {"event": "contact_costs_team", "actor": Actor("a.muller", "coordinator")}),
    ("actor id or on-behalf-of", {"event": "contact_costs_team", "actor": Actor("desk-1", "coordinator", "Berg.A")}),
    ("actor id or idempotency key", {"event": "contact_costs_team", "idempotency_key": "intake berg"}),
    ("event or actor id", {"event": "anna"}),
]


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_a_command_holding_the_registered_name_is_refused_and_writes_nothing(keyed: CaseService) -> None:
    case_id = keyed.open_case("PX-1", actor=DESK, patient_name=NAME).case_id
    before = _everything(keyed)
    for where, command in FIRE_REFUSALS:
        options = dict(command)
        event, actor = options.pop("event"), options.pop("actor", DESK)
        with pytest.raises(ValidationError) as caught:
            keyed.fire(case_id, event, actor=actor, **options)
        assert caught.value.field == where and "registered name" in str(caught.value)
        assert _everything(keyed) == before, f"{where}: something was written"
    # an unknown event that is no name is still refused as before, and that refusal is recorded
    with pytest.raises(Exception, match="unknown event"):
        keyed.fire(case_id, "tea", actor=DESK)
    assert len(keyed.history(case_id)) == 2
    # and what holds no word of the name goes through
    keyed.fire(case_id, "contact_costs_team", actor=DESK, reason="bakkerij op de Bergweg", idempotency_key="k-1")
    assert keyed.verify().ok


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_an_open_holding_the_name_it_registers_is_refused_and_writes_nothing(keyed: CaseService) -> None:
    attempts: list[tuple[str, dict[str, Any]]] = [
        ("patient reference or organisation or actor id", {"patient_ref": "PX-Berg"}),
        ("patient reference or organisation or actor id", {"organisation": "praktijk-muller"}),
        ("patient reference or organisation or actor id", {"actor": Actor("anna.b", "coordinator")}),
        ("patient reference or organisation or actor id or on-behalf-of",
         {"actor": Actor("desk-1", "coordinator", "muller-1")}),
        ("patient reference or organisation or actor id or idempotency key", {"idempotency_key": "intake Anna"}),
    ]
    for where, options in attempts:
        command = {"patient_ref": "PX-1", "actor": DESK, **options}
        with pytest.raises(ValidationError) as caught:
            keyed.open_case(command.pop("patient_ref"), patient_name=NAME, **command)
        assert caught.value.field == where
    assert keyed.cases() == [] and _everything(keyed) == repr(([], [], [None, None], [], []))


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_the_name_is_kept_as_hashes_in_the_chain_and_on_the_case(keyed: CaseService) -> None:
    case_id = keyed.open_case("PX-1", actor=DESK, patient_name=NAME, bsn="111222333").case_id
    hashes = name_hashes(NAME, KEY)
    assert keyed.case(case_id).name_hashes == hashes
    assert keyed.history(case_id)[0].payload["name_hmacs"] == list(hashes)
    assert "anna" not in _everything(keyed).lower() and "muller" not in _everything(keyed).lower()
    plain = keyed.open_case("PX-2", actor=DESK).case_id
    assert keyed.case(plain).name_hashes == () and "name_hmacs" not in keyed.history(plain)[0].payload
    keyed.fire(plain, "contact_costs_team", actor=DESK, reason="spoke with Anna van der Berg")  # not registered
    assert keyed.verify().ok


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
def test_name_hashes_moved_off_the_case_row_are_a_finding(keyed: CaseService, db_url: str) -> None:
    case_id = keyed.open_case("PX-1", actor=DESK, patient_name=NAME).case_id
    sql(db_url, "UPDATE cases SET name_hashes = '[]' WHERE id = :id", id=case_id)
    report = keyed.verify()
    assert not report.ok and "name hashes differ" in report.findings[0].problem
    engine = sql_engine(db_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM cases WHERE name_hashes = '[]'").scalar() == 1
    engine.dispose()


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_idempotency_tells_patients_apart_by_their_name(keyed: CaseService) -> None:
    first = keyed.open_case("PX-1", actor=DESK, patient_name=NAME, idempotency_key="intake")
    assert keyed.open_case("PX-1", actor=DESK, patient_name=NAME, idempotency_key="intake").replayed
    with pytest.raises(IdempotencyConflict):
        keyed.open_case("PX-1", actor=DESK, patient_name="Piet Jansen", idempotency_key="intake")
    assert [c.id for c in keyed.cases()] == [first.case_id]


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_a_name_needs_the_key_but_a_bad_name_is_bad_input_first(service: CaseService) -> None:
    with pytest.raises(ValidationError, match="patient name"):
        service.open_case("PX-1", actor=DESK, patient_name="de")
    with pytest.raises(ConfigurationError, match="SECOND_OPINION_SECRET"):
        service.open_case("PX-1", actor=DESK, patient_name=NAME)
    assert service.cases() == []


# --- the CLI --------------------------------------------------------------------------------------------

ENV = {"SECOND_OPINION_CLOCK": "2026-11-23T10:00:00+01:00", "SECOND_OPINION_ACTOR": "desk-7",
       "SECOND_OPINION_SECRET": "names-test-key-0123456789abcdef0123", "SECOND_OPINION_SECRET_FILE": None,
       "SECOND_OPINION_DB": None, "SECOND_OPINION_ROLE": None}  # fmt: skip


def test_cli_open_reads_the_bsn_then_the_name_from_stdin(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'names.sqlite3'}"
    runner = CliRunner(env=ENV)

    def cli(*args: str, stdin: str | None = None) -> Any:
        return runner.invoke(app, [*args, "--db", db], input=stdin)

    assert cli("init").exit_code == 0
    opened = cli("open", "--patient-ref", "PX-1", "--bsn-stdin", "--patient-name-stdin", "--json",
                 stdin="111222333\nAnna van der Berg\n")  # fmt: skip
    assert opened.exit_code == 0, opened.stderr
    case_id = json.loads(opened.stdout)["case_id"]
    assert [c["id"] for c in json.loads(cli("cases", "--bsn-stdin", "--json", stdin="111222333\n").stdout)] == [case_id]
    only_name = cli("open", "--patient-ref", "PX-2", "--patient-name-stdin", stdin="Piet Jansen\n")
    assert only_name.exit_code == 0, only_name.stderr
    no_name = cli("open", "--patient-ref", "PX-3", "--bsn-stdin", "--patient-name-stdin", stdin="111222333\n")
    assert no_name.exit_code == 1 and "--patient-name-stdin was given" in no_name.stderr
    fired = cli("fire", case_id, "contact_costs_team", "--reason", "called Mr Berg", "--json")
    assert fired.exit_code == 1 and "Berg" not in fired.stdout + fired.stderr
    assert json.loads(fired.stdout)["error"] == {
        "type": "ValidationError",
        "message": "invalid reason or actor id: contains a word of the patient's registered name; refer to the "
        "patient by the pseudonymous reference (the value is not repeated here)",
    }
    history = json.loads(cli("history", case_id, "--json").stdout)
    assert len(history) == 1 and len(history[0]["payload"]["name_hmacs"]) == 2
    refused_open = cli("open", "--patient-ref", "PX-Berg", "--patient-name-stdin", stdin="A. Berg\n")
    assert refused_open.exit_code == 1 and "invalid patient reference" in refused_open.stderr
    assert "Berg" not in refused_open.stderr
    without_key = runner.invoke(app, ["open", "--patient-ref", "PX-4", "--patient-name-stdin", "--db", db],
                                input="Anna\n", env={"SECOND_OPINION_SECRET": None})  # fmt: skip
    assert without_key.exit_code == 1 and "SECOND_OPINION_SECRET" in without_key.stderr
    assert len(json.loads(cli("cases", "--json").stdout)) == 2


# --- the API --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_api_patient_name_is_write_only_and_screens_the_case(keyed: CaseService) -> None:
    api = Api(keyed)
    desk = api.auth("coordinator", "org-a", "desk-1")
    opened = api.client.post("/cases", json={"patient_ref": "PX-1", "patient_name": NAME}, headers=desk)
    assert opened.status_code == 201 and "Anna" not in opened.text and "name" not in opened.text
    case_id = opened.json()["case_id"]
    body = problem(api.client.post(f"/cases/{case_id}/events", json={"event": "withdraw", "reason": "Anna asked"},
                                   headers=desk), 422, "validation-error")  # fmt: skip
    assert body["field"] == "reason or actor id" and "Anna" not in json.dumps(body)
    read = api.client.get(f"/cases/{case_id}", headers={**desk, "X-On-Behalf-Of": "A.Muller"})
    assert problem(read, 422, "validation-error")["field"] == "X-On-Behalf-Of"
    key = api.client.post(f"/cases/{case_id}/events", json={"event": "contact_costs_team"},
                          headers={**desk, "Idempotency-Key": "berg-1"})  # fmt: skip
    assert problem(key, 422, "validation-error")["field"] == "actor id or Idempotency-Key"
    bad = api.client.post("/cases", json={"patient_ref": "PX-2", "patient_name": "x" * 201}, headers=desk)
    assert problem(bad, 422, "validation-error")["field"] == "patient_name" and "xxxx" not in bad.text
    case = api.client.get(f"/cases/{case_id}", headers=desk).json()
    assert "Anna" not in json.dumps(case) and case["version"] == 1
    with keyed.unit_of_work(False) as uow:
        kept = repr((uow.access.all(), uow.audit.for_case(case_id)))
    assert "anna" not in kept.lower() and "muller" not in kept.lower() and len(keyed.history(case_id)) == 1
    schema = api.client.get("/openapi.json").json()["components"]["schemas"]["OpenCase"]["properties"]
    assert schema["patient_name"]["anyOf"][0]["writeOnly"] is True


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_api_patient_name_without_a_server_key_is_a_configuration_error(service: CaseService) -> None:
    api = Api(service)
    answer = api.client.post("/cases", json={"patient_ref": "PX-1", "patient_name": NAME},
                             headers=api.auth("coordinator"))  # fmt: skip
    assert problem(answer, 503, "configuration-error") and "Anna" not in answer.text
    assert service.cases() == []


# --- the server's request log -----------------------------------------------------------------------------


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_the_request_log_keeps_routes_case_ids_and_parameter_names_only(service: CaseService) -> None:
    line = RequestLine(Api(service).app)
    case_id = "so-abcdefghijklmnop"
    expected = {
        f"/cases/{case_id}/history": f"/cases/{case_id}/history",
        "/cases/Janssens": f"/cases/{HIDDEN}",
        "/cases/Jan%20Janssens/events": f"/cases/{HIDDEN}/events",
        "/fhir/AuditEvent?entity=Hermans": f"/fhir/AuditEvent?entity={HIDDEN}",
        "/cases?state=Hermans&overdue=true": f"/cases?state={HIDDEN}&overdue={HIDDEN}",
        "/cases?Hermans=1": f"/cases?{HIDDEN}={HIDDEN}",
        "/health": "/health",
        "/nowhere/Hermans": f"/{HIDDEN}/{HIDDEN}",
    }
    for typed, logged in expected.items():
        record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                                   ("127.0.0.1:5000", "GET", typed, "1.1", 404), None)  # fmt: skip
        assert line.filter(record) is True
        assert record.getMessage() == f'127.0.0.1:5000 - "GET {logged} HTTP/1.1" 404'


# --- the access log: whom the caller acts for ---------------------------------------------------------------


def _access_log(service: CaseService) -> list[Any]:
    with service.unit_of_work(False) as uow:
        return list(uow.access.all())


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_on_behalf_of_holding_the_name_is_never_stored_in_the_access_log(keyed: CaseService) -> None:
    api = Api(keyed)
    desk, auditor = api.auth("coordinator", "org-a", "desk-1"), api.auth("auditor", "org-a", "audit-1")
    opened = api.client.post("/cases", json={"patient_ref": "PX-1", "patient_name": NAME}, headers=desk)
    case_id = opened.json()["case_id"]
    patient = api.auth("patient", "org-a", "PX-1")
    named = {"X-On-Behalf-Of": "Berg.A"}
    # reads of cases the caller sees: refused whole, nothing written
    refused_reads = [("/cases", desk), ("/cases?state=requested", desk), ("/audit/export", auditor),
                     ("/audit/verify", auditor), ("/access-log", auditor), ("/access-log", patient),
                     (f"/cases/{case_id}/access-log", auditor)]  # fmt: skip
    for path, headers in refused_reads:
        before = _access_log(keyed)
        body = problem(api.client.get(path, headers={**headers, **named}), 422, "validation-error")
        assert body["field"] == "X-On-Behalf-Of" and "Berg" not in json.dumps(body), path
        assert _access_log(keyed) == before, f"{path}: something was logged"
    # about a case the caller does not see, or about no case: answered as ever, the name withheld
    elsewhere = api.auth("coordinator", "org-b", "desk-b")
    answered = [(f"/cases/{case_id}", elsewhere, 404), (f"/cases/{case_id}/history", elsewhere, 404),
                ("/cases/so-aaaaaaaaaaaaaaaa", desk, 404), ("/audit/export", desk, 403),
                ("/audit/verify", desk, 403), ("/cases?state=withdrawn", desk, 200)]  # fmt: skip
    for path, headers, status in answered:
        count = len(_access_log(keyed))
        assert api.client.get(path, headers={**headers, **named}).status_code == status, path
        written = _access_log(keyed)[count:]
        assert len(written) == 1 and written[0].on_behalf_of == WITHHELD, path
    assert written[0].case_id is None  # the empty list: about no case, withheld without screening
    # whom the caller acts for is kept when it is no word of the name of a case the caller sees; in a
    # record about a case they do not see, or about no case, it is always withheld (never screened)
    count = len(_access_log(keyed))
    assert api.client.get("/cases", headers={**desk, "X-On-Behalf-Of": "Piet.Jansen"}).status_code == 200
    assert api.client.get(f"/cases/{case_id}", headers={**elsewhere, "X-On-Behalf-Of": "Jansen"}).status_code == 404
    assert [r.on_behalf_of for r in _access_log(keyed)[count:]] == ["Piet.Jansen", WITHHELD]
    stored = repr(_access_log(keyed)).lower()
    assert "berg" not in stored and "anna" not in stored and "muller" not in stored


# --- the problem handlers' log lines --------------------------------------------------------------------------


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
@pytest.mark.parametrize("error", [RuntimeError("boom"), psycopg.OperationalError("gone")])
def test_a_failed_request_logs_its_path_without_what_the_caller_typed(
    service: CaseService, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, error: Exception
) -> None:
    api = Api(service)
    case_id = api.open()

    def fail(*_: Any, **__: Any) -> Any:
        raise error

    monkeypatch.setattr(Views, "case_file", fail)  # the one read of a case (and its rows) for these routes
    desk = api.auth("coordinator")
    with caplog.at_level(logging.WARNING, logger="second_opinion.api"):
        for path in ("/cases/Jansen", f"/cases/{case_id}/history", "/cases/111222333/deadlines"):
            assert api.client.get(path, headers=desk).status_code in (500, 503)
    lines = [r.getMessage() for r in caplog.records if r.name == "second_opinion.api"]
    assert lines and len(lines) == 3, lines
    assert "GET /cases/..." in lines[0] and f"GET /cases/{case_id}/history" in lines[1]
    assert "GET /cases/.../deadlines" in lines[2]
    assert not any("Jansen" in line or "111222333" in line for line in lines)


# --- issue 14: one normaliser, transliteration, one answer, no per-case work ---------------------------------


@pytest.mark.parametrize(
    ("name", "typed"),
    [("Sørensen", "Sorensen"), ("Sorensen", "SØRENSEN"), ("Łukasz", "Lukasz"), ("Øster", "oster"),
     ("Æbeltoft", "aebeltoft"), ("Đorđević", "Dordevic"), ("Berg", "B\u200berg"), ("Berg", "Ber\u00adg"),
     ("Anna Berg", "Anna\u200bx"), ("Berg", "\uff22\uff45\uff52\uff47"), ("Berg", "mrs\u3000berg")],
)  # fmt: skip
def test_a_name_is_refused_however_its_letters_are_written(name: str, typed: str) -> None:
    """Transliterated (anyascii) and read through the one normaliser: before, NFKD left ø, ł, æ and
    đ as they were, and invisible characters or fullwidth letters hid a word."""
    assert refused(typed, name)


def test_the_answer_is_the_same_whichever_word_matched_and_wherever() -> None:
    """One guess in each place: the refusal must not say which place held a word of the name
    (before, it named the first matching field down to its key or list index)."""
    hashes = name_hashes("Anna Berg", KEY)
    guesses = ["Anna", "Berg", "Piet", "Jansen"]
    answers = set()
    for where in range(4):  # put the one true guess (Berg) in a value, a key, a list item, the reason
        placed = ["Piet", "Jansen", "Klaas", "Berg"][where:] + ["Piet", "Jansen", "Klaas", "Berg"][:where]
        fields = {"reason": placed[0], "data": {"note": placed[1], placed[2]: True, "list": ["x", placed[3]]}}
        with pytest.raises(ValidationError) as caught:
            check_names(fields, KEY, hashes)
        answers.add((caught.value.field, str(caught.value)))
    assert len(answers) == 1 and {field for field, _ in answers} == {"reason or data"}
    assert guesses  # (the guesses themselves are never in the answer)
    assert not any(g.lower() in str(answers).lower() for g in guesses)


def _old_rule_hashes(name: str) -> tuple[str, ...]:
    """How name hashes were made before the normaliser (the rule as it stood, copied here)."""
    import hashlib
    import hmac
    import re
    import unicodedata

    plain = "".join(ch for ch in unicodedata.normalize("NFKD", name.casefold()) if not unicodedata.combining(ch))
    words = [w for w in re.findall(r"[^\W\d_]+", plain) if len(w) >= 2 and w not in NAME_PARTICLES]
    return tuple(sorted({hmac.new(KEY, b"patient-name-word:" + w.encode(), hashlib.sha256).hexdigest()
                         for w in words}))  # fmt: skip


@pytest.mark.parametrize("name", ["Sørensen-Łukasiewicz", "Øster Ångström", "Jan de Vries", "Müller", "中村"])
def test_name_hashes_stored_before_the_normaliser_still_refuse_the_name(name: str) -> None:
    """A case opened before the change keeps its hashes: each typed word is hashed by both rules."""
    old = _old_rule_hashes(name)
    with pytest.raises(ValidationError):
        check_names({"reason": f"spoke with {name}"}, KEY, old)
    check_names({"reason": "spoke with the desk"}, KEY, old)
    if name.isascii():  # the new rule gives the same words for what is plain ASCII
        assert old == name_hashes(name, KEY)


def test_a_case_in_the_pre_rebuild_fixture_still_refuses_its_name(tmp_path: Path) -> None:
    """``tests/fixtures/pre_rebuild.sqlite3`` holds case-0001, opened with the name "Jan de Vries"."""
    import shutil

    from storage import initialise
    from tests.fixtures import make_pre_rebuild as maker

    copy = tmp_path / maker.DB_NAME
    shutil.copy(Path(__file__).resolve().parents[1] / "fixtures" / maker.DB_NAME, copy)
    initialise(f"sqlite:///{copy}")  # what an operator runs after an upgrade (issue 16 added revision 0010)
    with connect(f"sqlite:///{copy}", identity_key=maker.KEY.encode()) as old:
        case = old.case("case-0001")
        assert len(case.name_hashes) == 2
        for typed in ("spoke with Mr de Vries", "JAN", "v\u200bries"):
            with pytest.raises(ValidationError, match="registered name"):
                old.fire("case-0001", "contact_costs_team", actor=DESK, reason=typed)
        assert len(old.history("case-0001")) == case.audit_count


@dataclass(frozen=True)
class Counting(Runtime):
    """A runtime that counts the identity key's uses (one per screen run) and its units of work."""

    keys: list[int] = field(default_factory=list)
    units: list[bool] = field(default_factory=list)

    def require_identity_key(self) -> bytes:
        self.keys.append(1)
        return super().require_identity_key()

    @classmethod
    def on(cls, service: CaseService) -> tuple[CaseService, Counting]:
        base = service.runtime
        runtime = cls(**{f.name: getattr(base, f.name) for f in dataclasses.fields(Runtime)})
        factory = base.uow
        object.__setattr__(runtime, "uow", lambda write: (runtime.units.append(write), factory(write))[1])
        return CaseService.on(runtime), runtime


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_a_not_found_with_on_behalf_of_does_the_same_work_whether_the_case_exists(keyed: CaseService) -> None:
    """Before: a 404 about no case screened X-On-Behalf-Of against every case of the caller's
    organisation (O(cases), seconds for a large one), a 404 about an existing case of another
    organisation against that one case: the time told whether a case existed. Counted here, not
    timed: the identity key's uses (one per screen run) and the units of work."""
    service, runtime = Counting.on(keyed)
    api = Api(service)
    theirs = api.client.post("/cases", json={"patient_ref": "PX-9", "patient_name": "Piet Jansen"},
                             headers=api.auth("coordinator", "org-a")).json()["case_id"]  # fmt: skip
    mine = api.auth("coordinator", "org-b", "desk-b")
    for n in range(3):  # the caller's own organisation holds cases with registered names
        api.client.post("/cases", json={"patient_ref": f"PX-{n}", "patient_name": f"Anna Berg{n}x"}, headers=mine)
    work = []
    for case_id in (theirs, "so-aaaaaaaaaaaaaaaa"):
        del runtime.keys[:], runtime.units[:]
        answer = api.client.get(f"/cases/{case_id}", headers={**mine, "X-On-Behalf-Of": "Jansen"})
        assert answer.status_code == 404
        work.append((len(runtime.keys), list(runtime.units)))
    assert work[0] == work[1] and work[0][0] == 0, work
    assert [r.on_behalf_of for r in _access_log(service)[-2:]] == [WITHHELD, WITHHELD]


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_a_list_screens_on_behalf_of_once_for_all_its_cases(keyed: CaseService) -> None:
    """O(words + cases): the typed words are hashed once, not once per case listed."""
    service, runtime = Counting.on(keyed)
    api = Api(service)
    desk = api.auth("coordinator", "org-a", "desk-1")
    for n in range(5):
        api.client.post("/cases", json={"patient_ref": f"PX-{n}", "patient_name": f"Anna Berg{n}x"}, headers=desk)
    del runtime.keys[:]
    listed = api.client.get("/cases", headers={**desk, "X-On-Behalf-Of": "Piet.Jansen"})
    assert listed.status_code == 200 and len(listed.json()) == 5
    assert len(runtime.keys) == 1
    refused = api.client.get("/cases", headers={**desk, "X-On-Behalf-Of": "Berg3x"})
    assert problem(refused, 422, "validation-error")["field"] == "X-On-Behalf-Of"
