"""What a form changes: signing in and out, opening a case, firing an event.

Every POST checks its CSRF token first: a form without the session's token (or, for signing in,
the token of the sign-in form's cookie) is answered 403 and nothing is read or written. Then the
same rate limits as the API's: failed sign-ins per client address, writes per token and per case.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from second_opinion.api.problems import problem_for
from workflow.cases.case import CASE_ID_SHAPE
from workflow.errors import ConcurrentUpdate, SecondOpinionError, Unauthenticated, UnknownCase
from workflow.privacy import redact

from .context import N_, Caller, Refused, Ui, read_form
from .forms import parse_fire
from .pages import case_view
from .sessions import ABSOLUTE, PRE_COOKIE, SESSION_COOKIE, csrf_ok

log = logging.getLogger("second_opinion.web")
MAX_TOKEN = 200
"""Characters of a token typed into the sign-in form (ours are 47)."""
FORBIDDEN = N_("The form was refused")
FORBIDDEN_DETAIL = N_("It did not carry this page's security token (it may be from an old page or another site). "
                      "Nothing was changed; reload the page and try again.")


def routes(ui: Ui) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/sign-in")
    def sign_in_form(request: Request) -> Response:
        if ui.session(request) is not None:
            return ui.redirect("/ui/board")
        return sign_in_page(ui, request)

    @router.post("/sign-in")
    async def sign_in(request: Request) -> Response:
        form = await read_form(request)
        if not csrf_ok(ui.store.sign_in_token(request.cookies.get(PRE_COOKIE)), form.get("csrf")):
            raise Refused(403, FORBIDDEN, FORBIDDEN_DETAIL)
        secret = form.get("token", "").strip()
        address = ui.client(request)
        try:
            if len(secret) > MAX_TOKEN:
                raise Unauthenticated("the token is not known")
            token = await run_in_threadpool(ui.tokens.authenticate, secret or None)
        except Unauthenticated:
            # as the API: a valid token always passes; past the limit an address gets 429
            wait = ui.limits.auth_blocked(address)
            if wait:
                raise Refused(429, N_("Too many failed sign-ins"), N_("Wait a minute before trying again."),
                              {"Retry-After": str(wait)}) from None  # fmt: skip
            ui.limits.auth_failed(address)
            return sign_in_page(ui, request, failed=True)
        cookie, _ = ui.store.start(token.id)
        answer = ui.redirect("/ui/board")
        ui.set_cookie(request, answer, SESSION_COOKIE, cookie, max_age=ABSOLUTE)
        ui.clear_cookie(request, answer, PRE_COOKIE)
        return answer

    @router.post("/sign-out")
    async def sign_out(request: Request) -> Response:
        form = await read_form(request)
        session = ui.session(request)
        if session is None:
            return ui.redirect("/ui/sign-in")
        if not csrf_ok(session.csrf, form.get("csrf")):
            raise Refused(403, FORBIDDEN, FORBIDDEN_DETAIL)
        ui.store.end(session)
        answer = ui.redirect("/ui/sign-in")
        ui.clear_cookie(request, answer, SESSION_COOKIE)
        return answer

    @router.post("/cases")
    async def open_case(request: Request) -> Response:
        caller, form = await checked(ui, request, None)
        patient_ref = form.get("patient_ref", "").strip()[:65]
        route = form.get("route", "").strip()[:33] or "domestic"
        receipt = await run_in_threadpool(ui.access.open_case, caller.principal, patient_ref, route=route)
        ui.store.notify(caller.session, N_("Case %(case)s was opened."), {"case": receipt.case_id})
        return ui.redirect(f"/ui/cases/{receipt.case_id}")

    @router.post("/cases/{case_id}/events")
    async def fire(request: Request, case_id: str) -> Response:
        caller, form = await checked(ui, request, case_id)
        return await run_in_threadpool(fire_form, ui, request, caller, case_id, form)

    return router


async def checked(ui: Ui, request: Request, case_id: str | None) -> tuple[Caller, dict[str, str]]:
    """The caller of a write, its form, its CSRF token checked, within the API's write limits."""
    form = await read_form(request)
    caller = await run_in_threadpool(ui.caller, request, read=False)
    if not csrf_ok(caller.session.csrf, form.get("csrf")):
        raise Refused(403, FORBIDDEN, FORBIDDEN_DETAIL)
    keyed = f"{caller.principal.organisation}/{case_id}" if case_id and CASE_ID_SHAPE.fullmatch(case_id) else None
    wait = ui.limits.take_write(caller.principal.token.id, keyed)
    if wait:
        raise Refused(429, N_("Too many changes"), N_("Too many changes for this token or this case; wait a moment."),
                      {"Retry-After": str(wait)})  # fmt: skip
    return caller, form


def fire_form(ui: Ui, request: Request, caller: Caller, case_id: str, form: dict[str, str]) -> Response:
    """Fire what a next-step form posted, carrying the version the page showed. Accepted: back to
    the case page (a notice says what happened). Refused: the case page again, with the refusal
    and the form as it was filled in; a changed case is named as such, nothing was changed."""
    try:
        submitted = parse_fire(form, ui.definition)
        receipt = ui.access.fire(caller.principal, case_id, submitted.event, reason=submitted.reason,
                                 data=submitted.data, expect_version=submitted.version)  # fmt: skip
    except ConcurrentUpdate as exc:
        problem = _conflict(ui, request, exc.expected, exc.actual)
        return case_view(ui, request, caller, case_id, status=409, problem=problem, posted=form)
    except UnknownCase:
        raise  # another organisation's case too: the not-found page
    except SecondOpinionError as exc:
        status = problem_for(exc)[0]
        if status >= 500:
            raise
        return case_view(ui, request, caller, case_id, status=status, problem=redact(str(exc)), posted=form)
    ui.store.notify(caller.session, N_("%(event)s was accepted: the case is now %(state)s, version %(version)s."),
                    {"event": receipt.event, "state": receipt.to_state, "version": receipt.version})
    return ui.redirect(f"/ui/cases/{case_id}")


def _conflict(ui: Ui, request: Request, expected: int, actual: int) -> str:
    from second_opinion.i18n import translator

    text = translator(ui.lang(request)).gettext(
        "The case changed after you opened it (you saw version %(expected)s, it is now at version %(actual)s). "
        "Nothing was changed. Read the page again below, then decide.")
    return text % {"expected": expected, "actual": actual}


def sign_in_page(ui: Ui, request: Request, *, failed: bool = False) -> Response:
    cookie, token = ui.store.pre_session()
    answer = ui.page(request, "sign_in.html", {"form_token": token, "failed": failed}, status=401 if failed else 200)
    ui.set_cookie(request, answer, PRE_COOKIE, cookie, max_age=3600)
    return answer
