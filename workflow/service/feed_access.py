"""The change feed and webhook subscriptions as a caller with a token meets them: always within the
token's own organisation, and only for roles whose ``reads`` in the role table allow it (``changes``
to pull the feed, ``webhooks`` to manage subscriptions; :data:`workflow.cases.definitions.READS`).

Each page of the feed is a read of the cases its events are about, so it is written to the access
log (kind ``events``, one record naming every case of the page, as a page of a work list is) before
it is handed out. A refused capability is logged as any other (``denied``). A subscription of
another organisation is answered as one that does not exist.
"""

from __future__ import annotations

from collections.abc import Sequence

from workflow.access.rules import Principal
from workflow.feed.subscriptions import Subscription
from workflow.service.access import AccessService
from workflow.service.feed import FeedPage, FeedService
from workflow.service.runtime import Runtime


class FeedAccess:
    def __init__(self, runtime: Runtime, access: AccessService | None = None, *, allow_local_http: bool = False):
        self._access = access or AccessService(runtime)
        self._feed = FeedService(runtime, allow_local_http=allow_local_http)

    def events(self, principal: Principal, after: str | None = None, limit: int | None = None) -> FeedPage:
        self._access.require(principal, "changes", "events")
        page = self._feed.page(principal.organisation, after, limit)  # a bad cursor or limit: nothing logged
        self._access.granted(principal, "events", page.cases)
        return page

    def subscriptions(self, principal: Principal) -> list[Subscription]:
        self._access.require(principal, "webhooks", "subscriptions")
        found = self._feed.list(principal.organisation)
        self._access.granted(principal, "subscriptions", [])
        return found

    def subscribe(
        self, principal: Principal, url: str, event_types: Sequence[str] | None = None, *, active: bool = True
    ) -> tuple[str, Subscription]:
        self._access.require(principal, "webhooks", "subscriptions")
        made = self._feed.add(principal.organisation, url, event_types, active=active)
        self._access.granted(principal, "subscription-added", [])  # who pointed the feed where: the credential
        return made

    def unsubscribe(self, principal: Principal, subscription_id: str) -> Subscription:
        self._access.require(principal, "webhooks", "subscriptions")
        removed = self._feed.remove(subscription_id, principal.organisation)
        self._access.granted(principal, "subscription-removed", [])
        return removed

    def rotate(self, principal: Principal, subscription_id: str) -> tuple[str, Subscription]:
        self._access.require(principal, "webhooks", "subscriptions")
        rotated = self._feed.rotate(subscription_id, principal.organisation)
        self._access.granted(principal, "subscription-rotated", [])
        return rotated
