"""The ``token`` commands: create (the secret is printed once), list, revoke; registered in
:mod:`second_opinion.cli.root`.

Tokens are how callers of the HTTP service prove who they are: an actor id, a role and an
organisation. Only the SHA-256 of a secret is stored (see :mod:`workflow.access.tokens`). A token
expires (90 days unless told, 366 at most) and holds scopes, which narrow what its role may do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from workflow.access.tokens import ALL_SCOPES, DEFAULT_LIFETIME, MAX_LIFETIME, NOT_FOR_TOKENS, ApiToken
from workflow.cases.definitions import DEFINITION
from workflow.service.tokens import TokenService

from ..labels import Words
from ..render import new_table
from .common import Db, Json, Lang, emit, guard, open_service, out, words

if TYPE_CHECKING:
    from rich.table import Table

ROLES = ", ".join(r for r in DEFINITION.role_names if r not in NOT_FOR_TOKENS)


def create_command(
    actor: Annotated[str, typer.Option("--actor", help="Who calls: an id in your own system.")],
    role: Annotated[str, typer.Option("--role", help=f"One of: {ROLES}.")],
    org: Annotated[str, typer.Option("--org", help="The organisation whose cases the token reaches.")],
    expires_in: Annotated[str | None, typer.Option(
        "--expires-in", help=f"Lifetime such as 90d, 12h, 4w (default {DEFAULT_LIFETIME.days}d, at most "
        f"{MAX_LIFETIME.days}d).")] = None,
    expires_at: Annotated[str | None, typer.Option(
        "--expires-at", help="Expiry as a date (its first moment) or an ISO time; Europe/Amsterdam unless "
        "an offset is given.")] = None,
    scope: Annotated[list[str] | None, typer.Option(
        "--scope", help=f"Repeat for each scope (default: every scope the role can use): {', '.join(ALL_SCOPES)}.")]
    = None,
    db: Db = None,
    as_json: Json = False,
) -> None:
    """Create a token and print its secret: the only time it is shown."""
    with guard(as_json), open_service(db) as service:
        secret, token = TokenService(service.runtime).create(
            actor, role, org, expires_in=expires_in, expires_at=expires_at, scopes=scope
        )
        emit(as_json, {"token": secret, **token.as_dict()}, secret)


def list_command(db: Db = None, as_json: Json = False, lang: Lang = None) -> None:
    """Every token, revoked and expired ones included, with expiry, scopes and last use; never a secret."""
    w = words(lang)
    with guard(as_json), open_service(db) as service:
        tokens = TokenService(service.runtime).list()
        emit(as_json, [t.as_dict() for t in tokens], lambda: tokens_table(tokens, w))


def tokens_table(tokens: list[ApiToken], w: Words | None = None) -> Table:
    w = w or Words()
    table = new_table(title=w.t("API tokens"), caption=w.t("times in Europe/Amsterdam"))
    for column in (w.t("id"), w.t("actor"), w.t("role"), w.t("organisation"), w.t("created"), w.t("expires"),
                   w.t("scopes"), w.t("last used"), w.t("revoked")):  # fmt: skip
        table.add_column(column)
    for t in tokens:
        table.add_row(t.id, t.actor, w.role(t.role), t.organisation, w.when(t.created_at),
                      w.when(t.expires_at, w.t("never")), " ".join(t.scopes), w.when(t.last_used_at, w.t("never")),
                      w.when(t.revoked_at, ""))  # fmt: skip
    return table


def revoke_command(token: str, db: Db = None, lang: Lang = None) -> None:
    """Revoke a token by id; calls with it are refused from now on."""
    w = words(lang)
    with guard(), open_service(db) as service:
        revoked = TokenService(service.runtime).revoke(token)
        out.print(w.t("token %(id)s revoked") % {"id": revoked.id})
