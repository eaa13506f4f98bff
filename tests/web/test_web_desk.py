"""The web desk without a browser (TestClient on the memory backend): sessions, CSRF, security
headers, rate limits on sign-in failures, access logging as the API's, language negotiation,
error pages. The browser tests (tests/browser) drive the same pages in Chromium."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from second_opinion import connect
from second_opinion.api import create_app
from second_opinion.limits import Limits, Rate
from second_opinion.web.context import safe_next
from second_opinion.web.sessions import SessionStore, csrf_ok
from tests.conftest import T0
from workflow import FixedClock
from workflow.service.access import AccessService
from workflow.service.tokens import TokenService


@pytest.fixture
def desk() -> Any:
    service = connect("memory://")
    tokens = TokenService(service.runtime)
    secrets = {role: tokens.create(f"{role[:4]}-1", role, "org-a")[0]
               for role in ("care_consultant", "auditor", "coordinator")}  # fmt: skip
    secrets["other"] = tokens.create("desk-9", "coordinator", "org-b")[0]
    app = create_app(service, limits=Limits.of(auth_failures=Rate(3, 60)))
    return service, secrets, TestClient(app, raise_server_exceptions=False)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def signed_in(client: TestClient, secret: str) -> str:
    form = client.get("/ui/sign-in")
    answer = client.post("/ui/sign-in", data={"csrf": csrf_of(form.text), "token": secret}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/board", answer.text
    return csrf_of(client.get("/ui/board").text)


def test_security_headers_and_cookie_flags(desk: Any) -> None:
    _, secrets, client = desk
    page = client.get("/ui/sign-in")
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    answer = client.post("/ui/sign-in", data={"csrf": csrf_of(page.text), "token": secrets["coordinator"]},
                         follow_redirects=False)  # fmt: skip
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
    assert "Secure" not in cookie  # plain http, no TLS proxy configured
    assert secrets["coordinator"] not in cookie
    assert client.get("/ui/static/style.css").headers["x-content-type-options"] == "nosniff"


def test_cookie_is_secure_behind_a_tls_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECOND_OPINION_TLS_PROXY", "1")
    service = connect("memory://")
    secret = TokenService(service.runtime).create("desk-1", "coordinator", "org-a")[0]
    client = TestClient(create_app(service), base_url="http://testserver")
    page = client.get("/ui/sign-in")
    assert "Secure" in page.headers["set-cookie"]  # even over plain http: the proxy ended TLS
    client = TestClient(create_app(service), base_url="https://testserver")  # a client keeps Secure cookies for https
    page = client.get("/ui/sign-in")
    answer = client.post("/ui/sign-in", data={"csrf": csrf_of(page.text), "token": secret}, follow_redirects=False)
    assert "Secure" in answer.headers["set-cookie"]


def test_sign_in_needs_the_forms_csrf_token(desk: Any) -> None:
    _, secrets, client = desk
    answer = client.post("/ui/sign-in", data={"token": secrets["coordinator"]}, follow_redirects=False)
    assert answer.status_code == 403 and "The form was refused" in answer.text
    assert "so_session" not in answer.headers.get("set-cookie", "")


def test_a_post_without_or_with_a_wrong_csrf_token_changes_nothing(desk: Any) -> None:
    service, secrets, client = desk
    csrf = signed_in(client, secrets["coordinator"])
    for data in ({"patient_ref": "PX-0001"}, {"patient_ref": "PX-0001", "csrf": "x" + csrf[1:]}):
        answer = client.post("/ui/cases", data=data)
        assert answer.status_code == 403
        assert "<html" in answer.text and "Traceback" not in answer.text
    assert service.cases() == []
    assert client.post("/ui/cases", data={"patient_ref": "PX-0001", "csrf": csrf}).status_code == 200
    assert len(service.cases()) == 1


def test_sign_out_ends_the_session_for_good(desk: Any) -> None:
    _, secrets, client = desk
    csrf = signed_in(client, secrets["coordinator"])
    cookie = client.cookies.get("so_session")
    assert client.post("/ui/sign-out", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    client.cookies.set("so_session", cookie, path="/ui")  # the old cookie, replayed
    assert client.get("/ui/board", follow_redirects=False).headers["location"] == "/ui/sign-in"


def test_a_revoked_token_ends_its_sessions(desk: Any) -> None:
    service, secrets, client = desk
    signed_in(client, secrets["coordinator"])
    tokens = TokenService(service.runtime)
    (token,) = [t for t in tokens.list() if t.role == "coordinator" and t.organisation == "org-a"]
    tokens.revoke(token.id)
    assert client.get("/ui/board", follow_redirects=False).headers["location"] == "/ui/sign-in"


def test_a_forged_cookie_finds_no_session_and_csrf_compares_whole_values() -> None:
    store = SessionStore(b"k" * 32, connect("memory://").runtime.uow, FixedClock(T0))
    cookie, _ = store.start("tok-a")
    assert store.get(cookie) is not None
    assert store.get(cookie.split(".")[0] + ".forged") is None
    assert not csrf_ok("abc", None) and not csrf_ok("abc", "abd") and csrf_ok("abc", "abc")


def test_failed_sign_ins_are_rate_limited_per_address(desk: Any) -> None:
    _, secrets, client = desk
    statuses = []
    for _ in range(5):
        form = client.get("/ui/sign-in")
        statuses.append(client.post("/ui/sign-in", data={"csrf": csrf_of(form.text), "token": "sot_wrong"}).status_code)
    assert statuses == [401, 401, 401, 429, 429]
    form = client.get("/ui/sign-in")  # a valid token still passes, as on the API
    answer = client.post("/ui/sign-in", data={"csrf": csrf_of(form.text), "token": secrets["coordinator"]},
                         follow_redirects=False)  # fmt: skip
    assert answer.status_code == 303


def test_pages_are_logged_as_the_apis_reads(desk: Any) -> None:
    service, secrets, client = desk
    csrf = signed_in(client, secrets["coordinator"])
    case_id = client.post("/ui/cases", data={"patient_ref": "PX-0001", "csrf": csrf},
                          follow_redirects=False).headers["location"].rsplit("/", 1)[1]  # fmt: skip
    before = AccessService(service.runtime).verify_log()[0]
    client.get("/ui/board")
    client.get(f"/ui/cases/{case_id}")
    with service.runtime.uow(False) as uow:
        records = uow.access.all()[before:]
    # the board: one record for the page, naming the cases shown (issue 16); the case page: its reads
    assert [(r.kind, r.outcome, r.case_id or tuple(r.cases or ())) for r in records] == [
        ("list", "granted", (case_id,)), ("case", "granted", case_id), ("history", "granted", case_id),
        ("next", "granted", case_id)]  # the next-step forms: what the role may do now


def test_another_organisations_case_is_a_not_found_page(desk: Any) -> None:
    service, secrets, client = desk
    signed_in(client, secrets["other"])
    csrf = csrf_of(client.get("/ui/board").text)
    case_id = client.post("/ui/cases", data={"patient_ref": "PX-B-1", "csrf": csrf},
                          follow_redirects=False).headers["location"].rsplit("/", 1)[1]  # fmt: skip
    mine = TestClient(client.app, raise_server_exceptions=False)
    csrf = signed_in(mine, secrets["coordinator"])
    page = mine.get(f"/ui/cases/{case_id}")
    assert page.status_code == 404 and "No such case" in page.text and "PX-B-1" not in page.text
    fired = mine.post(f"/ui/cases/{case_id}/events", data={"csrf": csrf, "event": "withdraw", "version": "1",
                                                          "reason": "x"})  # fmt: skip
    assert fired.status_code == 404
    assert service.case(case_id).state == "requested"


def test_dutch_for_a_dutch_browser(desk: Any) -> None:
    _, _, client = desk
    page = client.get("/ui/sign-in", headers={"Accept-Language": "nl-NL,nl;q=0.9,en;q=0.8"})
    assert '<html lang="nl">' in page.text and "Aanmelden" in page.text
    page = client.get("/ui/sign-in", headers={"Accept-Language": "en-GB,en"})
    assert '<html lang="en">' in page.text
    switched = client.get("/ui/language/nl?next=/ui/sign-in", follow_redirects=False)
    assert switched.headers["location"] == "/ui/sign-in"
    assert '<html lang="nl">' in client.get("/ui/sign-in", headers={"Accept-Language": "en"}).text


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example", "/ui/../x", "/ui\\@evil", "/cases"])
def test_the_language_switch_goes_back_only_to_our_pages(target: str) -> None:
    assert safe_next(target) in ("/ui/board", target) and not safe_next(target).startswith("//")
    assert safe_next(target).startswith("/ui")


def test_error_pages_never_show_a_traceback(desk: Any) -> None:
    _, secrets, client = desk
    signed_in(client, secrets["coordinator"])
    for path, status in (("/ui/nowhere", 404), ("/ui/board?state=nonsense", 422), ("/ui/audit", 403)):
        page = client.get(path)
        assert page.status_code == status, path
        assert page.headers["content-type"].startswith("text/html") and "Traceback" not in page.text


def test_swagger_page_names_no_other_host(desk: Any) -> None:
    _, _, client = desk
    page = client.get("/docs").text
    assert "/docs/assets/swagger-ui-bundle.js" in page
    assert not re.findall(r"https?://(?!127\.0\.0\.1)", page)
    assert client.get("/docs/assets/swagger-ui-bundle.js").status_code == 200


def test_the_case_page_offers_what_may_be_done_now_and_says_what_blocks_the_rest(desk: Any) -> None:
    """Next steps on the case page (issue 16): a blocked event is listed with what blocks it, not
    offered as a form, so no one has to try it (and leave a refused record) to find out."""
    service, secrets, client = desk
    csrf = signed_in(client, secrets["coordinator"])
    case_id = client.post("/ui/cases", data={"patient_ref": "PX-0002", "csrf": csrf},
                          follow_redirects=False).headers["location"].rsplit("/", 1)[1]  # fmt: skip
    page = client.get(f"/ui/cases/{case_id}").text
    assert 'id="form-record_circumstances"' in page  # allowed now
    assert 'id="form-receive_item"' not in page  # not in this state: neither offered nor listed
    # the coordinator may not refer (the GP or first provider does): not permitted, not listed either;
    # choose_provider is allowed, give_consent too; nothing here is blocked by a guard yet
    assert 'id="form-choose_provider"' in page
    records = service.history(case_id)
    assert [r.outcome for r in records] == ["accepted"]  # the page tried nothing


def test_the_reports_page_draws_its_charts_inline_and_offers_the_csv(desk: Any) -> None:
    """Reports with pictures on the desk (issue 16): the five charts as inline SVG (no script, no
    other host), the figures as CSV; one ``report`` access record each, naming no case; a role
    without the ``reports`` read gets the 403 page."""
    service, secrets, client = desk
    signed_in(client, secrets["coordinator"])
    page = client.get("/ui/reports")
    assert page.status_code == 200 and page.text.count("<svg") == 5 and "<?xml" not in page.text
    assert "<script" not in page.text and 'href="/ui/reports"' in page.text
    csv = client.get("/ui/reports.csv", params={"route": "royal-doctors"})
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    with service.runtime.uow(False) as uow:
        kinds = [(r.kind, r.case_id) for r in uow.access.all() if r.kind == "report"]
    assert kinds == [("report", None), ("report", None)]
    assert client.get("/ui/reports", params={"route": "nowhere"}).status_code == 422


def test_a_role_without_the_reports_read_gets_the_403_page_and_no_link(desk: Any) -> None:
    service, _, client = desk
    doctor = TokenService(service.runtime).create("dr-1", "second_opinion_doctor", "org-a")[0]
    signed_in(client, doctor)
    assert 'href="/ui/reports"' not in client.get("/ui/board").text
    answer = client.get("/ui/reports")
    assert answer.status_code == 403 and "<svg" not in answer.text
