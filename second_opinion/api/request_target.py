"""A request target (path and query) as the server may log it: what it says about the API, not
what the caller typed into it. Shared by the request log (:class:`second_opinion.cli.serve.RequestLine`)
and the problem handlers' log lines (:mod:`second_opinion.api.problems`); it imports nothing of either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workflow.cases.case import CASE_ID_SHAPE
from workflow.privacy import redact

if TYPE_CHECKING:
    from fastapi import FastAPI

HIDDEN = "..."
"""What stands in a logged request target for a path segment or a query value the caller typed."""


class RequestTarget:
    """A path segment stays only if it is a literal of one of the app's routes or shaped like a case
    id (:data:`CASE_ID_SHAPE`); a query keeps the names of the app's query parameters and drops
    every value, e.g. ``/cases/.../history`` and ``/cases?state=...&overdue=...``."""

    def __init__(self, app: FastAPI) -> None:
        spec = app.openapi().get("paths", {})
        paths = [*spec, *(getattr(route, "path", "") for route in app.routes)]  # /docs and the like are in no spec
        self.literals = frozenset(s for path in paths for s in path.split("/") if s and "{" not in s)
        self.parameters = frozenset(
            parameter["name"] for operations in spec.values() for operation in operations.values()
            for parameter in operation.get("parameters", []) if parameter.get("in") == "query"
        )  # fmt: skip

    @classmethod
    def of(cls, app: FastAPI) -> RequestTarget:
        """The app's own, made once and kept on ``app.state``."""
        made = getattr(app.state, "request_target", None)
        if not isinstance(made, cls):
            made = app.state.request_target = cls(app)
        return made

    def target(self, text: str) -> str:
        """A logged request target (path, then ``?`` and the query) without what the caller typed.
        Only the origin form (``/path?query``) says anything about the API; ``*`` is kept, and any
        other form (absolute ``http://host/path``, authority ``host:port``, garbage) is ``...``."""
        if text == "*":
            return text
        if not text.startswith("/"):
            return HIDDEN
        path, _, query = text.partition("?")
        segments = [s if not s or s in self.literals or CASE_ID_SHAPE.fullmatch(s) else HIDDEN for s in path.split("/")]
        kept = redact("/".join(segments))  # a case-id-shaped segment can still hold nine digits
        if not query:
            return kept
        names = [pair.partition("=")[0] for pair in query.split("&")]
        return kept + "?" + "&".join(f"{n if n in self.parameters else HIDDEN}={HIDDEN}" for n in names)
