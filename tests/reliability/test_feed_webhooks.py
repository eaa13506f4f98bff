"""Signed deliveries of the change feed to a real HTTP receiver on 127.0.0.1 (issue 19).

The receiver keeps each request's headers and body; the signatures are checked with the
``standardwebhooks`` package's own verifier, not with our signer. No test sleeps: the clock is the
runtime's fixed clock, moved by hand past a retry delay.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from freezegun import freeze_time
from standardwebhooks import Webhook, WebhookVerificationError

from jobs import Delivery
from second_opinion import connect
from tests.conftest import BACKENDS, DESK, GP, T0, walk
from tests.reliability.test_worker import DOMESTIC_DUE
from workflow import FixedClock
from workflow.service.cases import CaseService
from workflow.service.deadlines import Channel, DeadlineService
from workflow.service.feed import FeedService

KEY = b"feed-test-identity-key-32-bytes!"


class Receiver:
    """A local endpoint: answers ``status`` (settable), and keeps every request it got."""

    def __init__(self) -> None:
        self.status = 200
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


@pytest.fixture
def feed_service(db_url: str) -> Iterator[CaseService]:
    with connect(db_url, clock=FixedClock(T0), identity_key=KEY) as service:
        yield service


def deliver(service: CaseService, channels: tuple[Channel, ...] = (Channel("log"),)) -> Any:
    return Delivery(DeadlineService(service.runtime, channels), max_attempts=5, send_timeout=5).run_once()


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_signed_deliveries_verify_and_arrive_in_order_per_case(feed_service, receiver):
    service = feed_service
    feed = FeedService(service.runtime, allow_local_http=True)
    secret, _ = feed.add("org-a", receiver.url)
    feed.add("org-b", receiver.url + "/b")  # another organisation's subscription, same receiver
    cases = [service.open_case(f"PX-{i}", actor=DESK, organisation="org-a").case_id for i in range(2)]
    hidden = service.open_case("PX-9", actor=DESK, organisation="org-b").case_id
    for case_id in cases:  # interleaved: case 0, case 1, case 0, ...
        service.fire(case_id, "record_circumstances", actor=DESK, data={"treated_abroad": False,
                     "insured_abroad": False, "has_pathology": False, "has_imaging": False})  # fmt: skip
    walk(service, cases[0], "referred")
    service.runtime.clock.advance(DOMESTIC_DUE - T0 + timedelta(minutes=5))  # type: ignore[attr-defined]
    DeadlineService(service.runtime).sweep()  # the referred case's reminder and breach: deadline.* events
    report = deliver(service)
    pulled = {e.id: e.payload() for e in feed.page("org-a", None, 500).events}
    # every org-a event, org-b's one event (to its own URL), and the two deadline notices to the log
    assert len(receiver.requests) == len(pulled) + 1 and (report.delivered, report.failed) == (len(pulled) + 3, 0)

    mine = [(h, b) for h, b in receiver.requests if json.loads(b)["data"]["organisation"] == "org-a"]
    assert len(mine) == len(pulled)
    for headers, body in mine:
        at = datetime.fromtimestamp(int(headers["webhook-timestamp"]), tz=T0.tzinfo)
        with freeze_time(at):
            event = Webhook(secret).verify(body, headers)  # the package's own verifier
        assert event == pulled[headers["webhook-id"]] and headers["webhook-id"] == event["id"]
        assert headers["webhook-signature"].startswith("v1,")
        with freeze_time(at), pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(body.replace(b'"org-a"', b'"org-c"'), headers)  # a changed body fails
    for case_id in cases:
        versions = [e["data"]["version"] for e in receiver.events() if e["data"]["case_id"] == case_id]
        ids = [e["id"] for e in receiver.events() if e["data"]["case_id"] == case_id]
        in_feed = [i for i, e in pulled.items() if e["data"]["case_id"] == case_id]
        assert ids == in_feed and versions == sorted(versions)
    types = [e["type"] for e in receiver.events() if e["data"]["case_id"] == cases[0]]
    assert types[0] == "case.opened" and types[-2:] == ["deadline.reminder", "deadline.breach"]
    # org-b's event went to org-b's URL only, and no org-a subscription got it
    others = [h for h, b in receiver.requests if json.loads(b)["data"]["case_id"] == hidden]
    assert len(others) == 1 and all(json.loads(b)["data"]["case_id"] != hidden for _, b in mine)


@pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
def test_a_failing_receiver_gets_the_same_ids_once_it_recovers_and_nothing_out_of_order(feed_service, receiver):
    service = feed_service
    feed = FeedService(service.runtime, allow_local_http=True)
    feed.add("org-a", receiver.url)
    case_id = service.open_case("PX-1", actor=DESK, organisation="org-a").case_id
    service.fire(case_id, "refer", actor=GP)
    receiver.status = 503
    first = deliver(service)
    assert (first.delivered, first.failed) == (0, 1)
    failed_ids = [h["webhook-id"] for h, _ in receiver.requests]
    assert len(failed_ids) == 1  # the refer was not sent before the open succeeded
    receiver.status = 200
    service.runtime.clock.advance(timedelta(minutes=1))  # type: ignore[attr-defined]  # past the first retry delay
    second = deliver(service)
    assert (second.delivered, second.failed) == (2, 0)
    ids = [h["webhook-id"] for h, _ in receiver.requests]
    expected = [e.id for e in feed.page("org-a").events]
    assert ids == [expected[0], *expected]  # the open twice (same id), then the refer
    assert [json.loads(b)["type"] for _, b in receiver.requests] == ["case.opened", "case.opened", "case.transitioned"]
    # timestamps are those of each attempt; the id and the body stay the same
    assert receiver.requests[0][1] == receiver.requests[1][1]
    assert receiver.requests[0][0]["webhook-timestamp"] != receiver.requests[1][0]["webhook-timestamp"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_rotated_secret_signs_the_next_attempt_and_the_global_channel_is_unchanged(feed_service, receiver):
    service = feed_service
    feed = FeedService(service.runtime, allow_local_http=True)
    old, sub = feed.add("org-a", receiver.url, ["case.opened"])
    service.open_case("PX-1", actor=DESK, organisation="org-a")
    new, _ = feed.rotate(sub.id)
    deliver(service)
    headers, body = receiver.requests[-1]
    with freeze_time(T0):
        assert Webhook(new).verify(body, headers)["type"] == "case.opened"
        with pytest.raises(WebhookVerificationError):
            Webhook(old).verify(body, headers)
    # the global channel (deadline notices to one URL) still posts unsigned with its Idempotency-Key
    legacy = Receiver()
    try:
        case_id = service.open_case("PX-2", actor=DESK, organisation="org-a").case_id
        walk(service, case_id, "referred")
        service.runtime.clock.advance(DOMESTIC_DUE - T0 + timedelta(minutes=5))  # type: ignore[attr-defined]
        DeadlineService(service.runtime, (Channel("webhook", legacy.url),)).sweep()
        deliver(service, (Channel("webhook", legacy.url),))
        assert legacy.requests and all("idempotency-key" in h and "webhook-signature" not in h
                                       for h, _ in legacy.requests)  # fmt: skip
    finally:
        legacy.close()
