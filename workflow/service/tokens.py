"""API tokens: created (the secret shown once, with an expiry and scopes), listed, revoked, and a
bearer secret authenticated (refused once expired; its last use noted at most once a minute)."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import replace

from workflow.access.tokens import (
    LAST_USE_EVERY,
    NOT_FOR_TOKENS,
    PREFIX,
    ApiToken,
    check_scopes,
    expiry,
    hash_secret,
    new_token_id,
)
from workflow.clock import utc_iso
from workflow.errors import Unauthenticated, ValidationError
from workflow.service import inputs
from workflow.service.runtime import Runtime


class TokenService:
    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime

    def create(
        self,
        actor: str,
        role: str,
        organisation: str,
        *,
        expires_in: str | None = None,
        expires_at: str | None = None,
        scopes: Iterable[str] | None = None,
    ) -> tuple[str, ApiToken]:
        """A new token; the returned secret is the only copy there will ever be. It expires as
        :func:`~workflow.access.tokens.expiry` says (90 days unless told, a year at most) and holds
        ``scopes`` (None: every scope its role can use)."""
        inputs.check_id("actor id", actor)
        inputs.check_id("organisation", organisation)
        allowed = [r for r in self._rt.definition.role_names if r not in NOT_FOR_TOKENS]
        if role not in allowed:
            raise ValidationError("role", f"{role!r} cannot hold a token; one of: {', '.join(allowed)}")
        granted = check_scopes(self._rt.definition, role, scopes)
        now = self._rt.clock.now()
        until = expiry(now, expires_in, expires_at)
        secret = PREFIX + secrets.token_urlsafe(32)
        token = ApiToken(new_token_id(), hash_secret(secret), actor, role, organisation, now, expires_at=until,
                         scopes=granted)  # fmt: skip
        with self._rt.uow(True) as uow:
            uow.tokens.add(token)
            uow.commit()
        return secret, token

    def list(self) -> list[ApiToken]:
        with self._rt.uow(False) as uow:
            return uow.tokens.list()

    def revoke(self, token_id: str) -> ApiToken:
        unknown = ValidationError("token", f"{token_id!r} is not a token id (see `second-opinion token list`)")
        if not inputs.IDENTIFIER.fullmatch(token_id):  # no token has it: the database is not asked
            raise unknown
        with self._rt.uow(True) as uow:
            found = uow.tokens.get(token_id)
            if found is None:
                raise unknown
            if found.revoked_at is not None:
                return found
            revoked = replace(found, revoked_at=self._rt.clock.now())
            uow.tokens.save(revoked)
            uow.commit()
            return revoked

    def authenticate(self, secret: str | None) -> ApiToken:
        """The token a bearer secret belongs to, or :class:`Unauthenticated` saying why not."""
        if not secret:
            raise Unauthenticated("no bearer token was given")
        with self._rt.uow(False) as uow:
            found = uow.tokens.by_hash(hash_secret(secret))
        return self._used(self._usable(found))

    def _usable(self, found: ApiToken | None) -> ApiToken:
        """The token if it may be used now; else :class:`Unauthenticated` saying why (about this
        token only: the caller proved they hold it, or is told nothing of any other)."""
        if found is None:
            raise Unauthenticated("the token is not known")
        if found.revoked_at is not None:
            raise Unauthenticated("the token was revoked")
        if found.expired(self._rt.clock.now()):
            assert found.expires_at is not None
            when = utc_iso(found.expires_at)
            raise Unauthenticated(f"the token expired at {when}; ask for a new one", reason="expired")
        return found

    def _used(self, token: ApiToken) -> ApiToken:
        """Note the use in ``last_used_at`` when the one noted is older than a minute
        (:data:`~workflow.access.tokens.LAST_USE_EVERY`): one write a minute per token, not one
        per request. The store's update is conditional too, so concurrent requests that all read
        an old value still write once (the last one to commit is a no-op)."""
        now = self._rt.clock.now()
        if token.last_used_at is not None and now - token.last_used_at < LAST_USE_EVERY:
            return token
        with self._rt.uow(True) as uow:
            uow.tokens.touch(token.id, now, now - LAST_USE_EVERY)
            uow.commit()
        return replace(token, last_used_at=now)

    def active(self, token_id: str) -> ApiToken:
        """The token with this id while it is not revoked nor expired: a web session holds the token's id,
        never its secret, and reads it again on every request (a revoked token ends the session)."""
        if not inputs.IDENTIFIER.fullmatch(token_id):
            raise Unauthenticated("the token is not known")
        with self._rt.uow(False) as uow:
            found = uow.tokens.get(token_id)
        return self._used(self._usable(found))
