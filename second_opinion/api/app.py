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
from workflow.errors import SecondOpinionError, StorageError, StorageNotReady
from workflow.service.access import AccessService
from workflow.service.cases import CaseService
from workflow.service.feed_access import FeedAccess
from workflow.service.tokens import TokenService

from . import audit, cases, edge, feed, fhir, next_steps, problems, reference, reports, schemas, swagger, worklists

DESCRIPTION = """Dutch second-opinion cases as persisted state machines, for care-coordination
systems, hospital desks, insurers' tools and auditors. Every call needs a bearer token
(`second-opinion token create`); every error is `application/problem+json` (RFC 9457)."""


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
    allow_local_http: bool = False,
) -> FastAPI:
    """The app around ``service``; ``ready`` raises StorageNotReady (or a StorageError) when the
    database cannot take a write, and answers in bounded time (:mod:`storage.readiness`).
    ``contacts`` are the operator's provider contact values, already checked
    (:func:`second_opinion.bootstrap.provider_contacts_from_env`); none: the seeds' values.
    ``allow_local_http``: subscriptions may use plain http to localhost (tests, a local receiver)."""
    app = FastAPI(title="second-opinion", version=version, description=DESCRIPTION, docs_url=None,
                  redoc_url=None)
    # No slash is redirected: Starlette builds that Location from the caller's Host (an open redirect).
    app.router.redirect_slashes = False
    app.state.limits = limits or Limits()  # none unless given: `serve` gives them (bootstrap.limits_from_env)
    app.state.cases = service
    app.state.contacts = dict(contacts or {})
    app.state.access = AccessService(service.runtime)
    app.state.tokens = TokenService(service.runtime)
    app.state.feed = FeedAccess(service.runtime, app.state.access, allow_local_http=allow_local_http)
    app.add_exception_handler(SecondOpinionError, problems.on_refusal)
    app.add_exception_handler(RequestValidationError, problems.on_bad_request)
    app.add_exception_handler(HTTPException, problems.on_http)
    app.add_exception_handler(StorageError, problems.on_storage_error)  # a lost database: 503, else 500
    app.add_exception_handler(Exception, problems.on_crash)
    app.add_middleware(edge.Edge, body_timeout=body_timeout or edge.BODY_TIMEOUT)
    routers = (worklists.router, cases.router, next_steps.router, audit.router, fhir.router, reference.router,
               reports.router, feed.router)  # fmt: skip
    for router in routers:
        app.include_router(router, responses=_ERRORS)
    swagger.serve_docs(app)  # /docs from this host's files, not a CDN
    web.mount(app, service, app.state.limits)  # the web desk under /ui (docs/ui.md)

    @app.get("/health", response_model=schemas.Health, response_model_exclude_none=True, tags=["operations"],
             summary="The process answers")  # fmt: skip
    async def health() -> dict[str, Any]:  # async: on the event loop, never queued behind a full thread pool
        return {"status": "ok"}

    @app.get("/ready", response_model=schemas.Health, response_model_exclude_none=True, tags=["operations"],
             summary="The database is at this version's schema and can take a write (answered within 2 s)",
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


_PROBLEM: dict[str, Any] = {
    "description": "A problem document (RFC 9457).",
    "content": {problems.MEDIA_TYPE: {"schema": {"type": "object", "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"}, "instance": {"type": "string"}}}}},
}  # fmt: skip
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: _PROBLEM
    for status in sorted({s for s, _, _ in (*problems.PROBLEMS.values(), *problems.OTHER_PROBLEMS.values())})
}
