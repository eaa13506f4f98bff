"""What every command shares: the consoles, the shared options, the error guard and the parsers.

User errors (anything derived from :class:`~workflow.errors.SecondOpinionError`) print one line
on stderr, no traceback, and exit 1; under ``--json`` stdout also gets ``{"error": {...}}`` so
scripts can parse every outcome. A database that cannot serve now (unreachable, locked past the
lock timeout, full, read-only: storage raises :class:`~workflow.errors.StorageUnavailable`) is one
line too, naming the cause. Exit 2 is
reserved for command-line usage errors (printed by click, see :mod:`second_opinion.cli.root`).

Nothing heavy is imported here: every command's module imports this one, and a read command
must start at once.
"""

from __future__ import annotations

import getpass
import json
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from storage import DEFAULT_URL
from workflow.cases.case import Actor
from workflow.cases.definitions import DEFINITION
from workflow.clock import parse_instant
from workflow.errors import SecondOpinionError, StorageUnavailable, ValidationError, first_line
from workflow.privacy import redact
from workflow.service.cases import CaseService

from .. import render
from ..bootstrap import ENV_DB, connect
from ..settings import env_text

if TYPE_CHECKING:
    from rich.console import Console

    from ..labels import Words


class LazyConsole:
    """A rich console made when it first prints: a command that prints JSON never loads rich."""

    def __init__(self, make: Callable[[], Console]) -> None:
        self.make = make

    @cached_property
    def console(self) -> Console:
        return self.make()

    def print(self, *objects: Any, **options: Any) -> None:
        self.console.print(*objects, **options)


def stdout_console() -> Console:
    from rich.console import Console

    # Piped output has no terminal width; rich would assume 80 columns and truncate ids and states.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)  # one error, one line: never wrapped


out = LazyConsole(stdout_console)
err = LazyConsole(stderr_console)

Db = Annotated[str | None, typer.Option("--db", help=f"Database URL (default ${ENV_DB} or {DEFAULT_URL}).")]
Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
ActorId = Annotated[
    str | None, typer.Option("--actor", help="Who acts (default $SECOND_OPINION_ACTOR or user:<login>).")
]
Role = Annotated[
    str,
    typer.Option(
        "--role", envvar="SECOND_OPINION_ROLE", help=f"Role of the actor: {', '.join(DEFINITION.role_names)}."
    ),
]
OnBehalf = Annotated[str | None, typer.Option("--on-behalf-of", help="Whom the actor acts for.")]
Key = Annotated[
    str | None, typer.Option("--idempotency-key", help="Retry-safe key: a repeat returns the first result.")
]
BsnStdin = Annotated[
    bool,
    typer.Option("--bsn-stdin", help="Read the patient's BSN from stdin (never pass it as an argument)."),
]
Org = Annotated[
    str, typer.Option("--org", envvar="SECOND_OPINION_ORG", help="The organisation that owns the case.")
]
Occurred = Annotated[
    str | None, typer.Option("--occurred-at", help="When it happened (ISO 8601 with offset); default now.")
]


def chosen_lang(value: str | None) -> str:
    """``--lang``'s callback: the flag (``en`` or ``nl``), else ``$SECOND_OPINION_LANG`` (``nl``,
    ``nl_NL.UTF-8``...; unset or empty: English). Run while the command line is parsed, so a value
    it cannot read stops the command before it opens anything: one ``error:`` line, exit 2 (a
    usage error, as click's own are). Never a silent English, which would hide a typo."""
    from .. import i18n

    if value is not None:
        if value in i18n.LANGUAGES:
            return value
        refuse_lang("--lang", value)
    env = env_text("lang")
    if not env.strip():
        return i18n.DEFAULT
    found = i18n.language(env)
    if found is None:
        refuse_lang(f"${i18n.ENV_LANG}", env)
    return found


def refuse_lang(where: str, value: str) -> NoReturn:
    from .. import i18n

    shown = value[: i18n.MAX_LANG] + ("..." if len(value) > i18n.MAX_LANG else "")
    choices = ", ".join(i18n.LANGUAGES)
    err.print(f"error: {where}: {one_line(redact(repr(shown)))} is not a language of the output; choose one of: "
              f"{choices}", markup=False)  # fmt: skip
    raise typer.Exit(2)


Lang = Annotated[
    str | None,
    typer.Option(
        "--lang",
        callback=chosen_lang,
        metavar="[en|nl]",
        help="Language of the human output: en or nl (default $SECOND_OPINION_LANG, else en). "
        "--json and --csv are the same in both.",
    ),
]
"""The one ``--lang`` of every command whose human output is translated; the command receives
``en`` or ``nl`` (:func:`chosen_lang`), never None."""


def words(lang: str | None) -> Words:
    """The words of ``--lang``'s language (:class:`~second_opinion.labels.Words`)."""
    from ..labels import Words

    return Words(lang or "en")


@contextmanager
def guard(as_json: bool = False) -> Iterator[None]:
    """Turn a refusal, or a database that cannot be reached, into one ``error:`` line and exit 1."""
    try:
        yield
    except SecondOpinionError as exc:
        fail(type(exc).__name__, str(exc), as_json)
    except StorageUnavailable as exc:  # any other StorageError is a bug: it propagates
        fail("StorageUnavailable", f"the database is unavailable ({exc.reason}: {first_line(exc)}); try again", as_json)


def fail(kind: str, text: str, as_json: bool) -> NoReturn:
    message = one_line(redact(text))  # errors may quote what was typed; never a BSN
    if as_json:
        print_json({"error": {"type": kind, "message": message}})
    err.print(f"error: {message}", markup=False)
    raise typer.Exit(1) from None


def one_line(message: str) -> str:
    """The last defence of "one error, one line": messages quote typed values with repr(), but a
    line break or a byte that is not UTF-8 (a lone surrogate) that still slips through is escaped,
    so it can neither split the line nor crash the output."""
    message = message.replace("\r", "\\r").replace("\n", "\\n")
    return message.encode("utf-8", "backslashreplace").decode("utf-8")


def print_json(data: Any) -> None:
    """JSON goes straight to stdout: rich would wrap long lines, breaking strings in two."""
    sys.stdout.write(render.dumps(data) + "\n")


def emit(as_json: bool, data: Any, human: Any) -> None:
    """``data`` as JSON, or ``human`` (text, a table, or a function making one) on the console."""
    if as_json:
        print_json(data)
    else:
        out.print(human() if callable(human) else human)


def actor_of(actor: str | None, role: str, on_behalf_of: str | None) -> Actor:
    if actor is None:
        actor = env_text("actor") or "user:" + re.sub(r"[^A-Za-z0-9._-]", "_", getpass.getuser())
    return Actor(actor, role, on_behalf_of)


def occurred(text: str | None) -> datetime | None:
    return parse_instant(text, "--occurred-at") if text else None


def open_service(db: str | None, channel: str | None = None) -> CaseService:
    """The service on ``db``; its commands are recorded as written through ``channel`` (default:
    this command line, ``cli:<OS user>@<host>``)."""
    return connect(db, channel=channel or cli_channel())


def cli_channel() -> str:
    """``cli:<OS user>@<host>``: who ran the command, as the operating system says (not proof:
    docs/audit.md says what a channel proves)."""
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{user}@{socket.gethostname()}"


def json_object(text: str | None, option: str = "--data") -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(option, f"not valid JSON ({exc.msg} at position {exc.pos})") from None
    except RecursionError:  # the decoder recurses per level: "[[[[..." exhausts the stack before it fails
        raise ValidationError(option, "nests too deeply to be read") from None
    if not isinstance(value, dict):
        raise ValidationError(option, 'must be a JSON object such as \'{"key": "value"}\'')
    return value


def bsn_from_stdin() -> str:
    try:
        line = sys.stdin.readline()
    except UnicodeDecodeError:
        raise ValidationError("BSN", "stdin is not UTF-8 text; a BSN is 9 digits") from None
    if not line.strip():
        raise ValidationError("BSN", "--bsn-stdin was given but stdin was empty")
    return line.strip()


def name_from_stdin() -> str:
    try:
        line = sys.stdin.readline()
    except UnicodeDecodeError:
        raise ValidationError("patient name", "stdin is not UTF-8 text") from None
    if not line.strip():
        raise ValidationError("patient name", "--patient-name-stdin was given but stdin had no (further) line")
    return line.strip()
