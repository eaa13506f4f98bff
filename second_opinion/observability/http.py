"""The HTTP side: one ASGI middleware, outermost in the app, that gives every request its id
(echoed in ``X-Request-Id`` and quoted by problem documents), times it into the latency
histogram by route template, runs it in a server span when tracing is on, and logs one line for it.

The route is the template the router matched (``/cases/{case_id}/events``), prefixed by the mount
it was found under (``/ui``); a path no route matched is ``unmatched``. So the labels are bounded
by the app's routes, whatever paths callers send.
"""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from typing import Any

from . import context
from .metrics import Metrics
from .tracing import Spans

log = logging.getLogger("second_opinion.http")

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
UNMATCHED = "unmatched"


class Observe:
    """ASGI middleware: request id, latency, span and request line for every HTTP request."""

    def __init__(self, app: Any, metrics: Metrics | None = None, spans: Spans | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self.spans = spans

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = [v for k, v in scope["headers"] if k == b"x-request-id"]
        request_id = context.accepted_id(offered[0].decode("latin-1") if len(offered) == 1 else None)
        method = scope["method"] if scope["method"] in METHODS else "other"
        root = scope.get("root_path", "")
        status = 500  # what the client gets if the app raises before it answers (the crash handler's)
        header = (context.HEADER.lower().encode(), request_id.encode())

        async def answer(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), header]}
            await send(message)

        started = time.perf_counter()
        with ExitStack() as stack:
            stack.enter_context(context.request_scope(request_id))
            span = None
            if self.spans is not None:
                span = stack.enter_context(self.spans.span(f"HTTP {method}", {"http.request.method": method},
                                                           kind="SERVER"))  # fmt: skip
            try:
                await self.app(scope, receive, answer)
            finally:
                seconds = time.perf_counter() - started
                route = template(scope, root)
                if span is not None:
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
                    span.set_attribute("http.response.status_code", status)
                if self.metrics is not None:
                    self.metrics.http_seconds.labels(method, route, str(status)).observe(seconds)
                log.info("%s %s %d", method, route, status,
                         extra={"method": method, "route": route, "status": status,
                                "duration_ms": round(seconds * 1000, 3)})  # fmt: skip


def template(scope: Any, root: str) -> str:
    """The route template the request matched, with the mount it was found under; else ``unmatched``."""
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(path, str):
        return UNMATCHED
    mount = str(scope.get("root_path", ""))[len(root) :]
    return mount + path
