"""The verification snippet of docs/integrations.md runs, and accepts exactly what the worker signs."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time
from standardwebhooks import WebhookVerificationError

from jobs.signing import signed
from workflow.feed.subscriptions import new_secret
from workflow.ports import SUBSCRIPTION, Notification
from workflow.service.feed import Endpoint

DOC = Path(__file__).resolve().parents[2] / "docs" / "integrations.md"
AT = datetime(2026, 11, 23, 9, 5, tzinfo=UTC)


def snippet() -> dict[str, Any]:
    text = DOC.read_text()
    after = text.index("**Verifying a delivery**")
    code = re.search(r"```python\n(.*?)```", text[after:], re.S)
    assert code, "docs/integrations.md has no Python verification snippet"
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), str(DOC), "exec"), namespace)  # the page's own code
    return namespace


def delivery(secret: str) -> tuple[bytes, dict[str, str]]:
    payload = {"id": "evt_0123456789abcdef0123456789abcdef", "type": "case.opened", "timestamp": "2026-11-23T09:05:00Z",
               "data": {"case_id": "so-1", "organisation": "org-a", "naam": "Zoë"}}  # fmt: skip
    notification = Notification("k", "so-1", "case.opened", SUBSCRIPTION, "sub_1", payload, AT, AT)
    return signed(notification, Endpoint("https://example.org/hook", secret), AT)


def test_the_snippet_accepts_a_delivery_signed_by_the_worker():
    code, secret = snippet(), new_secret()
    body, headers = delivery(secret)
    with freeze_time(AT + timedelta(seconds=30)):
        assert code["verified"](body, headers, secret)["id"] == headers["webhook-id"]
        assert code["verified_by_hand"](body, headers, secret) is True


@pytest.mark.parametrize("tamper", ["body", "secret", "id", "late"])
def test_the_snippet_refuses_tampered_or_stale_deliveries(tamper):
    code, secret = snippet(), new_secret()
    body, headers = delivery(secret)
    key, moment = secret, AT
    if tamper == "body":
        body = body.replace(b"org-a", b"org-b")
    elif tamper == "secret":
        key = new_secret()
    elif tamper == "id":
        headers = {**headers, "webhook-id": "evt_other"}
    else:
        moment = AT + timedelta(minutes=6)
    with freeze_time(moment):
        with pytest.raises(WebhookVerificationError):
            code["verified"](body, headers, key)
        assert code["verified_by_hand"](body, headers, key) is False
