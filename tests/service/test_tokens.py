"""API tokens: the secret is shown once and stored only as a hash; unknown, revoked or missing
tokens are refused with a reason that never echoes the secret."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest

from tests.cli.test_cli import Cli
from tests.conftest import BACKENDS
from workflow import CaseService, ValidationError
from workflow.access.tokens import hash_secret
from workflow.errors import Unauthenticated
from workflow.service.tokens import TokenService


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_create_authenticate_revoke(service: CaseService, clock) -> None:  # type: ignore[no-untyped-def]
    tokens = TokenService(service.runtime)
    secret, token = tokens.create("desk-7", "coordinator", "umcu-desk")
    assert secret.startswith("sotk_") and len(secret) > 40 and token.token_hash == hash_secret(secret)
    who = tokens.authenticate(secret)
    assert (who.actor, who.role, who.organisation) == ("desk-7", "coordinator", "umcu-desk")
    assert [t.id for t in tokens.list()] == [token.id]
    revoked = tokens.revoke(token.id)
    assert revoked.revoked_at == clock.now()
    with pytest.raises(Unauthenticated, match="revoked"):
        tokens.authenticate(secret)
    assert tokens.revoke(token.id).revoked_at == revoked.revoked_at  # revoking twice changes nothing


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
@pytest.mark.parametrize(
    ("secret", "reason"), [(None, "no bearer token"), ("", "no bearer token"), ("sotk_guess", "not known")]
)
def test_bad_secrets_are_refused_without_echo(service: CaseService, secret: str | None, reason: str) -> None:
    with pytest.raises(Unauthenticated, match=reason) as refused:
        TokenService(service.runtime).authenticate(secret)
    assert "sotk_guess" not in str(refused.value)


@pytest.mark.parametrize("db_url", ["memory"], indirect=True)
@pytest.mark.parametrize(
    ("actor", "role", "org", "field"),
    [("a", "coordinator", "org-1", "actor id"), ("desk-7", "system", "org-1", "role"),
     ("desk-7", "boss", "org-1", "role"), ("desk-7", "auditor", "o/1", "organisation")],
)  # fmt: skip
def test_bad_token_requests_are_refused(service: CaseService, actor: str, role: str, org: str, field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        TokenService(service.runtime).create(actor, role, org)
    assert TokenService(service.runtime).list() == []


def test_cli_prints_the_secret_once_and_stores_only_its_hash(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cli = Cli(tmp_path / "tokens.sqlite3")
    cli.run("init")
    created = cli.run("token", "create", "--actor", "zc-9", "--role", "care_consultant", "--org", "cz-desk")
    secret = created.stdout.strip()
    listed = cli.json("token", "list")
    assert [(t["actor"], t["role"], t["organisation"], t["revoked_at"]) for t in listed] == [
        ("zc-9", "care_consultant", "cz-desk", None)]  # fmt: skip
    assert secret not in cli.run("token", "list").stdout
    with closing(sqlite3.connect(cli.path)) as conn:
        dump = "\n".join(conn.iterdump())
    assert secret not in dump and hash_secret(secret) in dump
    assert cli.run("token", "revoke", listed[0]["id"]).stdout.startswith(f"token {listed[0]['id']} revoked")
    assert cli.json("token", "list")[0]["revoked_at"] is not None
    error = cli.run("token", "revoke", "tok-nope", code=1).stderr
    assert "'tok-nope' is not a token id" in error and error.count("\n") == 1
    assert "cannot hold a token" in cli.run("token", "create", "--actor", "x-1", "--role", "system", "--org", "cz-desk",
                                            code=1).stderr  # fmt: skip
