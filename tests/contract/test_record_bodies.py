"""Records keep the text their hash is taken over (``body``, revision 0017): verification hashes
that stored text, and checks apart that every column says what it says.

What must hold on every backend: an edited column is found at its record and named, even though
every hash still matches (the body is untouched); an edited body is found by its hash; a record
from before the body existed verifies from its columns as it always did; and the quick check
(``orjson``, a tuple comparison) agrees with the field-by-field walk on generated values.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
import rfc8785
from alembic import command
from hypothesis import given, settings
from hypothesis import strategies as st

from second_opinion import connect
from storage import initialise
from storage.db import make_engine
from storage.ddl import append_only_ddl, drop_append_only_ddl
from storage.migrate import alembic_config
from tests.conftest import BACKENDS, DESK, SQL_BACKENDS, fire_example, sql_engine
from workflow.access import log as access_log
from workflow.audit import jcs
from workflow.audit.chain import GENESIS, AuditRecord, body_problem, compute_hash, hash_input, seal, stored_hash

AT = datetime(2026, 11, 2, 9, 30, 15, 123456, tzinfo=UTC)


def record(**changes: object) -> AuditRecord:
    fields: dict[str, object] = dict(
        case_id="so-1", seq=1, event="open", outcome="accepted", from_state=None, to_state="requested",
        actor_id="desk-1", actor_role="coordinator", on_behalf_of=None, occurred_at=AT, recorded_at=AT,
        idempotency_key=None, payload={"route": "domestic", "route_version": 2, "urgent": True},
        reason=None, refusal=None, prev_hash=GENESIS, channel="embedded:test", encoding=2,
    )  # fmt: skip
    return seal(**{**fields, **changes})


def test_a_sealed_record_keeps_its_hash_input_and_hashes_it() -> None:
    sealed = record()
    assert sealed.body is not None and sealed.body.encode() == hash_input(sealed)
    assert stored_hash(sealed) == compute_hash(sealed) == sealed.hash
    assert body_problem(sealed) is None


CHANGES = {
    "actor_id": "dr-forger", "actor_role": "gp", "case_id": "so-2", "channel": "cli:root@db", "event": "refer",
    "from_state": "referred", "idempotency_key": "k-1", "on_behalf_of": "pat-1", "outcome": "rejected",
    "prev_hash": "f" * 64, "reason": "another reason", "refusal": "no", "to_state": "withdrawn", "seq": 2,
    "occurred_at": datetime(2026, 11, 2, 9, 30, 15, tzinfo=UTC), "recorded_at": datetime(2027, 1, 1, tzinfo=UTC),
    "payload": {"route": "domestic", "route_version": 2, "urgent": 1},  # true and 1 are equal to Python only
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_every_field_edited_apart_from_its_body_is_named(name: str) -> None:
    sealed = record()
    edited = replace(sealed, **{name: CHANGES[name]})
    assert edited.body == sealed.body and stored_hash(edited) == edited.hash  # the hashes cannot tell
    problem = body_problem(edited)
    assert problem == f"contents do not match its hash (the record was altered: {name} differs from its hashed body)"


@pytest.mark.parametrize(
    ("payload", "edited"),
    [({"b": False}, {"b": 0}), ({"l": [1, True]}, {"l": [1, 1]}), ({"s": "1"}, {"s": 1}),
     ({"d": {}}, {"d": []}), ({"n": None}, {}), ({"a": 1}, {"a": 1, "b": None})],
)  # fmt: skip
def test_payload_values_are_compared_as_json_sees_them(payload: dict, edited: dict) -> None:
    sealed = record(payload=payload)
    assert body_problem(sealed) is None
    assert "payload differs" in (body_problem(replace(sealed, payload=edited)) or "")


def test_a_payload_held_in_memory_as_a_tuple_is_the_list_it_was_hashed_as() -> None:
    sealed = record(payload={"name_hmacs": ("a", "b"), "nested": {"z": 1, "a": (2,)}})
    assert body_problem(sealed) is None


def test_numbers_are_compared_by_value_as_jcs_writes_them() -> None:
    """JCS writes 2.0 as 2 (ECMAScript numbers): the two hash alike, so neither is an edit of the other."""
    sealed = record(payload={"n": 2.0, "m": 0.5})
    assert sealed.body is not None and '"n":2' in sealed.body
    assert body_problem(sealed) is None and body_problem(replace(sealed, payload={"n": 2, "m": 0.5})) is None
    assert compute_hash(replace(sealed, payload={"n": 2, "m": 0.5})) == sealed.hash


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("{not json", "its stored body is not JSON"),
        ("[]", "does not hold a record's fields"),
        ('{"v": 2}', "does not hold a record's fields"),
    ],
)
def test_a_body_that_is_not_a_record_is_named(body: str, problem: str) -> None:
    sealed = record()
    assert problem in (body_problem(replace(sealed, body=body)) or "")
    assert stored_hash(replace(sealed, body=body)) != sealed.hash


def test_instants_must_be_written_as_the_hash_input_writes_them() -> None:
    sealed = record()
    assert sealed.body is not None and '"occurred_at":"2026-11-02T09:30:15.123456Z"' in sealed.body
    for written in ("2026-11-02T09:30:15.123456+00:00", "2026-11-02T09:30:15,123456Z", "2026-11-02 09:30:15.123456Z"):
        other = sealed.body.replace("2026-11-02T09:30:15.123456Z", written, 1)
        assert "occurred_at differs" in (body_problem(replace(sealed, body=other)) or ""), written


def test_a_record_without_a_body_is_hashed_from_its_fields_as_before() -> None:
    old = replace(record(encoding=1), body=None)
    assert record(encoding=1).body is None  # encoding 1 never had a stored body
    assert stored_hash(old) == compute_hash(old) == old.hash and body_problem(old) is None
    assert stored_hash(replace(old, reason="edited")) != old.hash


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)  # fmt: skip


@settings(max_examples=300)
@given(st.dictionaries(st.text(max_size=4), JSON, max_size=4), st.dictionaries(st.text(max_size=4), JSON, max_size=4))
def test_the_quick_payload_check_agrees_with_the_walk(payload: dict, other: dict) -> None:
    try:
        sealed = record(payload=payload)
    except rfc8785.CanonicalizationError:  # a value JCS cannot carry (a lone surrogate): nothing to compare
        return
    assert body_problem(sealed) is None
    assert (body_problem(replace(sealed, payload=other)) is None) == jcs.same(jcs_loads(sealed), other)


BIG = st.integers(-(2**70), 2**70) | st.floats(min_value=-1e22, max_value=1e22) | st.sampled_from([1e21, 2.0**53])
ANY_JSON = st.recursive(
    st.none() | st.booleans() | BIG | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=6,
)  # fmt: skip


def hashes_alike(sealed: AuditRecord, payload: dict) -> bool:
    """The rule before stored bodies: the columns are untouched when the hash rebuilt from them matches."""
    try:
        return compute_hash(replace(sealed, payload=payload, body=None)) == sealed.hash
    except rfc8785.CanonicalizationError:  # data no record can be sealed with (an integer beyond 2^53)
        return False


@settings(max_examples=500)
@given(st.dictionaries(st.text(max_size=3), ANY_JSON, max_size=3), BIG, st.data())
def test_a_payload_passes_the_body_check_exactly_when_its_rebuilt_hash_matches(payload: dict, x: float, data) -> None:  # type: ignore[no-untyped-def]
    """Found by review: an integer beyond 2^53 in the column once equalled the double it rounds to in
    the body. The check against the body must accept what the rebuilt hash accepts, nothing more."""
    try:
        sealed = record(payload={**payload, "x": x})
    except rfc8785.CanonicalizationError:
        return
    near = int(x) + data.draw(st.sampled_from([-12345, -1, 0, 1, 12345]))  # the number as an integer, or beside it
    other = data.draw(st.sampled_from([{**payload, "x": x}, {**payload, "x": near}, {**payload, "x": float(near)},
                                       {**payload, "x": True}])
                      | st.dictionaries(st.text(max_size=3), ANY_JSON, max_size=3))  # fmt: skip
    assert (body_problem(replace(sealed, payload=other)) is None) == hashes_alike(sealed, other)


def test_an_integer_beyond_2_53_never_passes_for_the_double_in_the_body() -> None:
    sealed = record(payload={"x": 1e21})
    assert sealed.body is not None and '"x":1e+21' in sealed.body
    assert "payload differs" in (body_problem(replace(sealed, payload={"x": 10**21 + 12345})) or "")
    assert "payload differs" in (body_problem(replace(sealed, payload={"x": 10**21})) or "")
    doubled = record(payload={"x": 2.0**53})  # written "9007199254740992": read back, an integer JCS refuses
    assert doubled.body is not None and '"x":9007199254740992' in doubled.body
    assert body_problem(doubled) is None and "payload differs" in (body_problem(replace(doubled, payload={"x": 2**53}))
                                                                    or "")  # fmt: skip


def test_a_body_that_is_not_text_is_refused_not_crashed_on() -> None:
    sealed = record()
    assert sealed.body is not None
    blob = replace(sealed, body=sealed.body.encode())  # SQLite keeps a BLOB in a TEXT column
    assert stored_hash(blob) == "" and body_problem(blob) is not None


def jcs_loads(sealed: AuditRecord) -> object:
    import json

    assert sealed.body is not None
    return json.loads(sealed.body)["payload"]


def test_access_records_keep_their_body_and_name_an_edited_column() -> None:
    sealed = access_log.seal(at=AT, actor_id="dr-1", actor_role="gp", organisation="org-a", on_behalf_of=None,
                             kind="case", outcome="granted", client=None, case_id="c1", patient_ref="PX-1",
                             case_organisation="org-a", prev_hash=GENESIS, channel="api", credential="tok-1",
                             encoding=access_log.ENCODING_VERSION)  # fmt: skip
    assert sealed.body is not None and sealed.body.encode() == access_log.hash_input(sealed)
    assert access_log.verify_chain([sealed]) == []
    problems = access_log.verify_chain([replace(sealed, client="10.0.0.9")])
    assert problems == ["access record None: its content does not match its hash (it was edited: client differs "
                        "from its hashed body)"]  # fmt: skip
    assert access_log.verify_chain([replace(sealed, body=sealed.body.replace("dr-1", "dr-2"))]) == [
        "access record None: its content does not match its hash (it was edited)"
    ]


# --- on every backend ----------------------------------------------------------------------------


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_every_stored_record_has_its_body(service) -> None:  # type: ignore[no-untyped-def]
    case_id = service.open_case("PX-1", actor=DESK).case_id
    fire_example(service, case_id, "give_consent")
    records = service.history(case_id)
    assert len(records) == 2
    assert all(r.body is not None and r.body.encode() == hash_input(r) for r in records)
    assert service.verify().ok


COLUMN_EDITS = [
    ("actor_id", "UPDATE audit_records SET actor_id = 'dr-forger' WHERE seq = 2"),
    ("reason", "UPDATE audit_records SET reason = 'another reason' WHERE seq = 2"),
    ("channel", "UPDATE audit_records SET channel = 'api:tok-someone' WHERE seq = 2"),
    ("payload", "UPDATE audit_records SET payload = REPLACE(payload, 'written', 'oral') WHERE seq = 2"),
    ("recorded_at", "UPDATE audit_records SET recorded_at = {moment} WHERE seq = 2"),
]  # fmt: skip


def owner(url: str, *statements: str) -> None:
    """Statements as the database's owner runs them, the append-only triggers lifted meanwhile."""
    engine = sql_engine(url)
    dialect = engine.dialect.name
    try:
        with engine.begin() as conn:
            for ddl in drop_append_only_ddl(dialect, "audit_records"):
                conn.exec_driver_sql(ddl)
            for statement in statements:
                conn.exec_driver_sql(statement)
            for ddl in append_only_ddl(dialect, "audit_records"):
                conn.exec_driver_sql(ddl)
    finally:
        engine.dispose()


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
@pytest.mark.parametrize(("column", "statement"), COLUMN_EDITS, ids=[c for c, _ in COLUMN_EDITS])
def test_a_column_edited_behind_the_library_is_named_though_every_hash_matches(
    service, db_url: str, column: str, statement: str  # type: ignore[no-untyped-def]
) -> None:
    case_id = service.open_case("PX-1", actor=DESK).case_id
    fire_example(service, case_id, "give_consent")
    moment = "'2020-01-01 00:00:00.000000'" if db_url.startswith("sqlite") else "'2020-01-01 00:00:00+00'"
    owner(db_url, statement.format(moment=moment))
    report = service.verify()
    (finding,) = report.findings
    assert finding.seq == 2
    assert finding.problem == f"contents do not match its hash (the record was altered: {column} differs from its " \
        "hashed body)"  # fmt: skip


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
def test_an_edited_body_is_found_by_its_hash(service, db_url: str) -> None:  # type: ignore[no-untyped-def]
    case_id = service.open_case("PX-1", actor=DESK).case_id
    fire_example(service, case_id, "give_consent")
    owner(db_url, "UPDATE audit_records SET body = REPLACE(body, 'pat-1', 'pat-2') WHERE seq = 2")
    (finding,) = service.verify().findings
    assert (finding.seq, finding.problem) == (2, "contents do not match its hash (the record was altered)")


@pytest.mark.parametrize("db_url", SQL_BACKENDS, indirect=True)
def test_a_removed_body_falls_back_to_the_columns_and_still_catches_an_edit(service, db_url: str) -> None:  # type: ignore[no-untyped-def]
    """Removing the body is no way around it: the hash is then rebuilt from the columns."""
    case_id = service.open_case("PX-1", actor=DESK).case_id
    fire_example(service, case_id, "give_consent")
    owner(db_url, "UPDATE audit_records SET body = NULL WHERE seq = 2")
    assert service.verify().ok
    owner(db_url, "UPDATE audit_records SET reason = 'edited' WHERE seq = 2")
    (finding,) = service.verify().findings
    assert (finding.seq, finding.problem) == (2, "contents do not match its hash (the record was altered)")


@pytest.mark.parametrize("kind", SQL_BACKENDS)
def test_records_from_before_revision_0017_verify_beside_new_ones(kind: str, request: pytest.FixtureRequest) -> None:
    """Downgraded to 0016 (the bodies dropped), upgraded again: the old records have none and verify
    from their columns; records written after have one; an edit is found in either kind."""
    url = request.getfixturevalue("pg_url" if kind == "postgres" else "sqlite_url")
    initialise(url)
    with connect(url) as service:
        old = service.open_case("PX-1", actor=DESK).case_id
        fire_example(service, old, "give_consent")
    engine = make_engine(url)
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0016")
    engine.dispose()
    assert initialise(url) == "0017"
    with connect(url) as service:
        assert [r.body for r in service.history(old)] == [None, None]
        new = service.open_case("PX-2", actor=DESK).case_id
        fire_example(service, old, "record_circumstances")
        assert [r.body is None for r in service.history(old)] == [True, True, False]
        assert all(r.body is not None for r in service.history(new))
        assert service.verify().ok
    owner(url, "UPDATE audit_records SET actor_id = 'x' WHERE seq = 1")
    with connect(url) as service:
        found = {f.case_id: (f.seq, f.problem) for f in service.verify().findings}
    assert found == {
        old: (1, "contents do not match its hash (the record was altered)"),
        new: (1, "contents do not match its hash (the record was altered: actor_id differs from its hashed body)"),
    }
