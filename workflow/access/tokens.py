"""API tokens: who a caller is (actor, role, organisation), proven by a bearer secret.

The secret is shown once, when the token is created, and stored only as its SHA-256: a copy of
the database lets nobody call the API. SHA-256 without a salt is enough here because the secret
is 256 random bits, not a password a person chose. Revoking a token keeps its row, so an
auditor can still see who held it.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from workflow.cases.definitions import DEFINITION, Definition
from workflow.clock import Clock, utc_iso
from workflow.errors import Unauthenticated, ValidationError
from workflow.ports import UnitOfWorkFactory
from workflow.privacy import PATIENT_REF_PATTERN
from workflow.service.cases import CaseService

PREFIX = "sotk_"
NOT_FOR_TOKENS = ("system",)
"""Roles no token may carry: the library's own jobs act as ``system``, nobody calls in as it."""


@dataclass(frozen=True)
class ApiToken:
    id: str
    token_hash: str
    actor: str
    role: str
    organisation: str
    created_at: datetime
    revoked_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "actor": self.actor, "role": self.role, "organisation": self.organisation,
            "created_at": utc_iso(self.created_at),
            "revoked_at": None if self.revoked_at is None else utc_iso(self.revoked_at),
        }  # fmt: skip


_TOKEN_ID = PATIENT_REF_PATTERN
"""Token ids are ``tok-`` and 8 base-32 letters; any id of the shared identifier shape is looked up."""


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _new_id() -> str:
    return "tok-" + base64.b32encode(secrets.token_bytes(5)).decode().lower()


class TokenService:
    def __init__(self, cases: CaseService, definition: Definition = DEFINITION) -> None:
        self._uow: UnitOfWorkFactory = cases.unit_of_work
        self._clock: Clock = cases.clock
        self._definition = definition

    def create(self, actor: str, role: str, organisation: str) -> tuple[str, ApiToken]:
        """A new token; the returned secret is the only copy there will ever be."""
        CaseService._check_id("actor id", actor)
        CaseService._check_id("organisation", organisation)
        allowed = [r for r in self._definition.role_names if r not in NOT_FOR_TOKENS]
        if role not in allowed:
            raise ValidationError("role", f"{role!r} cannot hold a token; one of: {', '.join(allowed)}")
        secret = PREFIX + secrets.token_urlsafe(32)
        token = ApiToken(_new_id(), hash_secret(secret), actor, role, organisation, self._clock.now())
        with self._uow(True) as uow:
            uow.tokens.add(token)
            uow.commit()
        return secret, token

    def list(self) -> list[ApiToken]:
        with self._uow(False) as uow:
            return uow.tokens.list()

    def revoke(self, token_id: str) -> ApiToken:
        unknown = ValidationError("token", f"{token_id!r} is not a token id (see `second-opinion token list`)")
        if not _TOKEN_ID.fullmatch(token_id):  # no token has it: the database is not asked (it may refuse the bytes)
            raise unknown
        with self._uow(True) as uow:
            found = uow.tokens.get(token_id)
            if found is None:
                raise unknown
            if found.revoked_at is not None:
                return found
            revoked = replace(found, revoked_at=self._clock.now())
            uow.tokens.save(revoked)
            uow.commit()
            return revoked

    def authenticate(self, secret: str | None) -> ApiToken:
        """The token a bearer secret belongs to, or :class:`Unauthenticated` saying why not."""
        if not secret:
            raise Unauthenticated("no bearer token was given")
        with self._uow(False) as uow:
            found = uow.tokens.by_hash(hash_secret(secret))
        if found is None:
            raise Unauthenticated("the token is not known")
        if found.revoked_at is not None:
            raise Unauthenticated("the token was revoked")
        return found
