"""How ``second-opinion serve`` runs uvicorn: the time and size bounds of a connection before a
request reaches the app.

uvicorn closes a keep-alive connection that stays idle (``timeout_keep_alive``), bounds the head
it will buffer (``h11_max_incomplete_event_size``) and answers 503 past a number of connections
(``limit_concurrency``), but it has no header timeout: a connection that opens and sends half a
request line, or one byte every few seconds, is held for ever (slowloris). :func:`guarded_h11`
adds one, as a subclass of uvicorn's h11 protocol. That leans on uvicorn internals
(``H11Protocol.connection_made``, ``handle_events``, ``on_response_complete``,
``connection_lost``, ``cycle``, ``transport``, ``loop``): pyproject pins the uvicorn versions it
was read against, and tests/reliability/test_http_edge.py checks it on a real server.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("second_opinion.api")

MAX_HEAD_BYTES = 16 * 1024
"""A request head of ours is a request line and a few headers (a bearer token, If-Match,
Idempotency-Key): well under 2 KiB. An incomplete head past this is a 400 and a closed connection."""


@dataclass(frozen=True)
class ServerLimits:
    """The connection bounds of ``serve`` (its ``--header-timeout``, ``--keep-alive``,
    ``--body-timeout`` and ``--max-connections``), defaults argued in docs/api.md."""

    header_timeout: float = 10.0
    """Seconds from the connection's opening (or the previous response) to a whole request head.
    A client sends its head in one packet; ten seconds covers a slow link."""
    keep_alive: float = 5.0
    """Seconds an idle keep-alive connection stays open (uvicorn's default)."""
    body_timeout: float = 10.0
    """Seconds a body may pause (see :data:`second_opinion.api.edge.BODY_TIMEOUT`)."""
    max_connections: int = 200
    """Open connections (and running requests) past which a request is answered 503: a bound on
    sockets and memory well under the usual 1024 file descriptors, and five times the thread pool."""


def guarded_h11(header_timeout: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a header timeout of ``header_timeout`` seconds."""

    class HeaderTimeoutH11(H11Protocol):
        """Arms a timer when the connection opens and after each response; the timer is disarmed
        once a request head has been parsed (uvicorn then makes a new request cycle). When it
        fires the connection is closed, whatever was received of the head."""

        head_timer: asyncio.TimerHandle | None = None
        armed_for: Any = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)  # type: ignore[arg-type]
            self.arm()

        def handle_events(self) -> None:
            super().handle_events()
            if self.head_timer is not None and self.cycle is not self.armed_for:
                self.disarm()  # a new request cycle: its head arrived in time

        def on_response_complete(self) -> None:
            before = self.cycle
            super().on_response_complete()  # may parse a pipelined head already buffered
            if self.cycle is before and not self.transport.is_closing():
                self.arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self.disarm()
            super().connection_lost(exc)

        def arm(self) -> None:
            self.disarm()
            self.armed_for = self.cycle
            self.head_timer = self.loop.call_later(header_timeout, self.head_timed_out)

        def disarm(self) -> None:
            if self.head_timer is not None:
                self.head_timer.cancel()
                self.head_timer = None

        def head_timed_out(self) -> None:
            self.head_timer = None
            if not self.transport.is_closing():
                log.info("closed a connection whose request head did not arrive within %g s", header_timeout)
                self.transport.close()

    return HeaderTimeoutH11


def server_config(app: Any, host: str, port: int, limits: ServerLimits = ServerLimits()) -> uvicorn.Config:
    """The uvicorn configuration ``serve`` runs ``app`` with (tests start a real server from it)."""
    return uvicorn.Config(
        app, host=host, port=port, log_level="info", proxy_headers=False,
        http=guarded_h11(limits.header_timeout), timeout_keep_alive=limits.keep_alive,  # type: ignore[arg-type]
        limit_concurrency=limits.max_connections, h11_max_incomplete_event_size=MAX_HEAD_BYTES,
    )  # fmt: skip
