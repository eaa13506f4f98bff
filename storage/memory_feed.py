"""The change feed and the webhook subscriptions in memory (:class:`workflow.ports.ChangeFeed`,
:class:`workflow.ports.SubscriptionStore`), staged like the rest of :mod:`storage.memory`."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from workflow.feed.events import ChangeEvent
from workflow.feed.subscriptions import Subscription
from workflow.ports import SUBSCRIPTION


@dataclass
class MemoryFeedStore:
    events: list[ChangeEvent] = field(default_factory=list)
    subscriptions: dict[str, Subscription] = field(default_factory=dict)


def _aware(at: datetime) -> datetime:
    """As the SQL backends store a moment: aware UTC, a naive one refused."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("naive datetime refused: store timezone-aware UTC")
    return at.astimezone(UTC)


class MemoryFeed:
    def __init__(self, store: MemoryFeedStore) -> None:
        self._store = store
        self.new: list[ChangeEvent] = []

    def append(self, event: ChangeEvent) -> None:
        if any(e.id == event.id for e in (*self._store.events, *self.new)):
            raise ValueError(f"change event {event.id} exists")
        self.new.append(replace(event, occurred_at=_aware(event.occurred_at), recorded_at=_aware(event.recorded_at)))

    def page(self, organisation: str, after: int, limit: int) -> list[ChangeEvent]:
        start = len(self._store.events)
        staged = [replace(e, sequence=start + i) for i, e in enumerate(self.new, start=1)]
        every = (*self._store.events, *staged)
        mine = [e for e in every if e.organisation == organisation and (e.sequence or 0) > after]
        return mine[:limit]

    def commit(self) -> None:
        start = len(self._store.events)
        self._store.events.extend(replace(e, sequence=start + i) for i, e in enumerate(self.new, start=1))
        self.new = []


class MemorySubscriptions:
    def __init__(self, store: MemoryFeedStore, uow: Any) -> None:
        """``uow``: the memory unit of work, whose staged outbox a removal dead-letters."""
        self._store = store
        self._uow = uow
        self.staged = dict(store.subscriptions)

    def add(self, subscription: Subscription) -> None:
        if subscription.id in self.staged:
            raise ValueError(f"subscription {subscription.id} exists")
        self.staged[subscription.id] = replace(subscription, created_at=_aware(subscription.created_at))

    def get(self, subscription_id: str) -> Subscription | None:
        return self.staged.get(subscription_id)

    def of_organisation(self, organisation: str, *, active_only: bool = False) -> list[Subscription]:
        mine = [s for s in self.staged.values() if s.organisation == organisation and (s.active or not active_only)]
        return sorted(mine, key=lambda s: (s.created_at, s.id))

    def save(self, subscription: Subscription) -> None:
        if subscription.id in self.staged:
            rotated = subscription.rotated_at
            self.staged[subscription.id] = replace(subscription, rotated_at=rotated and _aware(rotated))

    def remove(self, subscription_id: str, now: datetime) -> None:
        outbox = self._uow.staged_outbox
        for key, n in list(outbox.items()):
            if n.channel == SUBSCRIPTION and n.target == subscription_id and n.status == "pending":
                outbox[key] = replace(n, status="dead", last_error="subscription removed", next_attempt_at=now)
        self.staged.pop(subscription_id, None)

    def commit(self) -> None:
        self._store.subscriptions = self.staged
