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
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from workflow.clock import utc_iso

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




def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_token_id() -> str:
    return "tok-" + base64.b32encode(secrets.token_bytes(5)).decode().lower()
