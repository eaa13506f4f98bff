"""The change feed (``GET /events``) and the organisation's webhook subscriptions (``/subscriptions``).

Every route is one call into :class:`workflow.service.feed_access.FeedAccess`: the caller's
organisation only, the role table's ``changes`` read for the feed and ``webhooks`` for the
subscriptions; a page of the feed is logged as an access to the cases it names. A subscription's
secret is in the answer of its creation and of a rotation, and nowhere else.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

from workflow.clock import utc_iso
from workflow.feed.events import MAX_LIMIT
from workflow.feed.subscriptions import MAX_FILTER, MAX_URL, Subscription
from workflow.service.feed_access import FeedAccess

from .deps import Caller, Writer
from .schemas import ChangeEventType, RoleName, RouteName, StateName

router = APIRouter(tags=["change feed"])
SubscriptionId = Annotated[str, Path(max_length=64, description="A subscription's id (`sub_...`).")]


def feed(request: Request) -> FeedAccess:
    found: FeedAccess = request.app.state.feed
    return found


Feed = Annotated[FeedAccess, Depends(feed)]


class EventDataOut(BaseModel):
    case_id: str
    organisation: str
    route: RouteName
    from_state: StateName | None
    to_state: StateName
    event: str = Field(description="The event of the definition table, `open`, or a deadline note.")
    version: int
    occurred_at: str
    recorded_at: str
    actor_role: RoleName


class EventOut(BaseModel):
    id: str = Field(description="Stable: the same in every page and every delivery of this event.")
    type: ChangeEventType
    timestamp: str
    data: EventDataOut


class EventPageOut(BaseModel):
    events: list[EventOut]
    next_cursor: str = Field(description="Pass as `after` for the next page (the same cursor when the page is empty).")


class SubscriptionIn(BaseModel):
    url: str = Field(max_length=MAX_URL, description="https (plain http only to localhost, where allowed).")
    event_types: list[Annotated[str, Field(max_length=40)]] | None = Field(
        default=None, max_length=MAX_FILTER, description="Types or families (`case.*`); none or empty: every type."
    )
    active: bool = True

    model_config = {"extra": "forbid"}


class SubscriptionOut(BaseModel):
    id: str
    organisation: str
    url: str
    event_types: list[str]
    active: bool
    created_at: str
    rotated_at: str | None


class SubscriptionSecretOut(SubscriptionOut):
    secret: str = Field(description="The `whsec_` signing secret: shown now and never again.")


def _shown(subscription: Subscription, secret: str | None = None) -> dict[str, Any]:
    shown = subscription.as_dict()
    shown["created_at"] = utc_iso(subscription.created_at)
    shown["rotated_at"] = None if subscription.rotated_at is None else utc_iso(subscription.rotated_at)
    return shown if secret is None else {**shown, "secret": secret}


@router.get("/events", response_model=EventPageOut, operation_id="listChangeEvents",
            summary="The organisation's change feed after a cursor, oldest first (coordinators, auditors)")  # fmt: skip
def list_change_events(
    caller: Caller, access: Feed,
    after: Annotated[str | None, Query(max_length=64, description="The `next_cursor` of the page before.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Events per page.")] = 100,
) -> dict[str, Any]:  # fmt: skip
    page = access.events(caller, after, limit)
    return {"events": [e.payload() for e in page.events], "next_cursor": page.next_cursor}


@router.get("/subscriptions", response_model=list[SubscriptionOut], operation_id="listSubscriptions",
            summary="The organisation's webhook subscriptions, never a secret (coordinators)")  # fmt: skip
def list_subscriptions(caller: Caller, access: Feed) -> list[dict[str, Any]]:
    return [_shown(s) for s in access.subscriptions(caller)]


@router.post("/subscriptions", response_model=SubscriptionSecretOut, status_code=201,
             operation_id="createSubscription",
             summary="Subscribe a URL to the organisation's events; its secret shown once (coordinators)")  # fmt: skip
def create_subscription(body: SubscriptionIn, caller: Writer, access: Feed) -> dict[str, Any]:
    secret, made = access.subscribe(caller, body.url, body.event_types, active=body.active)
    return _shown(made, secret)


@router.delete("/subscriptions/{subscription_id}", status_code=204, operation_id="deleteSubscription",
               summary="Remove a subscription; its pending deliveries are dead-lettered (coordinators)")  # fmt: skip
def delete_subscription(subscription_id: SubscriptionId, caller: Writer, access: Feed) -> Response:
    access.unsubscribe(caller, subscription_id)
    return Response(status_code=204)


@router.post("/subscriptions/{subscription_id}/rotate-secret", response_model=SubscriptionSecretOut,
             operation_id="rotateSubscriptionSecret",
             summary="A new signing secret, in force at once; shown once (coordinators)")  # fmt: skip
def rotate_subscription_secret(subscription_id: SubscriptionId, caller: Writer, access: Feed) -> dict[str, Any]:
    secret, rotated = access.rotate(caller, subscription_id)
    return _shown(rotated, secret)
