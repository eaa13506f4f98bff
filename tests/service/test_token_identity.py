"""Issue 19: tokens expire, hold scopes that only narrow their role, and note their last use at most
once a minute; every access record names the channel and the credential of the read (issue 17)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import BACKENDS
from workflow import CaseService, ValidationError
from workflow.access import log as access_log
from workflow.access.rules import Principal
from workflow.access.tokens import ALL_SCOPES, DEFAULT_LIFETIME, MAX_LIFETIME, hash_secret, role_scopes
from workflow.audit.chain import GENESIS, canonical
from workflow.cases.definitions import DEFINITION
from workflow.errors import MissingScope, Unauthenticated
from workflow.service.access import AccessService
from workflow.service.tokens import TokenService

ORG = "org-a"


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_a_token_expires_after_its_default_lifetime(service: CaseService, clock) -> None:  # type: ignore[no-untyped-def]
    tokens = TokenService(service.runtime)
    secret, token = tokens.create("desk-1", "coordinator", ORG)
    assert token.expires_at == clock.now() + DEFAULT_LIFETIME == tokens.list()[0].expires_at
    clock.advance(DEFAULT_LIFETIME - timedelta(seconds=1))
    assert tokens.authenticate(secret).id == token.id
    clock.advance(timedelta(seconds=1))
    with pytest.raises(Unauthenticated, match="expired") as refused:
        tokens.authenticate(secret)
    assert getattr(refused.value, "reason", None) == "expired" and secret not in str(refused.value)
    with pytest.raises(Unauthenticated, match="expired"):  # a web session holding the token's id ends too
        tokens.active(token.id)


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
@pytest.mark.parametrize(
    ("expires_in", "expires_at", "expected"),
    [("12h", None, timedelta(hours=12)), ("4w", None, timedelta(weeks=4)), ("366d", None, MAX_LIFETIME),
     (None, "2026-11-24", timedelta(hours=14)),  # the clock is 2026-11-23T09:00Z; midnight in Amsterdam is 23:00Z
     (None, "2026-11-23T12:00:00Z", timedelta(hours=3)), (None, "2026-11-23T12:00", timedelta(hours=2))],
)  # fmt: skip
def test_the_expiry_is_what_was_asked(service: CaseService, clock, expires_in, expires_at, expected) -> None:  # type: ignore[no-untyped-def]
    _, token = TokenService(service.runtime).create("desk-1", "coordinator", ORG, expires_in=expires_in,
                                                    expires_at=expires_at)  # fmt: skip
    assert token.expires_at == clock.now() + expected


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
@pytest.mark.parametrize(
    ("expires_in", "expires_at", "problem"),
    [("367d", None, "at most 366 days"), ("0d", None, "not in the future"), ("90 days", None, "not a lifetime"),
     (None, "2026-11-23", "not in the future"), (None, "tomorrow", "not a date"), ("1d", "2026-12-01", "not both")],
)  # fmt: skip
def test_a_bad_expiry_is_refused_and_nothing_is_created(service: CaseService, expires_in, expires_at, problem) -> None:  # type: ignore[no-untyped-def]
    tokens = TokenService(service.runtime)
    with pytest.raises(ValidationError, match=problem):
        tokens.create("desk-1", "coordinator", ORG, expires_in=expires_in, expires_at=expires_at)
    assert tokens.list() == []


def test_scopes_are_bounded_by_the_role() -> None:
    assert role_scopes(DEFINITION, "auditor") == ("cases:read", "cases:write", "audit:read", "reports:read")
    assert role_scopes(DEFINITION, "coordinator")[-1] == "webhooks:admin"  # the role that manages subscriptions
    assert role_scopes(DEFINITION, "gp") == ("cases:read", "cases:write")
    assert role_scopes(DEFINITION, "patient") == ("cases:read", "cases:write", "audit:read")
    assert role_scopes(DEFINITION, "system") == ()


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
def test_a_scope_the_role_cannot_use_or_that_does_not_exist_is_refused(service: CaseService) -> None:
    tokens = TokenService(service.runtime)
    with pytest.raises(ValidationError, match="'gp' cannot use 'reports:read'"):
        tokens.create("gp-1", "gp", ORG, scopes=["cases:read", "reports:read"])
    with pytest.raises(ValidationError, match="'cases:delete' is not a scope"):
        tokens.create("gp-1", "gp", ORG, scopes=["cases:delete"])
    with pytest.raises(ValidationError, match="at least one scope"):
        tokens.create("gp-1", "gp", ORG, scopes=[])
    assert tokens.list() == []
    _, token = tokens.create("gp-1", "gp", ORG, scopes=["cases:write", "cases:read"])
    assert token.scopes == ("cases:read", "cases:write")  # table order, whatever order they were asked in


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_a_missing_scope_is_refused_naming_it_and_logged(service: CaseService) -> None:
    tokens, access = TokenService(service.runtime), AccessService(service.runtime)
    _, desk = tokens.create("desk-1", "coordinator", ORG)
    case_id = access.open_case(Principal(desk), "PX-0001").case_id
    _, reader = tokens.create("desk-2", "coordinator", ORG, scopes=["cases:read"])
    _, auditor = tokens.create("aud-1", "auditor", ORG, scopes=["cases:read"])
    assert access.case(Principal(reader), case_id)[0].id == case_id  # its scope: allowed
    with pytest.raises(MissingScope, match="'cases:write'") as refused:
        access.fire(Principal(reader), case_id, "cancel", reason="no longer needed")
    assert refused.value.scope == "cases:write"
    with pytest.raises(MissingScope, match="'audit:read'"):
        access.export(Principal(auditor))
    with pytest.raises(MissingScope, match="'reports:read'"):
        access.report(Principal(auditor))
    assert service.case(case_id).state == "requested"  # nothing was fired
    with service.unit_of_work(False) as uow:
        denied = [(r.kind, r.credential) for r in uow.access.all() if r.outcome == access_log.DENIED]
    assert denied == [("fire", reader.id), ("export", auditor.id), ("report", auditor.id)]


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_last_use_is_written_at_most_once_a_minute(service: CaseService, clock) -> None:  # type: ignore[no-untyped-def]
    tokens = TokenService(service.runtime)
    secret, token = tokens.create("desk-1", "coordinator", ORG)
    assert tokens.list()[0].last_used_at is None
    first = clock.now()
    tokens.authenticate(secret)
    clock.advance(timedelta(seconds=59))
    assert tokens.authenticate(secret).last_used_at == first  # within the minute: no write
    assert tokens.list()[0].last_used_at == first
    clock.advance(timedelta(seconds=1))
    tokens.authenticate(secret)
    assert tokens.list()[0].last_used_at == first + timedelta(minutes=1)
    with service.unit_of_work(True) as uow:  # two requests that both read the old value: the store writes once
        uow.tokens.touch(token.id, clock.now() + timedelta(seconds=5), clock.now() - timedelta(minutes=1))
        uow.commit()
    assert tokens.list()[0].last_used_at == first + timedelta(minutes=1)


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_access_records_carry_channel_and_credential_and_verify(service: CaseService) -> None:
    tokens, access = TokenService(service.runtime), AccessService(service.runtime)
    _, desk = tokens.create("desk-1", "coordinator", ORG)
    case_id = access.open_case(Principal(desk), "PX-0001").case_id
    access.case(Principal(desk, client="10.0.0.7"), case_id)
    access.case(Principal(desk, via="web"), case_id)
    with service.unit_of_work(False) as uow:
        records = uow.access.all()
    assert [(r.channel, r.credential, r.encoding) for r in records] == [
        ("api", desk.id, access_log.ENCODING_VERSION),
        ("web", desk.id, access_log.ENCODING_VERSION),
    ]
    assert access.verify_log() == (2, [])
    forged = replace(records[1], credential="tok-someoneelse")  # the credential is in the hash
    assert access_log.verify_chain([records[0], forged]) == [
        f"access record {records[1].sequence}: its content does not match its hash (it was edited: credential "
        "differs from its hashed body)"
    ]


def test_records_before_the_channel_verify_as_before() -> None:
    """A record of encoding 1 is hashed over exactly the bytes it always was (sorted-key JSON, no
    channel): the stored logs of before revision 0015 keep verifying."""
    at = datetime(2026, 11, 1, 9, tzinfo=UTC)
    old = access_log.seal(at=at, actor_id="dr-1", actor_role="gp", organisation=ORG, on_behalf_of=None, kind="case",
                          outcome="granted", client=None, case_id="c1", patient_ref="PX-1", case_organisation=ORG,
                          prev_hash=GENESIS)  # fmt: skip
    assert old.encoding == 1 and access_log.hash_input(old) == canonical(access_log.hashed_fields(old))
    assert "channel" not in access_log.hashed_fields(old)
    new = replace(old, channel="api", credential="tok-abc", encoding=access_log.ENCODING_VERSION)
    assert access_log.hash_input(new).startswith(b'{"actor_id":"dr-1"') and b'"credential":"tok-abc"' in \
        access_log.hash_input(new)  # fmt: skip
    assert access_log.verify_chain([replace(old, sequence=1)]) == []
    assert access_log.verify_chain([replace(old, sequence=1, encoding=7)]) == [
        "access record 1: its encoding 7 is not one this version knows (edited?)"
    ]


def test_cli_creates_with_expiry_and_scopes_and_lists_them_in_amsterdam_time(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.cli.test_cli import Cli

    cli = Cli(tmp_path / "tokens.sqlite3")
    cli.run("init")
    made = cli.json("token", "create", "--actor", "desk-1", "--role", "coordinator", "--org", ORG,
                    "--expires-in", "30d", "--scope", "cases:read", "--scope", "reports:read")  # fmt: skip
    assert made["scopes"] == ["cases:read", "reports:read"] and made["last_used_at"] is None
    assert made["expires_at"].startswith("2026-12-23T09:00")  # the CLI's pinned clock is 2026-11-23T09:00Z
    table = cli.run("token", "list").stdout
    for shown in ("2026-12-23 10:00", "cases:read reports:read", "never"):  # expiry in Europe/Amsterdam
        assert shown in table, table
    error = cli.run("token", "create", "--actor", "gp-1", "--role", "gp", "--org", ORG, "--scope", "audit:read",
                    code=1).stderr  # fmt: skip
    assert "'gp' cannot use 'audit:read'" in error and error.count("\n") == 1
    error = cli.run("token", "create", "--actor", "gp-1", "--role", "gp", "--org", ORG, "--expires-in", "2y",
                    code=1).stderr  # fmt: skip
    assert "not a lifetime such as 90d" in error


def test_tokens_from_before_the_migration_keep_working(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Revision 0015 gives existing tokens no expiry and every scope: their role bounds them as before."""
    from alembic import command
    from sqlalchemy import text

    from second_opinion import connect
    from storage import initialise
    from storage.db import make_engine
    from storage.migrate import alembic_config

    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    initialise(url)
    engine = make_engine(url)
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0014")
        conn.execute(text("INSERT INTO api_tokens (id, token_hash, actor, role, organisation, created_at) "
                          "VALUES ('tok-old', :h, 'desk-0', 'coordinator', 'org-a', '2026-01-01 00:00:00')"),
                     {"h": hash_secret("sotk_old")})  # fmt: skip
    engine.dispose()
    initialise(url)
    with connect(url) as service:
        token = TokenService(service.runtime).authenticate("sotk_old")
    assert (token.id, token.expires_at, token.scopes) == ("tok-old", None, ALL_SCOPES)
