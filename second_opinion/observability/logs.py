"""Logs: the standard library's logging routed through structlog, as JSON lines or for a human.

Every record, ours or a library's (uvicorn, APScheduler, httpx), passes one chain of processors:
the bound context (:func:`bind`, :func:`.context.annotate`: ``request_id``, ``case_id``,
``organisation``, ``command``), level, logger name and an ISO UTC timestamp, the ``extra`` fields of a standard
library call (``extra={"case_id": ...}``, so that ``jobs/`` needs no structlog), then the
privacy screen: every text is passed through :func:`workflow.privacy.redact`, so a BSN that
reached a message (quoted from a refusal, say) is masked. Names are not screened here (only the
case's own hashes know them): nothing we log quotes free text a caller typed (see
docs/operations.md, "Log fields").

The JSON format is one object per line, for a log shipper; the console format is structlog's
human one (colours only on a terminal).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, TextIO

import structlog

from workflow.privacy import redact

from . import context

JSON, CONSOLE = "json", "console"


@contextmanager
def bind(**fields: str) -> Iterator[None]:
    """Fields on every line logged inside the block, in this thread or task (a command, a sweep's case)."""
    with structlog.contextvars.bound_contextvars(**fields):
        yield


def _add_request(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    fields = context.current()
    if fields:
        for key, value in fields.items():
            event.setdefault(key, value)
    return event


def _screen(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A BSN never reaches the output, whichever field it got into."""
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = redact(value)
    return event


def _drop_logger_internals(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event.pop("_record", None)
    event.pop("_from_structlog", None)
    return event


def _chain() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        _add_request,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
        structlog.processors.format_exc_info,
    ]


def configure(fmt: str, stream: TextIO | None = None, level: int = logging.INFO) -> logging.Handler:
    """Route all logging through structlog, rendered as ``json`` or ``console``, on ``stream``
    (standard error by default). Replaces the root logger's handlers; returns the new one."""
    stream = stream or sys.stderr
    shared = _chain()
    if fmt == JSON:
        renderer: Any = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=stream.isatty())
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[_drop_logger_internals, _screen, renderer],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    # httpx: one line per call (ours says what failed); transitions: a line per callback of every command
    for name in ("alembic", "httpx", "transitions"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler


def get(name: str) -> Any:
    """A structlog logger writing through the standard library (so through :func:`configure`'s handler)."""
    return structlog.stdlib.get_logger(name)
