"""Errors as RFC 9457 problem documents: one stable ``type`` per exception of the hierarchy.

The table is the contract: a client matches on ``type`` (never on the wording of ``detail``),
and ``docs/api.md`` prints this table. An exception nobody planned for becomes a bare 500 whose
body says nothing about the inside; the traceback goes to the server log only. A database that
cannot be reached, a connection that broke mid-request, a lock or statement that ran out of time,
a connection pool with none free, or a database that is full or read-only is a 503
``storage-unavailable`` with ``Retry-After``: the request's transaction was rolled back (or, if the
commit's answer was what got lost, committed whole), so a retry with the same ``Idempotency-Key``
does it exactly once.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from workflow.errors import (
    AuditIntegrityError,
    ClockBehind,
    ConcurrentUpdate,
    ConfigurationError,
    GuardRefused,
    IdempotencyConflict,
    InvalidTransition,
    MissingScope,
    PermissionDenied,
    SecondOpinionError,
    StorageNotReady,
    StorageUnavailable,
    Unauthenticated,
    UnknownCase,
    UnknownEvent,
    ValidationError,
    first_line,
)
from workflow.privacy import FIELDS_JOINER, REDACTED, contains_bsn, redact

from ..observability import context
from . import outcomes
from .request_target import RequestTarget

MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:second-opinion:problem:"
log = logging.getLogger("second_opinion.api")


PROBLEMS: dict[type[SecondOpinionError], tuple[int, str, str]] = {
    ValidationError: (422, "validation-error", "A field of the request is not acceptable"),
    UnknownEvent: (422, "unknown-event", "No such event"),
    IdempotencyConflict: (422, "idempotency-conflict", "Idempotency key reused for a different request"),
    UnknownCase: (404, "unknown-case", "No such case"),
    GuardRefused: (409, "guard-refused", "A guard refused the event"),
    InvalidTransition: (409, "invalid-transition", "The event is not allowed in the case's state"),
    ConcurrentUpdate: (412, "stale-version", "The case changed since the version in If-Match"),
    PermissionDenied: (403, "permission-denied", "The token's role may not do this"),
    MissingScope: (403, "missing-scope", "The token lacks the scope this needs"),
    Unauthenticated: (401, "unauthenticated", "No valid bearer token"),
    StorageNotReady: (503, "storage-not-ready", "The database is not ready"),
    ConfigurationError: (503, "configuration-error", "The service is not configured for this request"),
    AuditIntegrityError: (500, "audit-integrity", "Stored history cannot be trusted"),
    ClockBehind: (503, "clock-behind", "The server's clock is behind the last record"),
}
"""exception -> (HTTP status, type suffix, title); a subclass not listed takes its parent's entry."""

OTHER_PROBLEMS: dict[str, tuple[int, str, str]] = {
    "bad-request": (400, "Malformed request", "a body that cannot be read at all (not UTF-8 JSON)"),
    "not-found": (404, "No such path", "a path the API does not have (an unknown case is `unknown-case`)"),
    "method-not-allowed": (405, "Method not allowed", "a method the path does not take"),
    "request-timeout": (408, "Request body too slow", "a body that did not arrive whole within the "
                        "body timeout (`serve --body-timeout`), stalled or trickled; the connection is closed"),
    "body-too-large": (413, "Request body too large", "a body over 256 KiB"),
    "storage-unavailable": (503, "The database is unavailable", "the database could not be reached, the "
                            "connection broke, a lock or statement timed out, no pooled connection came free, or "
                            "the database is full or read-only; retry after `Retry-After` seconds (with the same "
                            "`Idempotency-Key` for a command)"),
    "internal-error": (500, "Internal error", "a bug: the body says nothing more, the cause is in the server log"),
    "rate-limited": (429, "Too many requests", "a write or read over the limit of its token, a write over the "
                     "limit of its case, or an invalid or missing token from a client address past its failed "
                     "authentications; wait `Retry-After` seconds. Nothing was recorded"),
}  # fmt: skip
"""Problems that are not refusals of the service: type suffix -> (status, title, when)."""

FIELDS = {"patient reference": "patient_ref", "idempotency key": "Idempotency-Key", "working days": "days",
          "dates": "end", "patient name": "patient_name", "on-behalf-of": "X-On-Behalf-Of"}  # fmt: skip
"""The service's names for a few fields -> the names the API spells them with."""

_EXTRAS = ("field", "state", "allowed", "guard", "reason", "role", "permitted", "expected", "actual", "known",
           "scope")


def problem_for(exc: SecondOpinionError) -> tuple[int, str, str]:
    for cls in type(exc).__mro__:
        if cls in PROBLEMS:
            return PROBLEMS[cls]
    return 400, "refused", "The request was refused"


def problem(status: int, slug: str, title: str, detail: str, instance: str, **extra: Any) -> JSONResponse:
    """A problem document. Every text in it may quote what the caller sent: a BSN is masked, as on
    the CLI (a typed BSN must not come back, nor reach a log), and what is not Unicode (a lone
    surrogate) is escaped, so that the document can always be written."""
    body = {"type": TYPE_PREFIX + slug, "title": title, "status": status, "detail": detail, "instance": instance}
    request_id = context.request_id()
    if request_id is not None:  # what the operator looks up in the log (docs/operations.md)
        body["request_id"] = request_id
    headers = {"WWW-Authenticate": 'Bearer realm="second-opinion"'} if status == 401 else None
    if instance == FHIR or instance.startswith(FHIR + "/"):  # a FHIR client reads an OperationOutcome
        resource = outcomes.outcome(status, slug, title, detail, extra)
        return JSONResponse(_quoted(resource), status_code=status, media_type=outcomes.MEDIA_TYPE, headers=headers)
    return JSONResponse(_quoted({**body, **extra}), status_code=status, media_type=MEDIA_TYPE, headers=headers)


FHIR = "/fhir"
"""Errors on this path and under it are FHIR OperationOutcomes (:mod:`.outcomes`)."""


def _quoted(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and contains_bsn(str(value)):
        return REDACTED  # an extension field quoting a typed number (If-Match: "111222333")
    if isinstance(value, str):
        return redact(value).encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_quoted(k): _quoted(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_quoted(v) for v in value]
    return value


async def on_refusal(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SecondOpinionError)
    status, slug, title = problem_for(exc)
    extra = {name: getattr(exc, name) for name in _EXTRAS if hasattr(exc, name)}
    if isinstance(exc, ValidationError):
        extra["field"] = FIELDS_JOINER.join(FIELDS.get(f, f) for f in exc.field.split(FIELDS_JOINER))
    detail = str(exc)
    if isinstance(exc, ClockBehind):  # the times are the operator's: the last record may be another organisation's
        log.error("refused %s %s: %s", request.method, _logged(request), exc)
        detail = "the server's clock is behind its last record, so nothing was written; the operator must check it"
    return problem(status, slug, title, detail, request.url.path, **extra)


async def on_bad_request(request: Request, exc: Exception) -> JSONResponse:
    """Pydantic's findings, with the first bad field named in ``detail`` and all in ``errors``."""
    assert isinstance(exc, RequestValidationError)
    errors = [{"field": _field(e.get("loc", ())), "problem": str(e.get("msg", "invalid"))} for e in exc.errors()]
    first = errors[0] if errors else {"field": "request", "problem": "invalid"}
    detail = f"invalid {first['field']}: {first['problem']}"
    return problem(422, "validation-error", PROBLEMS[ValidationError][2], detail, request.url.path,
                   field=first["field"], errors=errors)  # fmt: skip


async def on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    slug = HTTP_SLUGS.get(exc.status_code, "http-error")
    title = OTHER_PROBLEMS[slug][1] if slug in OTHER_PROBLEMS else str(exc.detail)
    answer = problem(exc.status_code, slug, title, str(exc.detail), request.url.path)
    answer.headers.update(exc.headers or {})  # Retry-After of a 429
    return answer


HTTP_SLUGS = {400: "bad-request", 404: "not-found", 405: "method-not-allowed", 408: "request-timeout",
              413: "body-too-large", 429: "rate-limited"}  # fmt: skip


RETRY_AFTER_SECONDS = 1


async def on_storage_error(request: Request, exc: Exception) -> JSONResponse:
    """A storage error: 503 when a retry may succeed (unreachable, a broken connection, a lock or
    statement timeout, an exhausted pool, a full or read-only database: logged as one line naming
    the cause, no traceback, it is no bug), else the internal error it is. The answer does not
    say which cause: anyone may cause one, and the operator has the log."""
    if not isinstance(exc, StorageUnavailable):
        return await on_crash(request, exc)
    first = first_line(exc)
    log.warning("database unavailable (%s) on %s %s: %s", exc.reason, request.method, _logged(request), first)
    detail = "the database cannot serve the request now; retry it (a command with the same Idempotency-Key is " \
             "carried out once)"  # fmt: skip
    answer = problem(503, "storage-unavailable", OTHER_PROBLEMS["storage-unavailable"][1], detail, request.url.path)
    answer.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return answer


async def on_crash(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, _logged(request))
    title = OTHER_PROBLEMS["internal-error"][1]
    return problem(500, "internal-error", title, "the server failed; the cause is in its log", request.url.path)


def _logged(request: Request) -> str:
    """The path as the server log may hold it: route literals and case ids, nothing the caller typed."""
    return RequestTarget.of(request.app).target(request.url.path)


def _field(loc: Any) -> str:
    """Pydantic's location as the field a client sent; a position in unparsable JSON is the body."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "header", "path"):
        parts = parts[1:] or parts
    if all(isinstance(p, int) for p in loc[1:]) and loc and loc[0] == "body":
        return "body"
    return ".".join(parts) or "body"
