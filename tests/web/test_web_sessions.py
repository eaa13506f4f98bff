"""Two ``serve`` processes behind one load balancer, as two apps on one database: a desk signed in
on one is signed in on the other (given a shared session key), its message after a form shows on
whichever answers next, and signing out on one ends the session on both."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from second_opinion import connect
from second_opinion.api import create_app
from workflow.service.tokens import TokenService

from .test_web_desk import csrf_of, signed_in


def test_a_session_lives_in_the_database_not_in_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECOND_OPINION_SESSION_KEY", "s" * 32)
    service = connect("memory://")
    secret, _ = TokenService(service.runtime).create("desk-1", "coordinator", "org-a")
    one = TestClient(create_app(service), raise_server_exceptions=False)
    two = TestClient(create_app(service), raise_server_exceptions=False)
    csrf = signed_in(one, secret)
    cookie = one.cookies.get("so_session")
    two.cookies.set("so_session", cookie, path="/ui")
    board = two.get("/ui/board", follow_redirects=False)
    assert board.status_code == 200 and csrf_of(board.text) == csrf  # the same session, the same CSRF token

    opened = one.post("/ui/cases", data={"patient_ref": "PX-0001", "csrf": csrf}, follow_redirects=False)
    case_id = opened.headers["location"].rsplit("/", 1)[1]
    shown = two.get(f"/ui/cases/{case_id}")
    assert f"Case {case_id} was opened." in shown.text  # the message, on the other process
    assert "was opened." not in one.get(f"/ui/cases/{case_id}").text  # and only once

    assert two.post("/ui/sign-out", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert one.get("/ui/board", follow_redirects=False).headers["location"] == "/ui/sign-in"
