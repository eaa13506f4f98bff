"""``serve`` runs the HTTP service (uvicorn); ``access-log verify`` checks the access log's chain."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated

import typer

from workflow.privacy import redact
from workflow.service.access import AccessService

from .api.request_target import RequestTarget
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


class RequestLine(logging.Filter):
    """The server's request log keeps what a request line says about the API, not what the caller
    typed into it (a patient's name, an id from their own system): each request target is logged as
    :class:`~second_opinion.api.request_target.RequestTarget` keeps it, e.g.
    ``GET /cases/.../history`` and ``GET /cases?state=...&overdue=...``."""

    def __init__(self, app: FastAPI) -> None:
        super().__init__()
        self.target = RequestTarget.of(app).target

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self.target(a) if isinstance(a, str) and a.startswith("/") else a
                                for a in record.args)  # fmt: skip
        return True


@access_app.command("verify")
def verify_command(db: Db = None, as_json: Json = False) -> None:
    """Check that the access log is one unbroken hash chain; exit 1 naming each break."""
    with _guard(as_json), _service(db) as service:
        count, problems = AccessService(service.runtime).verify_log()
    if as_json:
        _emit(True, {"ok": not problems, "records": count, "problems": problems}, None)
    elif problems:
        err.print("access log verification FAILED: " + "\n".join(problems), markup=False)
    else:
        _emit(False, None, f"access log verified: {count} record(s), no problems")
    if problems:
        raise typer.Exit(1)
