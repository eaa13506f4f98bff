"""The request being served, as logs and problem documents see it: its id, and the fields the
handlers learn on the way (the caller's organisation, the case of the path).

Kept apart from :mod:`.logs` so that the API reads the request id without importing structlog.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from workflow.cases.case import CASE_ID_SHAPE
from workflow.privacy import contains_bsn

HEADER = "X-Request-Id"
REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
"""An incoming ``X-Request-Id`` kept as it is: 1 to 64 characters of letters, digits and ``._:-``
(a UUID, a ULID, a W3C trace id, a proxy's own). Anything else (longer, spaces, quotes, control
characters, or a BSN-shaped number) is replaced by a new id: the header reaches every log line."""

_request: ContextVar[dict[str, str] | None] = ContextVar("second_opinion_request", default=None)
"""The fields of the request being served: one mutable dict per request, set by the HTTP
middleware. Mutable on purpose: FastAPI runs dependencies and routes in worker threads, each in a
copy of the request's context; a value set there on a ContextVar would be lost on return, a key
written into this dict is seen by every line logged for the request afterwards."""


def accepted_id(offered: str | None) -> str:
    """The caller's request id when it is a short safe token, else a new random one."""
    if offered is not None and REQUEST_ID.fullmatch(offered) and not contains_bsn(offered):
        return offered
    return uuid.uuid4().hex


@contextmanager
def request_scope(request_id: str) -> Iterator[dict[str, str]]:
    """The log fields of one request, from its id on; restored when the request ends. When it
    ends in an exception they are left in place, for the server's last handler (the 500's problem
    document quotes the id): the request's task ends with it, and its context with the task."""
    fields = {"request_id": request_id}
    token = _request.set(fields)
    yield fields
    _request.reset(token)


def current() -> dict[str, str] | None:
    """The fields of the request being served (None outside a request)."""
    return _request.get()


def request_id() -> str | None:
    """The id of the request being served, if any (problem documents quote it)."""
    fields = _request.get()
    return None if fields is None else fields.get("request_id")


def annotate(organisation: str | None = None, case_id: str | None = None) -> None:
    """Note the caller's organisation and the case of the path on the request being served: safe
    from any thread of the request, a no-op outside one. A case id not of the library's shape is
    not noted (it was typed by the caller, and may be anything)."""
    found = _request.get()
    if found is None:
        return
    if organisation:
        found["organisation"] = organisation
    if case_id and CASE_ID_SHAPE.fullmatch(case_id):
        found["case_id"] = case_id
