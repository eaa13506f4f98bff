"""``serve`` runs the HTTP service (uvicorn); ``access-log verify`` checks the access log's chain."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated

import typer

from workflow.access import AccessService
from workflow.case import CASE_ID_SHAPE
from workflow.deadline_service import DeadlineService
from workflow.privacy import redact

from .bootstrap import build_app
from .cli import Db, Json, _emit, _guard, _service, app, err

if TYPE_CHECKING:
    from fastapi import FastAPI

access_app = typer.Typer(help="The NEN 7513 access log (read it over HTTP: GET /access-log).", no_args_is_help=True)
app.add_typer(access_app, name="access-log")


@app.command("serve")
def serve_command(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8080,
    db: Db = None,
) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json, docs at /docs). Run several on one PostgreSQL
    to scale out: every command locks its case row, so they never overwrite each other."""
    import uvicorn

    with _guard():
        api = build_app(db)
    err.print(f"second-opinion API on http://{host}:{port} (OpenAPI: /openapi.json)", markup=False)
    access_log = logging.getLogger("uvicorn.access")
    access_log.addFilter(RequestLine(api))
    access_log.addFilter(_redact_bsn)
    uvicorn.run(api, host=host, port=port, log_level="info", proxy_headers=False)


def _redact_bsn(record: logging.LogRecord) -> bool:
    """Request lines quote the path and query a caller typed: mask anything BSN-shaped first."""
    record.msg = redact(str(record.msg))
    if isinstance(record.args, tuple):
        record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
    return True


HIDDEN = "..."
"""What stands in a logged request line for a path segment or a query value the caller typed."""


class RequestLine(logging.Filter):
    """The server's request log keeps what a request line says about the API, not what the caller
    typed into it (a patient's name, an id from their own system): a path segment stays only if
    it is a literal of one of the app's routes or shaped like a case id (:data:`CASE_ID_SHAPE`), a
    query keeps the names of the app's query parameters and drops every value, e.g.
    ``GET /cases/.../history`` and ``GET /cases?state=...&overdue=...``."""

    def __init__(self, app: FastAPI) -> None:
        super().__init__()
        spec = app.openapi().get("paths", {})
        paths = [*spec, *(getattr(route, "path", "") for route in app.routes)]  # /docs and the like are in no spec
        self.literals = frozenset(s for path in paths for s in path.split("/") if s and "{" not in s)
        self.parameters = frozenset(
            parameter["name"] for operations in spec.values() for operation in operations.values()
            for parameter in operation.get("parameters", []) if parameter.get("in") == "query"
        )  # fmt: skip

    def target(self, text: str) -> str:
        """A logged request target (path, then ``?`` and the query) without what the caller typed."""
        path, _, query = text.partition("?")
        segments = [s if not s or s in self.literals or CASE_ID_SHAPE.fullmatch(s) else HIDDEN for s in path.split("/")]
        kept = "/".join(segments)
        if not query:
            return kept
        names = [pair.partition("=")[0] for pair in query.split("&")]
        return kept + "?" + "&".join(f"{n if n in self.parameters else HIDDEN}={HIDDEN}" for n in names)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self.target(a) if isinstance(a, str) and a.startswith("/") else a
                                for a in record.args)  # fmt: skip
        return True


@access_app.command("verify")
def verify_command(db: Db = None, as_json: Json = False) -> None:
    """Check that the access log is one unbroken hash chain; exit 1 naming each break."""
    with _guard(as_json), _service(db) as service:
        count, problems = AccessService(service, DeadlineService(service)).verify_log()
    if as_json:
        _emit(True, {"ok": not problems, "records": count, "problems": problems}, None)
    elif problems:
        err.print("access log verification FAILED: " + "\n".join(problems), markup=False)
    else:
        _emit(False, None, f"access log verified: {count} record(s), no problems")
    if problems:
        raise typer.Exit(1)
