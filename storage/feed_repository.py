"""The change feed and the webhook subscriptions over SQLite and PostgreSQL (the ports
:class:`workflow.ports.ChangeFeed` and :class:`workflow.ports.SubscriptionStore`), running the
named statements of :mod:`storage.feed_statements` as :mod:`storage.repositories` does."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from workflow.feed.events import ChangeEvent
from workflow.feed.subscriptions import Subscription

from .codec import TableCodec
from .repositories import Runner


def _subscription(state: dict[str, Any]) -> dict[str, Any]:
    state["event_types"] = tuple(state["event_types"])
    state["active"] = bool(state["active"])  # SQLite hands back 0 or 1
    return state


EVENTS: TableCodec[ChangeEvent] = TableCodec("change_events", ChangeEvent, lambda r: f"change event {r['sequence']}")
SUBSCRIPTIONS: TableCodec[Subscription] = TableCodec(
    "webhook_subscriptions", Subscription, lambda r: f"subscription {r['id']}", finish=_subscription
)


class SqlFeed:
    def __init__(self, runner: Runner) -> None:
        self._run = runner

    def append(self, event: ChangeEvent) -> None:
        values = dict(event.__dict__)
        del values["sequence"]
        self._run.run("insert_change_event", values)

    def page(self, organisation: str, after: int, limit: int) -> list[ChangeEvent]:
        return self._run.all(
            "change_events_page", {"organisation": organisation, "after": after, "limit": limit}, EVENTS
        )


class SqlSubscriptions:
    def __init__(self, runner: Runner) -> None:
        self._run = runner

    def add(self, subscription: Subscription) -> None:
        self._run.run("insert_subscription", {**subscription.__dict__, "event_types": list(subscription.event_types)})

    def get(self, subscription_id: str) -> Subscription | None:
        return self._run.first("get_subscription", {"id": subscription_id}, SUBSCRIPTIONS)

    def of_organisation(self, organisation: str, *, active_only: bool = False) -> list[Subscription]:
        name = "active_subscriptions_of_organisation" if active_only else "subscriptions_of_organisation"
        return self._run.all(name, {"organisation": organisation}, SUBSCRIPTIONS)

    def save(self, subscription: Subscription) -> None:
        self._run.run(
            "save_subscription",
            {"b_id": subscription.id, "secret": subscription.secret, "rotated_at": subscription.rotated_at,
             "active": subscription.active},
        )  # fmt: skip

    def remove(self, subscription_id: str, now: datetime) -> None:
        self._run.run("dead_letter_subscription_outbox", {"id": subscription_id, "now": now})
        self._run.run("delete_subscription", {"id": subscription_id})
