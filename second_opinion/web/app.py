"""The web desk as an app of its own, mounted under ``/ui`` by :func:`mount`: its pages, its
stylesheet, its error pages (never a traceback, never a problem document) and its security
headers on every answer."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from second_opinion.api.problems import problem_for
from second_opinion.api.request_target import RequestTarget
from second_opinion.limits import Limits
from second_opinion.settings import Settings
from workflow.errors import (
    ClockBehind,
    PermissionDenied,
    SecondOpinionError,
    StorageError,
    StorageUnavailable,
    UnknownCase,
    ValidationError,
)
from workflow.privacy import redact
from workflow.service.cases import CaseService

from . import actions, pages
from .context import N_, SECURITY_HEADERS, STATIC, Refused, SignInRequired, Ui
from .sessions import SessionStore

log = logging.getLogger("second_opinion.web")
PREFIX = "/ui"


def create_ui(service: CaseService, limits: Limits | None = None, config: Settings | None = None,
              store: SessionStore | None = None) -> FastAPI:  # fmt: skip
    """The web desk's app (mount it at :data:`PREFIX`), on the services of ``service``; its session
    key and TLS switch from ``config`` (default: the environment's settings)."""
    ui = Ui(service, limits or Limits(), config, store)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.router.redirect_slashes = False
    app.state.ui = ui
    app.include_router(actions.routes(ui))
    app.include_router(pages.routes(ui))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    async def on_sign_in(request: Request, exc: Exception) -> Response:
        return ui.redirect("/ui/sign-in")

    async def on_refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        answer = error_page(ui, request, exc.status, exc.title, exc.detail)
        answer.headers.update(exc.headers)
        return answer

    async def on_refusal(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SecondOpinionError)
        if isinstance(exc, UnknownCase):
            return error_page(ui, request, 404, N_("No such case"),
                              N_("There is no case with this id that you may see."))  # fmt: skip
        if isinstance(exc, PermissionDenied):
            return error_page(ui, request, 403, N_("Not for your role"), N_("Your role may not use this page."))
        if isinstance(exc, ClockBehind):
            log.error("refused %s %s: %s", request.method, _logged(request), exc)
            return error_page(ui, request, 503, N_("Nothing was written"),
                              N_("The server's clock is behind its last record; the operator must check it."))
        status, _, title = problem_for(exc)
        detail = redact(str(exc)) if isinstance(exc, ValidationError) or status < 500 else ""
        return error_page(ui, request, status, title, detail)

    async def on_bad_request(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return error_page(ui, request, 422, N_("A value in the address is not acceptable"),
                          N_("Go back and change the filter or search."))  # fmt: skip

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        titles = {404: N_("No such page"), 405: N_("This page does not take that request")}
        return error_page(ui, request, exc.status_code, titles.get(exc.status_code, N_("The request was refused")))

    async def on_storage(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, StorageUnavailable):
            return await on_crash(request, exc)
        log.warning("database unavailable (%s) on %s %s", exc.reason, request.method, _logged(request))
        answer = error_page(ui, request, 503, N_("The database is unavailable"),
                            N_("Nothing was changed. Try again in a moment."))  # fmt: skip
        answer.headers["Retry-After"] = "1"
        return answer

    async def on_crash(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, _logged(request))
        return error_page(ui, request, 500, N_("Something went wrong"),
                          N_("The server failed; the cause is in its log. Nothing more is shown here."))  # fmt: skip

    app.add_exception_handler(SignInRequired, on_sign_in)
    app.add_exception_handler(Refused, on_refused)
    app.add_exception_handler(SecondOpinionError, on_refusal)
    app.add_exception_handler(RequestValidationError, on_bad_request)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(StorageError, on_storage)
    app.add_exception_handler(Exception, on_crash)
    return SecurityHeaders(app)  # type: ignore[return-value]


def error_page(ui: Ui, request: Request, status: int, title: str, detail: str = "") -> Response:
    try:
        caller = ui.caller(request, read=False) if ui.session(request) else None
    except Exception:  # the page says what failed; who is signed in is secondary
        caller = None
    context = {"status": status, "title": title, "detail": detail}
    return ui.page(request, "error.html", context, status=status, caller=caller)


def _logged(request: Request) -> str:
    return RequestTarget.of(request.app).target(request.url.path)


class SecurityHeaders:
    """ASGI wrapper: :data:`~second_opinion.web.context.SECURITY_HEADERS` on every answer of the
    web desk, whichever part of it answered (a page, an error, the stylesheet)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.state = app.state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()
                         if k.lower().encode() not in names]  # fmt: skip
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        try:
            await self.app(scope, receive, with_headers)
        except Exception:  # the error page was sent and the cause logged (on_crash): no second traceback
            return


def mount(app: FastAPI, service: CaseService, limits: Limits | None = None,
          config: Settings | None = None) -> None:  # fmt: skip
    """The web desk at ``/ui`` of ``app``, sharing its service and its rate limits."""
    app.mount(PREFIX, create_ui(service, limits, config))
