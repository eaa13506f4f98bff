"""``serve`` runs the HTTP service (uvicorn); ``access-log verify`` checks the access log's chain."""

from __future__ import annotations

from typing import Annotated

import typer

from workflow.access import AccessService
from workflow.deadline_service import DeadlineService

from .bootstrap import build_app
from .cli import Db, Json, _emit, _guard, _service, app, err

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
    uvicorn.run(api, host=host, port=port, log_level="info", proxy_headers=False)


@access_app.command("verify")
def verify_command(db: Db = None, as_json: Json = False) -> None:
    """Check that the access log is one unbroken hash chain; exit 1 naming each break."""
    with _guard(as_json), _service(db) as service:
        count, problems = AccessService(service, DeadlineService(service)).verify_log()
    ok = not problems
    human = f"access log verified: {count} record(s)" if ok else "\n".join(problems)
    _emit(as_json, {"ok": ok, "records": count, "problems": problems}, human)
    if not ok:
        raise typer.Exit(1)
