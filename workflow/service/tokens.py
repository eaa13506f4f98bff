"""API tokens: created (the secret shown once), listed, revoked, and a bearer secret authenticated."""

from __future__ import annotations

import secrets
from dataclasses import replace

from workflow.access.tokens import NOT_FOR_TOKENS, PREFIX, ApiToken, hash_secret, new_token_id
from workflow.errors import Unauthenticated, ValidationError
from workflow.service import inputs
from workflow.service.runtime import Runtime


class TokenService:
    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime

    def create(self, actor: str, role: str, organisation: str) -> tuple[str, ApiToken]:
        """A new token; the returned secret is the only copy there will ever be."""
        inputs.check_id("actor id", actor)
        inputs.check_id("organisation", organisation)
        allowed = [r for r in self._rt.definition.role_names if r not in NOT_FOR_TOKENS]
        if role not in allowed:
            raise ValidationError("role", f"{role!r} cannot hold a token; one of: {', '.join(allowed)}")
        secret = PREFIX + secrets.token_urlsafe(32)
        token = ApiToken(new_token_id(), hash_secret(secret), actor, role, organisation, self._rt.clock.now())
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
        if found is None:
            raise Unauthenticated("the token is not known")
        if found.revoked_at is not None:
            raise Unauthenticated("the token was revoked")
        return found

    def active(self, token_id: str) -> ApiToken:
        """The token with this id while it is not revoked: a web session holds the token's id,
        never its secret, and reads it again on every request (a revoked token ends the session)."""
        if not inputs.IDENTIFIER.fullmatch(token_id):
            raise Unauthenticated("the token is not known")
        with self._rt.uow(False) as uow:
            found = uow.tokens.get(token_id)
        if found is None:
            raise Unauthenticated("the token is not known")
        if found.revoked_at is not None:
            raise Unauthenticated("the token was revoked")
        return found
