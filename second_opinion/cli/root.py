"""The ``second-opinion`` command line: the typer app, and every command registered on it, in
the order ``--help`` lists them. The commands themselves live in the modules beside this one
(:mod:`.cases`, :mod:`.audit`, :mod:`.deadlines`, :mod:`.tokens`, :mod:`.serve`), which import
only :mod:`.common`; nothing imports this module but the package.

Usage errors (exit 2: a bad choice, an unknown command, an extra argument) are printed by click;
a BSN in them is masked by :class:`Commands`. See docs/cli.md for the whole contract.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
import typer.core

from workflow.privacy import redact

from . import audit, cases, config, deadlines, next_steps, reports, serve, tokens, transparency, webhooks, worklists

NAME = "second-opinion"


class Commands(typer.core.TyperGroup):
    """The top-level group. Usage errors (exit 2: a bad choice, an unknown command, an extra
    argument) quote what was typed and are printed by click, not by :func:`~.common.guard`; a BSN
    in them is masked here. Every subcommand's arguments are parsed inside this group's ``invoke``."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        with masked_usage():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: Any) -> Any:
        with masked_usage():
            return super().invoke(ctx)


USAGE_ERROR: type[Any] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
"""click's UsageError, which recent typer versions vendor (typer._click): found through the public
BadParameter, its subclass, so either kind of typer is served."""


@contextmanager
def masked_usage() -> Iterator[None]:
    try:
        yield
    except USAGE_ERROR as exc:
        exc.message = redact(exc.message)
        raise


def version() -> str:
    """The installed distribution's version; a source tree that is not installed has the package's."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as distribution_version

    try:
        return distribution_version(NAME)
    except PackageNotFoundError:
        from .. import __version__

        return __version__


def print_version(wanted: bool) -> None:
    if wanted:
        typer.echo(f"{NAME} {version()}")
        raise typer.Exit()


app = typer.Typer(
    cls=Commands,
    name=NAME,
    help="Run Dutch second-opinion cases as persisted state machines with a verifiable audit trail.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def root(
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Run Dutch second-opinion cases as persisted state machines with a verifiable audit trail."""


app.command("init")(cases.init_command)
app.command("open")(cases.open_command)
app.command("fire", help=cases.FIRE_HELP)(cases.fire_command)
app.command("show")(worklists.show_command)
app.command("next")(next_steps.next_command)
app.command("cases")(worklists.cases_command)
app.command("history")(cases.history_command)
app.command("diagram")(cases.diagram_command)
app.command("coverage")(cases.coverage_command)
app.command("providers")(cases.providers_command)
app.command("report")(reports.report_command)
app.command("demo")(cases.demo_command)
app.command("worker")(serve.worker_command)
app.command("serve")(serve.serve_command)
app.command("config")(config.config_command)

audit_app = typer.Typer(help="Verify and export the audit trail.", no_args_is_help=True)
audit_app.command("verify")(audit.verify_command)
audit_app.command("export")(audit.export_command)
audit_app.command("keygen")(transparency.keygen_command)
audit_app.command("checkpoint")(transparency.checkpoint_command)
audit_app.command("prove")(transparency.prove_command)
audit_app.command("extends")(transparency.extends_command)
app.add_typer(audit_app, name="audit")

calendar_app = typer.Typer(help="Working-day arithmetic on the Dutch calendars.", no_args_is_help=True)
calendar_app.command("add-working-days")(deadlines.add_command)
calendar_app.command("working-days")(deadlines.between_command)
app.add_typer(calendar_app, name="calendar")

deadlines_app = typer.Typer(help="Deadlines: list them, or recompute them after calendar data changed.")
deadlines_app.callback(invoke_without_command=True)(deadlines.deadlines_command)
deadlines_app.command("recompute")(deadlines.recompute_command)
app.add_typer(deadlines_app, name="deadlines")

outbox_app = typer.Typer(help="Notifications waiting, delivered or dead-lettered.")
outbox_app.callback(invoke_without_command=True)(deadlines.outbox_command)
outbox_app.command("retry")(deadlines.retry_command)
app.add_typer(outbox_app, name="outbox")

access_app = typer.Typer(help="The NEN 7513 access log (read it over HTTP: GET /access-log).", no_args_is_help=True)
access_app.command("verify")(serve.access_verify_command)
app.add_typer(access_app, name="access-log")

token_app = typer.Typer(help="API tokens: create (shown once), list, revoke.", no_args_is_help=True)
token_app.command("create")(tokens.create_command)
token_app.command("list")(tokens.list_command)
token_app.command("revoke")(tokens.revoke_command)
app.add_typer(token_app, name="token")

webhook_app = typer.Typer(help="Webhook subscriptions per organisation: add (secret shown once), list, remove, "
                          "rotate-secret, activate, deactivate.", no_args_is_help=True)  # fmt: skip
webhook_app.command("add")(webhooks.add_command)
webhook_app.command("list")(webhooks.list_command)
webhook_app.command("remove")(webhooks.remove_command)
webhook_app.command("rotate-secret")(webhooks.rotate_command)
webhook_app.command("activate")(webhooks.activate_command)
webhook_app.command("deactivate")(webhooks.deactivate_command)
app.add_typer(webhook_app, name="webhook")


def main() -> None:
    app()
