"""How ``second-opinion serve`` runs uvicorn: the time and size bounds of a connection before a
request reaches the app.

uvicorn closes a keep-alive connection that stays idle (``timeout_keep_alive``), bounds the head
it will buffer (``h11_max_incomplete_event_size``) and answers 503 past a number of connections
(``limit_concurrency``), but it has no header timeout: a connection that opens and sends half a
request line, or one byte every few seconds, is held for ever (slowloris). :func:`guarded_h11`
adds one, as a subclass of uvicorn's h11 protocol, and a cap on the connections one client
address holds open (else one client's half-sent heads fill ``limit_concurrency`` for everyone).
That leans on uvicorn internals (``H11Protocol.connection_made``, ``handle_events``,
``on_response_complete``, ``connection_lost``, ``cycle``, ``transport``, ``loop``, ``client``):
pyproject pins the uvicorn versions it was read against, and tests/reliability/test_http_edge.py
checks it on a real server.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG
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
    max_per_address: int = 100
    """Open connections from one client address past which a new one is closed at once (0: no
    cap). Without it one client holding half-sent heads fills :attr:`max_connections` and every
    other client, ``/health`` included, gets 503. Half of :attr:`max_connections`: one address
    can never take all of them, and an integration running a batch from one host (the suite's
    two-server race sends 80 requests at once) is not cut off; a browser keeps 6 open, an HTTP
    client pool 10 to 20 (32, the first default, reset that race's connections). Behind a reverse
    proxy every client has the proxy's address: raise it to :attr:`max_connections` there, or set 0."""


def guarded_h11(header_timeout: float, max_per_address: int = 0) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a header timeout of ``header_timeout`` seconds and at most
    ``max_per_address`` open connections from one client address (0: no cap). Each call makes a
    class with its own count: one per server."""
    open_from: dict[str, int] = {}  # client address -> its open connections; the event loop's only

    class HeaderTimeoutH11(H11Protocol):
        """Arms a timer when the connection opens and after each response; the timer is disarmed
        once a request head has been parsed (uvicorn then makes a new request cycle). When it
        fires the connection is closed, whatever was received of the head. A connection past its
        address's cap is closed as it opens, before a byte of it is read."""

        head_timer: asyncio.TimerHandle | None = None
        armed_for: Any = None
        counted_as: str | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)  # type: ignore[arg-type]
            address = self.client[0] if self.client else "unknown"
            if max_per_address and open_from.get(address, 0) >= max_per_address:
                log.info("closed a connection: %d already open from its address", max_per_address)
                self.transport.close()  # nothing is read: connection_lost follows, counting nothing
                return
            open_from[address] = open_from.get(address, 0) + 1
            self.counted_as = address
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
            if self.counted_as is not None:
                left = open_from.pop(self.counted_as, 1) - 1
                if left > 0:  # an address with no connection keeps no entry: the dict stays bounded
                    open_from[self.counted_as] = left
                self.counted_as = None
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


def server_config(
    app: Any, host: str, port: int, limits: ServerLimits = ServerLimits(), *, own_logging: bool = False
) -> uvicorn.Config:
    """The uvicorn configuration ``serve`` runs ``app`` with (tests start a real server from it).
    ``own_logging``: uvicorn leaves logging as the caller configured it (``serve``'s structlog
    set-up, :mod:`second_opinion.observability.logs`) instead of installing its own handlers."""
    return uvicorn.Config(
        app, host=host, port=port, log_level="info", proxy_headers=False,
        log_config=None if own_logging else LOGGING_CONFIG,
        http=guarded_h11(limits.header_timeout, limits.max_per_address), timeout_keep_alive=limits.keep_alive,  # type: ignore[arg-type]
        limit_concurrency=limits.max_connections, h11_max_incomplete_event_size=MAX_HEAD_BYTES,
    )  # fmt: skip
