"""What every page of the web desk shares: the services, the signed-in caller, the language, the
templates, and the answer with its security headers.

The pages call :class:`~workflow.service.access.AccessService` exactly as the API's routes do, so
each read is checked and logged the same way; nothing here reads storage.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from second_opinion import i18n, labels
from second_opinion.limits import Limits
from second_opinion.observability import context as request_fields
from second_opinion.settings import Settings
from second_opinion.settings import load as load_settings
from workflow.access import rules
from workflow.access.rules import Principal
from workflow.cases.definitions import Definition
from workflow.errors import Unauthenticated
from workflow.service.access import AccessService
from workflow.service.cases import CaseService
from workflow.service.tokens import TokenService

from .sessions import COOKIE_PATH, LANG_COOKIE, SESSION_COOKIE, Session, SessionStore, session_key

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
MAX_FORM = 64 * 1024
"""Bytes of one submitted form (the edge refuses bodies over 256 KiB before this)."""
MAX_FORM_FIELDS = 64

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
"""On every answer under /ui (pages, errors, redirects and the stylesheet alike)."""


def N_(text: str) -> str:
    """Marks a message for the catalogue that is translated later, where it is shown."""
    return text


SHOWN_WORDS = (N_("received"), N_("waived"), N_("missing"), N_("accepted"), N_("rejected"), N_("denied"),
               N_("noted"))
"""Values the templates translate as they show them (a checklist item's status, a record's outcome)."""


class SignInRequired(Exception):
    """No live session: the page answers with a redirect to the sign-in form."""


class Refused(Exception):
    """A page's own refusal (a bad form, a missing CSRF token): an error page with this status."""

    def __init__(self, status: int, title: str, detail: str = "", headers: Mapping[str, str] | None = None) -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.detail = detail
        self.headers = dict(headers or {})


@dataclass
class Caller:
    session: Session
    principal: Principal

    @property
    def role(self) -> str:
        return self.principal.token.role


class Ui:
    """The web desk's services and settings, built once per app."""

    def __init__(self, service: CaseService, limits: Limits, config: Settings | None = None,
                 store: SessionStore | None = None) -> None:  # fmt: skip
        config = config or load_settings()
        self.service = service
        self.runtime = service.runtime
        self.access = AccessService(service.runtime)
        self.tokens = TokenService(service.runtime)
        self.limits = limits
        configured = None if config.session_key is None else config.session_key.get_secret_value()
        self.store = store or SessionStore(session_key(service.runtime.identity_key, configured),
                                           service.runtime.uow, service.runtime.clock)  # fmt: skip
        self.tls_proxy = config.tls_proxy  # a proxy ends TLS before us: cookies are always Secure
        self.capabilities = rules.capabilities(service.runtime.definition)
        self.templates = Environment(
            loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True), auto_reload=False
        )

    @property
    def definition(self) -> Definition:
        return self.access.definition

    def now(self) -> datetime:
        return self.runtime.clock.now()

    # --- who is asking ------------------------------------------------------------------------

    def session(self, request: Request) -> Session | None:
        return self.store.get(request.cookies.get(SESSION_COOKIE))

    def caller(self, request: Request, *, read: bool = True) -> Caller:
        """The signed-in caller; :class:`SignInRequired` when there is no live session. A page
        read is charged to the token's read limit, as the API's reads are."""
        session = self.session(request)
        if session is None:
            raise SignInRequired()
        try:
            token = self.tokens.active(session.token_id)
        except Unauthenticated:
            self.store.end_token(session.token_id)
            raise SignInRequired() from None
        if read:
            wait = self.limits.take_read(token.id)
            if wait:
                raise Refused(429, N_("Too many requests"), N_("Too many pages for this token; wait a moment."),
                              {"Retry-After": str(wait)})  # fmt: skip
        client = request.client.host if request.client else None
        case_id = request.path_params.get("case_id")
        request_fields.annotate(organisation=token.organisation, case_id=case_id if isinstance(case_id, str) else None)
        return Caller(session, Principal(token, client=client, via="web"))

    def client(self, request: Request) -> str:
        return request.client.host if request.client else "unknown"

    def secure(self, request: Request) -> bool:
        return self.tls_proxy or request.url.scheme == "https"

    # --- language -----------------------------------------------------------------------------

    def lang(self, request: Request) -> str:
        chosen = request.cookies.get(LANG_COOKIE)
        if chosen in i18n.LANGUAGES:
            return str(chosen)
        return i18n.negotiate(request.headers.get("accept-language"))

    # --- answers ------------------------------------------------------------------------------

    def page(self, request: Request, template: str, context: Mapping[str, Any], status: int = 200,
             caller: Caller | None = None) -> HTMLResponse:  # fmt: skip
        lang = self.lang(request)
        translations = i18n.translator(lang)
        kept = self.store.take_notices(caller.session) if caller else []
        notices = [translations.gettext(text) % params for text, params in kept]
        values = {
            "lang": lang,
            "_": translations.gettext,
            "ngettext": translations.ngettext,
            "dt": lambda value: i18n.format_datetime(value, lang) if isinstance(value, datetime) else "-",
            "day": lambda text: i18n.format_day(text, lang),
            "label": lambda kind, name: labels.label(kind, name, lang) if name else "",
            "path": _here(request),
            "caller": caller,
            "csrf": caller.session.csrf if caller else None,
            "may_audit": caller is not None and caller.role in self.capabilities["audit"],
            "may_report": caller is not None and caller.role in self.capabilities.get("reports", ()),
            "notices": notices,
            **context,
        }
        html = self.templates.get_template(template).render(values)
        return HTMLResponse(html, status_code=status, headers={"Content-Language": lang})

    def redirect(self, to: str) -> RedirectResponse:
        return RedirectResponse(to, status_code=303)

    def set_cookie(self, request: Request, response: Response, name: str, value: str, max_age: int | None) -> None:
        response.set_cookie(name, value, max_age=max_age, path=COOKIE_PATH, secure=self.secure(request),
                            httponly=True, samesite="strict")  # fmt: skip

    def clear_cookie(self, request: Request, response: Response, name: str) -> None:
        response.delete_cookie(name, path=COOKIE_PATH, secure=self.secure(request), httponly=True, samesite="strict")


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body as {name: value} (the first of a repeated
    name), bounded in bytes and fields; anything else is refused with a page."""
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise Refused(415, N_("Unsupported form"), N_("Send the form as the page does."))
    body = await request.body()
    if len(body) > MAX_FORM:
        raise Refused(413, N_("Form too large"), N_("A form may hold at most 64 KiB."))
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                          max_num_fields=MAX_FORM_FIELDS)  # fmt: skip
    except (UnicodeDecodeError, ValueError):
        raise Refused(400, N_("Unreadable form"), N_("The form could not be read.")) from None
    found: dict[str, str] = {}
    for name, value in pairs:
        found.setdefault(name, value)
    return found


def _here(request: Request) -> str:
    """The page's own path and query, for the language switch to come back to."""
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def safe_next(target: str | None, default: str = "/ui/board") -> str:
    """A place under /ui to go back to: a path of ours, never another host (no open redirect)."""
    if not target or len(target) > 512 or not target.startswith("/ui") or target.startswith("//"):
        return default
    if any(ch in target for ch in ("\\", "\r", "\n", "\t", " ")) or "//" in target or "@" in target:
        return default
    return target


PageFunction = Callable[..., Response]
