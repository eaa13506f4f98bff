"""The edge of the app: what every request must satisfy before anything parses it, and the 429 a
rate limit answers with.

:class:`Edge` is ASGI middleware, outermost in the app. It holds whatever the framing: a body is
counted as it arrives, so ``Transfer-Encoding: chunked`` with a small ``Content-Length`` beside
it (the server follows the chunks) is refused at the limit like any other; a body that has not
arrived whole within the body timeout (stalled or trickled) gets 408; a ``Host`` that is no host name is a
400, so no URL the framework builds from it can point elsewhere or carry a path. Each of these
answers closes the connection: the rest of what the client sends is never read.

The timeouts before a request reaches the app (its head, keep-alive) belong to the server: see
:mod:`second_opinion.api.server`.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from starlette.exceptions import HTTPException

from .problems import OTHER_PROBLEMS, problem

MAX_BODY = 256 * 1024
"""Requests are a few fields and some event data (at most 64 KiB of it): a larger body is refused
when its declared length says so, or as soon as that many bytes have arrived."""

BODY_TIMEOUT = 10.0
"""Seconds the whole body may take to arrive, from the end of the request head to its last byte.
A client sends its whole body at once (a few hundred bytes, at most 256 KiB: 26 KB/s over ten
seconds); ten seconds is generous for a slow link and short enough that a client which stalls or
trickles on purpose holds its connection (not a worker thread: bodies are read before the app
runs) for no longer. A deadline for the whole body, not for each pause: a byte every few seconds
would otherwise hold a connection for ever."""

HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]*)(:[0-9]{0,5})?$")
"""RFC 9110 ``Host``: a host name, IPv4 or bracketed IPv6 address, and an optional port; never a
slash, ``?``, ``#``, ``@`` or space."""


class RateLimited(HTTPException):
    """429: a rate limit refused the request before it ran; nothing was recorded anywhere."""

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(429, detail, headers={"Retry-After": str(retry_after)})


class Edge:
    """ASGI middleware: one ``Host`` of host syntax, a body of at most ``limit`` bytes however it
    is framed, arriving whole within ``body_timeout`` seconds; the body is read whole here
    (so no worker thread waits on a slow client), then replayed to the app."""

    def __init__(self, app: Any, limit: int = MAX_BODY, body_timeout: float = BODY_TIMEOUT) -> None:
        self.app = app
        self.limit = limit
        self.body_timeout = body_timeout

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        hosts = [value for name, value in scope["headers"] if name == b"host"]
        if len(hosts) > 1 or (hosts and not HOST.fullmatch(hosts[0].decode("latin-1"))):
            await refuse(400, "bad-request", "the Host header must be one host name or address, with a port", path,
                         scope, receive, send)  # fmt: skip
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await refuse(413, "body-too-large", too_large(self.limit), path, scope, receive, send)
            return
        chunks, size, more = [], 0, True
        deadline = asyncio.get_running_loop().time() + self.body_timeout
        while more:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - asyncio.get_running_loop().time()))
            except TimeoutError:
                detail = f"the body did not arrive whole within {self.body_timeout:g} s"
                await refuse(408, "request-timeout", detail, path, scope, receive, send)
                return
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:  # counted as it streams: Content-Length is a claim, this is a count
                await refuse(413, "body-too-large", too_large(self.limit), path, scope, receive, send)
                return
            more = message.get("more_body", False)
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)


def too_large(limit: int = MAX_BODY) -> str:
    return f"the body must be at most {limit // 1024} KiB"


async def refuse(status: int, slug: str, detail: str, path: str, scope: Any, receive: Any, send: Any) -> None:
    """A problem answer that also closes the connection: what the client still sends is not read."""
    answer = problem(status, slug, OTHER_PROBLEMS[slug][1], detail, path)
    answer.headers["Connection"] = "close"
    await answer(scope, receive, send)
