"""The long-running commands: ``serve`` runs the HTTP service (uvicorn), ``worker`` the deadline
worker; and ``access-log verify`` checks the access log's chain. Registered in
:mod:`second_opinion.cli.root`.

The web stack and the scheduler load inside the commands that run them, never at import: every
other command imports this module too (to build the command line), and must start at once.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated

import typer

from workflow.privacy import redact

from ..bootstrap import ENV_SEND_TIMEOUT, MAX_SEND_TIMEOUT, connect_deadlines, send_timeout_from_env
from .common import Db, Json, emit, err, guard, open_service, out

if TYPE_CHECKING:
    from fastapi import FastAPI


def serve_command(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8080,
    db: Db = None,
) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json, docs at /docs). Run several on one PostgreSQL
    to scale out: every command locks its case row, so they never overwrite each other."""
    import uvicorn

    from ..bootstrap import build_app

    with guard():
        api = build_app(db)
    err.print(f"second-opinion API on http://{host}:{port} (OpenAPI: /openapi.json)", markup=False)
    access_log = logging.getLogger("uvicorn.access")
    access_log.addFilter(RequestLine(api))
    access_log.addFilter(redact_bsn)
    uvicorn.run(api, host=host, port=port, log_level="info", proxy_headers=False)


def redact_bsn(record: logging.LogRecord) -> bool:
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
        from ..api.request_target import RequestTarget

        super().__init__()
        self.target = RequestTarget.of(app).target

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self.target(a) if isinstance(a, str) and a.startswith("/") else a
                                for a in record.args)  # fmt: skip
        return True


def worker_command(
    once: Annotated[bool, typer.Option("--once", help="One sweep and one delivery round, then exit.")] = False,
    interval: Annotated[float, typer.Option("--interval", min=1, max=86400, help="Seconds between sweeps.")] = 30,
    max_attempts: Annotated[
        int, typer.Option("--max-attempts", min=1, max=100, help="Webhook tries before dead-letter.")
    ] = 8,
    send_timeout: Annotated[
        float | None,
        typer.Option(
            "--send-timeout", min=0.1, max=MAX_SEND_TIMEOUT,
            help=f"Seconds a webhook call may take in all (default ${ENV_SEND_TIMEOUT}, else 5).",
        ),
    ] = None,
    db: Db = None,
) -> None:  # fmt: skip
    """Run the deadline worker: sweep due reminders and breaches, deliver notifications. SIGTERM or
    SIGINT stops it within moments, leaving what it did not deliver to the next run."""
    from jobs import SEND_TIMEOUT, Delivery, Worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per call; ours says what failed
    with guard(), open_service(db) as service:
        deadlines = connect_deadlines(service)
        timeout = send_timeout or send_timeout_from_env() or SEND_TIMEOUT
        delivery = Delivery(deadlines, max_attempts=max_attempts, send_timeout=timeout)
        worker = Worker(deadlines, delivery, interval)
        if once:
            swept, delivered = worker.once()
            out.print(
                f"swept {swept.cases} cases: {swept.reminders} reminders, {swept.breaches} breaches; "
                f"delivered {delivered.delivered}, failed {delivered.failed}, dead {delivered.dead}"
            )
        else:
            worker.run()


def access_verify_command(db: Db = None, as_json: Json = False) -> None:
    """Check that the access log is one unbroken hash chain; exit 1 naming each break."""
    from workflow.service.access import AccessService

    with guard(as_json), open_service(db) as service:
        count, problems = AccessService(service.runtime).verify_log()
    if as_json:
        emit(True, {"ok": not problems, "records": count, "problems": problems}, None)
    elif problems:
        err.print("access log verification FAILED: " + "\n".join(problems), markup=False)
    else:
        emit(False, None, f"access log verified: {count} record(s), no problems")
    if problems:
        raise typer.Exit(1)
