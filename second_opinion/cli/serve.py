"""The long-running commands: ``serve`` runs the HTTP service (uvicorn), ``worker`` the deadline
worker; and ``access-log verify`` checks the access log's chain. Registered in
:mod:`second_opinion.cli.root`.

The web stack and the scheduler load inside the commands that run them, never at import: every
other command imports this module too (to build the command line), and must start at once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from workflow.clock import utc_iso
from workflow.errors import ConfigurationError, ValidationError
from workflow.privacy import redact

from ..bootstrap import ENV_CLOCK, ENV_SEND_TIMEOUT, connect_deadlines, send_timeout_from_env
from ..settings import MAX_SEND_TIMEOUT
from ..settings import load as load_settings
from .common import Db, Json, Lang, emit, err, guard, open_service, out, words

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ..observability import Observability

DEFAULT_METRICS_HOST = "127.0.0.1"


AllowClock = Annotated[
    bool,
    typer.Option(
        "--allow-clock-override",
        help="Obey $SECOND_OPINION_CLOCK (a pinned 'now': tests and demos only); without it a pinned clock is refused.",
    ),
]


def serve_command(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8080,
    header_timeout: Annotated[float, typer.Option(
        "--header-timeout", min=0.1, max=3600,
        help="Seconds for a whole request head to arrive (from connecting or the last response).")] = 10.0,
    keep_alive: Annotated[float, typer.Option(
        "--keep-alive", min=0.1, max=3600, help="Seconds an idle keep-alive connection stays open.")] = 5.0,
    body_timeout: Annotated[float, typer.Option(
        "--body-timeout", min=0.1, max=3600, help="Seconds a whole request body may take (408).")] = 10.0,
    max_connections: Annotated[int, typer.Option(
        "--max-connections", min=1, max=100_000, help="Open connections past which requests get 503.")] = 200,
    max_per_address: Annotated[int, typer.Option(
        "--max-connections-per-address", min=0, max=100_000,
        help="Open connections from one client address past which new ones are closed (0: none).")] = 100,
    allow_clock_override: AllowClock = False,
    metrics_port: MetricsPort = 0,
    metrics_host: MetricsHost = DEFAULT_METRICS_HOST,
    db: Db = None,
) -> None:  # fmt: skip
    """Serve the HTTP API (OpenAPI at /openapi.json, docs at /docs). Run several on one PostgreSQL
    to scale out reads: every command locks its case row, so they never overwrite each other, and
    commands from all of them append to the audit log one at a time (docs/api.md). Rate
    limits come from $SECOND_OPINION_RATE_TOKEN, _CASE, _CASE_TOKEN, _AUTH_FAILURES and _READ
    (docs/api.md).
    Behind a reverse proxy every client has its address: raise --max-connections-per-address.
    Logs: $SECOND_OPINION_LOG_FORMAT; traces: $SECOND_OPINION_TRACING (docs/operations.md)."""
    import uvicorn

    from ..api.server import ServerLimits, server_config
    from ..bootstrap import build_app

    limits = ServerLimits(header_timeout, keep_alive, body_timeout, max_connections, max_per_address)
    with guard():
        warning = pinned_clock("serve", allow_clock_override)
        seen = observing(metrics_port)
        api = build_app(db, body_timeout=limits.body_timeout, observability=seen)
        where = serve_metrics(seen, metrics_host, metrics_port)
    if warning:
        err.print(f"warning: {warning}", markup=False)
    # a log line, not a print: in JSON mode every line of standard error is one JSON object
    logging.getLogger("second_opinion.api").info("second-opinion API on http://%s:%d (OpenAPI: /openapi.json)%s",
                                                 host, port, where)  # fmt: skip
    quiet_request_lines(api)
    # uvicorn's lines go through our logging; its access line is filtered as before
    uvicorn.Server(server_config(api, host, port, limits, own_logging=True)).run()


MetricsPort = Annotated[int, typer.Option(
    "--metrics-port", min=0, max=65535,
    help="Serve Prometheus /metrics on this port, a listener of its own (0: no metrics).")]  # fmt: skip
MetricsHost = Annotated[str, typer.Option(
    "--metrics-host", help="Address the metrics listener binds to (default: this machine only).")]  # fmt: skip


def observing(metrics_port: int) -> Observability:
    """Logging configured (``$SECOND_OPINION_LOG_FORMAT``), metrics if a port is given, spans if
    ``$SECOND_OPINION_TRACING`` asks: what ``serve`` and ``worker`` observe with."""
    from ..observability import Observability, settings_from_env
    from ..observability.logs import configure

    settings = settings_from_env()
    configure(settings.log_format)
    return Observability.start(settings, metrics=metrics_port > 0)


def serve_metrics(seen: Observability, host: str, port: int) -> str:
    """Start the metrics listener when asked; what the start line says of it."""
    if seen.metrics is None:
        return ""
    try:
        bound = seen.metrics.serve(host, port)
    except OSError as exc:
        raise ConfigurationError("--metrics-port", f"cannot listen on {host}:{port} ({exc.strerror})") from None
    return f", metrics on http://{host}:{bound}/metrics"


def quiet_request_lines(api: FastAPI) -> None:
    """The server's request log, as :class:`RequestLine` and :func:`redact_bsn` leave it."""
    access_log = logging.getLogger("uvicorn.access")
    access_log.addFilter(RequestLine(api))
    access_log.addFilter(redact_bsn)


def redact_bsn(record: logging.LogRecord) -> bool:
    """Request lines quote the path and query a caller typed: mask anything BSN-shaped first."""
    record.msg = redact(str(record.msg))
    if isinstance(record.args, tuple):
        record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
    return True


class RequestLine(logging.Filter):
    """The server's request log keeps what a request line says about the API, not what the caller
    typed into it (a patient's name, an id from their own system): each request target, whatever
    its form (origin, absolute, ``*``, anything else), is logged as
    :class:`~second_opinion.api.request_target.RequestTarget` keeps it, e.g.
    ``GET /cases/.../history`` and ``GET /cases?state=...&overdue=...``, and a method that is not
    one of HTTP's as ``...``. uvicorn's request line is ``'%s - "%s %s HTTP/%s" %d'`` with
    (client, method, target, version, status); a record of any other shape keeps no text argument."""

    def __init__(self, app: FastAPI) -> None:
        from ..api.request_target import RequestTarget

        super().__init__()
        self.target = RequestTarget.of(app).target

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and record.msg == REQUEST_LINE:
            client, method, target, version, status = args
            method = method if method in METHODS else HIDDEN
            record.args = (client, method, self.target(str(target)), version, status)
        elif isinstance(args, tuple):
            record.args = tuple(HIDDEN if isinstance(a, str | bytes) else a for a in args)
        elif isinstance(args, Mapping):
            record.args = {k: HIDDEN if isinstance(a, str | bytes) else a for k, a in args.items()}
        return True


REQUEST_LINE = '%s - "%s %s HTTP/%s" %d'
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})
HIDDEN = "..."


def pinned_clock(command: str, allowed: bool) -> str | None:
    """A long-running command refuses ``$SECOND_OPINION_CLOCK`` unless ``--allow-clock-override``
    is given: one stray variable would otherwise freeze time for every case it serves (no deadline
    would ever fall due; every record would carry the same instant). Allowed, it is the warning to
    log at the start (and the worker's before every sweep); None when no clock is pinned."""
    config = load_settings()  # a bad value of any variable: one error line, before anything is opened
    if config.clock is None:
        return None
    if not allowed:
        problem = (f"{command} refuses a pinned clock (it would freeze time for every case); unset it, or pass "
                   "--allow-clock-override for a test or a demo")  # fmt: skip
        raise ConfigurationError(ENV_CLOCK, problem)
    return f"{ENV_CLOCK} pins the clock at {utc_iso(config.clock)} (--allow-clock-override): not for production"


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
    log_signing_key: Annotated[Path | None, typer.Option(
        "--log-signing-key", help="Sign a checkpoint of the transparency log with this key (audit keygen).")] = None,
    witness_dir: Annotated[Path | None, typer.Option(
        "--witness-dir", help="Write each checkpoint to this directory (keep it out of the database owner's reach).")
    ] = None,
    witness_url: Annotated[str | None, typer.Option(
        "--witness-url", help="POST each checkpoint (text/plain) to this URL.")] = None,
    checkpoint_every: Annotated[float, typer.Option(
        "--checkpoint-every", min=1, max=7 * 86400, help="Seconds between checkpoints.")] = 3600,
    allow_clock_override: AllowClock = False,
    metrics_port: MetricsPort = 0,
    metrics_host: MetricsHost = DEFAULT_METRICS_HOST,
    db: Db = None,
) -> None:  # fmt: skip
    """Run the deadline worker: sweep due reminders and breaches, deliver notifications, keep the
    transparency log current (and, with a key, sign checkpoints for the witnesses). SIGTERM or
    SIGINT stops it within moments, leaving what it did not deliver to the next run."""
    import os
    import socket
    from functools import partial

    from jobs import SEND_TIMEOUT, Delivery, LogKeeper, Witnesses, Worker
    from workflow.audit.checkpoint import Signer
    from workflow.service.cases import CaseService
    from workflow.service.transparency import LogService

    from .progress import progress_bar
    from .transparency import read_text

    with guard():
        warning = pinned_clock("worker", allow_clock_override)
        if send_timeout is not None and not 0.1 <= send_timeout <= MAX_SEND_TIMEOUT:  # NaN passes click's range
            raise ValidationError("--send-timeout", f"must be a number of seconds from 0.1 to {MAX_SEND_TIMEOUT:g}")
        seen = observing(metrics_port)
    with guard(), open_service(db, channel=f"worker:{socket.gethostname()}:{os.getpid()}") as plain:
        if warning:  # once the database answers: a command that fails says one line, not two
            logging.getLogger("second_opinion.worker").warning("%s", warning)
        service = CaseService.on(seen.on(plain.runtime))
        where = serve_metrics(seen, metrics_host, metrics_port)
        if where:
            logging.getLogger("second_opinion.worker").info("metrics on %s", where.removeprefix(", metrics on "))
        deadlines = connect_deadlines(service)
        timeout = send_timeout or send_timeout_from_env() or SEND_TIMEOUT
        delivery = Delivery(deadlines, max_attempts=max_attempts, send_timeout=timeout)
        signer = None if log_signing_key is None else Signer.parse(read_text(log_signing_key, "--log-signing-key"))
        if witness_url is not None and not witness_url.startswith(("https://", "http://")):
            raise ValidationError("--witness-url", "must be an http(s) URL")
        keeper = LogKeeper(LogService(service.runtime), signer, Witnesses(witness_dir, witness_url), checkpoint_every)
        catch_up = partial(progress_bar, "catching up", "claims")  # the first sweep's bar, on a terminal
        worker = Worker(deadlines, delivery, interval, keeper, catch_up, warning=None if once else warning)
        if once:
            swept, delivered = worker.once()
            out.print(
                f"swept {swept.cases} cases: {swept.reminders} reminders, {swept.breaches} breaches; "
                f"delivered {delivered.delivered}, failed {delivered.failed}, dead {delivered.dead}"
            )
        else:
            worker.run()


def access_verify_command(db: Db = None, as_json: Json = False, lang: Lang = None) -> None:
    """Check that the access log is one unbroken hash chain; exit 1 naming each break."""
    from workflow.service.access import AccessService

    w = words(lang)
    with guard(as_json), open_service(db) as service:
        count, problems = AccessService(service.runtime).verify_log()
    if as_json:
        emit(True, {"ok": not problems, "records": count, "problems": problems}, None)
    elif problems:
        err.print(w.t("access log verification FAILED: ") + "\n".join(problems), markup=False)
    else:
        emit(False, None, w.t("access log verified: %(count)s record(s), no problems") % {"count": count})
    if problems:
        raise typer.Exit(1)
