"""Who may see what through the API: the role table's access columns, as the access layer reads them.

The rules are data. Each role of the definition table (:data:`workflow.cases.definitions.ROLES`)
says which cases its tokens see (``sees``) and which reads beyond a single case it may make
(``reads``); :data:`SCOPES` and :data:`CAPABILITIES` are those columns as lookup tables, which the
API docs print. The service that applies them is :class:`workflow.service.access.AccessService`.

- The organisation boundary holds for every token: a case of another organisation is answered
  with :class:`~workflow.errors.UnknownCase`, exactly as a case that does not exist, so that
  existence does not leak. The attempt is logged for the case's own organisation.
- A patient's token carries the patient's reference as its actor id and sees that case only.
- Which role may fire which event stays in the definition table (refusals are audited there).
- Whom the caller acts for (``X-On-Behalf-Of``) is logged, but never a word of the registered
  name of a case a record is about: refused for cases the caller sees, :data:`WITHHELD` in a record
  about a case they do not see or about no case (always, without screening: see ``acting_for``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from workflow import privacy
from workflow.access.tokens import ApiToken
from workflow.cases.case import Actor, Case
from workflow.cases.definitions import DEFINITION, ORGANISATION, OWN_CASE, READS, Definition
from workflow.errors import UnknownCase

__all__ = ["CAPABILITIES", "ORGANISATION", "OWN_CASE", "SCOPES", "WITHHELD", "NotVisible", "Principal", "sees"]


def scopes(definition: Definition) -> dict[str, str]:
    """Which cases a role's token sees, always within the token's own organisation."""
    return {role.name: role.sees for role in definition.roles if role.sees is not None}


def capabilities(definition: Definition) -> dict[str, tuple[str, ...]]:
    """For each read beyond a single case (:data:`~workflow.cases.definitions.READS`), the roles that may."""
    return {read: tuple(sorted(r.name for r in definition.roles if read in r.reads)) for read in READS}


SCOPES: Mapping[str, str] = scopes(DEFINITION)
CAPABILITIES: Mapping[str, tuple[str, ...]] = capabilities(DEFINITION)

WITHHELD = privacy.WITHHELD
"""What the access log holds for whom the caller acts for (``X-On-Behalf-Of``) in a record about a
case the caller does not see, or about no case; see
:meth:`workflow.service.access.AccessService.acting_for`."""


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the token, whom they act for, and where the request came from."""

    token: ApiToken
    client: str | None = None
    on_behalf_of: str | None = None
    via: str = "api"
    """The channel the token came through: ``api`` (a bearer token) or ``web`` (a desk session)."""

    @property
    def actor(self) -> Actor:
        return Actor(self.token.actor, self.token.role, self.on_behalf_of, f"{self.via}:{self.token.id}")

    @property
    def organisation(self) -> str:
        return self.token.organisation

    @property
    def credential(self) -> str:
        """What proved the caller: the API token's id, or ``oidc:<issuer hash>:<subject>`` for a
        bearer JWT (:mod:`second_opinion.oidc`); the access log and the audit trail name it."""
        return self.token.id


def sees(principal: Principal, case: Case, scope_of: Mapping[str, str] = SCOPES) -> bool:
    """Fails closed: a role without a scope sees nothing."""
    scope = scope_of.get(principal.token.role)
    if case.organisation != principal.organisation or scope is None:
        return False
    return scope == ORGANISATION or case.patient_ref == principal.token.actor


class NotVisible(UnknownCase):
    """A case the caller may not see: to them it is unknown; the access layer logs it for its owners."""

    def __init__(self, case: Case) -> None:
        self.case = case
        super().__init__(case.id)
