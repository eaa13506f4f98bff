"""What every route needs from a request: the caller (bearer token) and the If-Match version; and
the rate limits (:mod:`second_opinion.limits`) on failed authentications, reads and writes,
checked from memory alone before the route or the command runs (a 429 is written nowhere)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from second_opinion.limits import Limits
from second_opinion.observability import context
from second_opinion.oidc import MAX_TOKEN_CHARS, OidcVerifier
from workflow.access.rules import Principal
from workflow.cases.case import CASE_ID_SHAPE
from workflow.clock import as_utc
from workflow.errors import Unauthenticated, ValidationError
from workflow.service import inputs
from workflow.service.access import AccessService
from workflow.service.cases import CaseService
from workflow.service.tokens import TokenService

from . import schemas
from .edge import RateLimited

_bearer = HTTPBearer(auto_error=False, description="A token from `second-opinion token create`.")
_ETAG = re.compile(r'^"?(\d{1,9})"?$')
READS = frozenset({"GET", "HEAD"})
"""Requests charged to the token's read bucket: every GET route that takes a token reads case data
(and logs the access) or, for the calendar, nothing worth a separate limit."""


def access(request: Request) -> AccessService:
    service: AccessService = request.app.state.access
    return service


def cases(request: Request) -> CaseService:
    service: CaseService = request.app.state.cases
    return service


def contacts(request: Request) -> Mapping[str, Mapping[str, str]]:
    """The operator's provider contact values, loaded once when the app was built."""
    values: Mapping[str, Mapping[str, str]] = request.app.state.contacts
    return values


def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    on_behalf_of: Annotated[
        str | None,
        Header(alias="X-On-Behalf-Of", description="Whom the caller acts for (logged).",
               pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{2,63}$"),
    ] = None,
) -> Principal:
    tokens: TokenService = request.app.state.tokens
    client = request.client.host if request.client else None
    address = client or "unknown"
    try:
        if credentials is None and request.headers.get("authorization"):
            raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
        bearer = credentials.credentials if credentials else None
        oidc: OidcVerifier | None = request.app.state.oidc
        if bearer is not None and len(bearer) > MAX_TOKEN_CHARS:  # before any parsing or hashing
            raise Unauthenticated(f"the token is longer than {MAX_TOKEN_CHARS} characters", reason="too-large")
        # a JWT of the configured identity provider (staff signing in), else an API token
        token = oidc.verify(bearer) if oidc and bearer and oidc.looks_like_jwt(bearer) else tokens.authenticate(bearer)
    except Unauthenticated:
        # token guessing: past the limit the address gets 429 instead of 401. The token is looked
        # up first all the same (one indexed read), so that a valid token always passes: behind a
        # proxy or a NAT every client shares one address, and one without a token must not lock
        # the others out. A 256-bit token cannot be guessed; the limit slows a guesser down and
        # tells it nothing a 401 would not.
        wait = limits(request).auth_blocked(address)
        if wait:
            raise RateLimited("too many failed authentications from this address", wait) from None
        limits(request).auth_failed(address)
        raise
    case_id = request.path_params.get("case_id")
    context.annotate(organisation=token.organisation, case_id=case_id if isinstance(case_id, str) else None)
    if on_behalf_of is not None:
        inputs.check_id("X-On-Behalf-Of", on_behalf_of)
    if request.method in READS:
        wait = limits(request).take_read(token.id)
        if wait:  # every read of case data appends to the access log: a flood of reads is a flood of writes
            raise RateLimited("too many reads for this token; retry after Retry-After seconds", wait)
    return Principal(token, client=client, on_behalf_of=on_behalf_of)


def limits(request: Request) -> Limits:
    found: Limits = request.app.state.limits
    return found


def writer(request: Request, caller: Annotated[Principal, Depends(principal)]) -> Principal:
    """The caller of a write (opening a case, firing an event), within the limits of its token
    and of the case. Every attempt counts, refused or accepted: a flood of refused commands would
    fill the case's audit trail. A 429 is checked before the command runs and records nothing."""
    case_id = request.path_params.get("case_id")
    # keyed by the caller's organisation too: a token of another organisation (answered 404, its
    # attempt in the access log only) must not spend the budget of a case it cannot see
    keyed = f"{caller.organisation}/{case_id}" if isinstance(case_id, str) and CASE_ID_SHAPE.fullmatch(case_id) \
        else None  # no case has that id: a 404, counted for the token only
    wait = limits(request).take_write(caller.token.id, keyed)
    if wait:
        raise RateLimited("too many writes for this token or this case; retry after Retry-After seconds", wait)
    return caller


def aware(value: datetime | None, name: str) -> datetime | None:
    """An instant from a request as aware UTC; one UTC cannot hold is a 422 naming the field."""
    if value is None:
        return None
    try:
        return as_utc(value, name)
    except OverflowError:
        raise ValidationError(name, f"{value.isoformat()} is out of range in UTC") from None


def expected_version(if_match: str | None) -> int | None:
    """``If-Match: "3"`` (the ETag of a case read) -> 3; ``*`` or absent -> no check."""
    if if_match is None or if_match.strip() == "*":
        return None
    found = _ETAG.match(if_match.strip())
    if if_match.strip().startswith("W/"):
        raise ValidationError("If-Match", 'a weak ETag never matches (RFC 9110); send the strong one, e.g. "3"')
    if not found:
        raise ValidationError("If-Match", f'{if_match!r} is not a case version such as "3" (the ETag of GET /cases/ID)')
    return int(found.group(1))


def none_match(if_none_match: str, version: int) -> bool:
    """Whether ``If-None-Match`` names ``version`` (RFC 9110 13.1.2: ``*``, or a list of entity tags
    compared weakly, so ``W/"3"`` matches ``"3"``). A tag that is no version matches nothing: the
    answer is then the full read, never an error (a cache may send tags of its own)."""
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or f'"{version}"' in tags


def command_args(body: schemas.FireEvent, if_match: str | None, idempotency_key: str | None) -> dict[str, Any]:
    """The keyword arguments of a fire or a check from a ``schemas.FireEvent`` body and its headers:
    one reading for ``POST /cases/ID/events`` and ``POST /cases/ID/check``, so that a check answers
    for exactly the request a fire would get."""
    return {"reason": body.reason, "data": body.data, "expect_version": expected_version(if_match),
            "occurred_at": aware(body.occurred_at, "occurred_at"), "idempotency_key": idempotency_key}  # fmt: skip


Caller = Annotated[Principal, Depends(principal)]
Writer = Annotated[Principal, Depends(writer)]
Access = Annotated[AccessService, Depends(access)]
Cases = Annotated[CaseService, Depends(cases)]
Contacts = Annotated[Mapping[str, Mapping[str, str]], Depends(contacts)]
