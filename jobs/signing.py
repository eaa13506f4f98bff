"""Signing a subscription's delivery as Standard Webhooks specifies (https://www.standardwebhooks.com/).

Headers ``webhook-id`` (the event's id: the same on every attempt, so a receiver drops repeats),
``webhook-timestamp`` (seconds since the epoch at this attempt, so a receiver refuses replays of an
old body) and ``webhook-signature`` (``v1,`` and the base64 HMAC-SHA256, under the subscription's
``whsec_`` secret, of ``id.timestamp.body``), computed by the ``standardwebhooks`` package itself
rather than by hand: the receivers' verifier and our signer are then one implementation.
The body is the event as canonical JSON (sorted keys, no spaces, UTF-8): exactly the bytes signed.
"""

from __future__ import annotations

import json
from datetime import datetime

from standardwebhooks import Webhook

from workflow.ports import Notification
from workflow.service.feed import Endpoint

_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def signed(notification: Notification, endpoint: Endpoint, at: datetime) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one attempt to deliver ``notification`` to ``endpoint`` at ``at``."""
    body = _ENCODER.encode(notification.payload)
    message_id = str(notification.payload["id"])
    signature = Webhook(endpoint.secret).sign(message_id, at, body)
    headers = {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }
    return body.encode(), headers
