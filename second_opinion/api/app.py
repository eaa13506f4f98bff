"""The ASGI app: routers, error handlers, health and readiness, and nothing else.

Built by :func:`create_app` around services that are already wired (see
:func:`second_opinion.bootstrap.build_app`), so tests run it on the in-memory backend and
``second-opinion serve`` runs it on SQLite or PostgreSQL without a line of difference.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import anyio
import anyio.to_thread
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from second_opinion import web
from second_opinion.limits import Limits
from second_opinion.observability import Observability
from second_opinion.observability.http import Observe
from second_opinion.oidc import OidcVerifier
from second_opinion.settings import Settings
from workflow.errors import SecondOpinionError, StorageError, StorageNotReady
from workflow.service.access import AccessService
from workflow.service.cases import CaseService
from workflow.service.feed_access import FeedAccess
from workflow.service.tokens import TokenService

from . import (
    audit,
    cases,
    edge,
    feed,
    fhir,
    next_steps,
    problems,
    reference,
    reports,
    schemas,
    spec,
    swagger,
    worklists,
)

DESCRIPTION = """Dutch second-opinion cases as persisted state machines, for care-coordination
systems, hospital desks, insurers' tools and auditors. Every call but /health, /ready and
/fhir/metadata needs a bearer token (`second-opinion token create`); every error is
`application/problem+json` (RFC 9457, schema `Problem`), under /fhir a FHIR `OperationOutcome`."""


NO_NATIVE_TELEMETRY: Any = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
"""FastAPI's own OpenTelemetry (when the SDK is installed and a provider set) records raw paths,
query strings and exception messages, which may quote what a caller typed (a name in a query):
ours (:mod:`second_opinion.observability`) records route templates only. Older FastAPI ignores it."""

READY_THREADS = 4
"""Threads /ready may hold at once, apart from the pool that runs requests."""


def create_app(
    service: CaseService,
    *,
    ready: Callable[[], None] = lambda: None,
    version: str = "0.1.0",
    limits: Limits | None = None,
    body_timeout: float | None = None,
    contacts: Mapping[str, Mapping[str, str]] | None = None,
    settings: Settings | None = None,
    observability: Observability | None = None,
    oidc: OidcVerifier | None = None,
    allow_local_http: bool = False,
) -> FastAPI:
    """The app around ``service``; ``ready`` raises StorageNotReady (or a StorageError) when the
    database cannot take a write, and answers in bounded time (:mod:`storage.readiness`).
    ``contacts`` are the operator's provider contact values, already checked
    (:func:`second_opinion.bootstrap.provider_contacts_from_env`); none: the seeds' values.
    ``settings`` are the web desk's (session key, TLS proxy); none: the environment's.

    ``observability``: the metrics and spans of requests (none: request ids and the request log
    line only; :mod:`second_opinion.observability.http`).


    ``allow_local_http``: subscriptions may use plain http to localhost (tests, a local receiver)."""
    app = FastAPI(title="second-opinion", version=version, description=DESCRIPTION, docs_url=None,
                  redoc_url=None, telemetry=NO_NATIVE_TELEMETRY)  # fmt: skip
    # No slash is redirected: Starlette builds that Location from the caller's Host (an open redirect).
    app.router.redirect_slashes = False
    app.state.limits = limits or Limits()  # none unless given: `serve` gives them (bootstrap.limits_from_env)
    app.state.cases = service
    app.state.contacts = dict(contacts or {})
    app.state.access = AccessService(service.runtime)
    app.state.tokens = TokenService(service.runtime)
    app.state.oidc = oidc  # bearer JWTs of the configured issuer (second_opinion.oidc); None: API tokens only
    app.state.feed = FeedAccess(service.runtime, app.state.access, allow_local_http=allow_local_http)
    app.add_exception_handler(SecondOpinionError, problems.on_refusal)
    app.add_exception_handler(RequestValidationError, problems.on_bad_request)
    app.add_exception_handler(HTTPException, problems.on_http)
    app.add_exception_handler(StorageError, problems.on_storage_error)  # a lost database: 503, else 500
    app.add_exception_handler(Exception, problems.on_crash)
    app.add_middleware(edge.Edge, body_timeout=body_timeout or edge.BODY_TIMEOUT)
    seen = observability or Observability()  # outermost: the Edge's refusals have request ids too
    app.add_middleware(Observe, metrics=seen.metrics, spans=seen.spans)
    routers = (worklists.router, cases.router, next_steps.router, audit.router, fhir.router, reference.router,
               reports.router, feed.router)  # fmt: skip
    for router in routers:
        app.include_router(router, responses=_ERRORS)
    spec.install(app)  # /openapi.json with operation ids, enums, Problem, per-event bodies (api/spec.py)
    swagger.serve_docs(app)  # /docs from this host's files, not a CDN
    web.mount(app, service, app.state.limits, settings)  # the web desk under /ui (docs/ui.md)

    @app.get("/health", response_model=schemas.Health, response_model_exclude_none=True, tags=["operations"],
             summary="The process answers", operation_id="checkHealth")  # fmt: skip
    async def health() -> dict[str, Any]:  # async: on the event loop, never queued behind a full thread pool
        return {"status": "ok"}

    @app.get("/ready", response_model=schemas.Health, response_model_exclude_none=True, tags=["operations"],
             summary="The database is at this version's schema and can take a write (answered within 2 s)",
             operation_id="checkReady",
             responses={503: {"model": schemas.Health, "description": "Not ready; the reason is in the log."}},
             )  # fmt: skip
    async def readiness() -> Any:
        # on threads of its own, not the shared pool: requests stuck on the database must not
        # queue the probe past its 2 s bound (the probe shares one run among concurrent callers)
        limiter = getattr(app.state, "ready_limiter", None)
        if limiter is None:
            limiter = app.state.ready_limiter = anyio.CapacityLimiter(READY_THREADS)
        try:
            await anyio.to_thread.run_sync(ready, limiter=limiter)
        except (StorageNotReady, StorageError) as exc:  # StorageError: whatever a custom ``ready`` raises
            # anyone may ask, so the answer names no database; the operator finds it in the log
            problems.log.error("not ready: %s", exc)
            return JSONResponse({"status": "not ready", "detail": "the database is not usable; see the server log"},
                                status_code=503)  # fmt: skip
        return {"status": "ready"}

    return app


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": "A problem document (RFC 9457)."}
    for status in sorted({s for s, _, _ in (*problems.PROBLEMS.values(), *problems.OTHER_PROBLEMS.values())})
}
"""Every error status of the problem table; :mod:`.spec` gives each its body schema and headers."""
