"""The change feed and webhook subscriptions as an operator (the CLI) and the access layer meet them.

Pages of the feed are read by organisation after an opaque cursor (:mod:`workflow.feed.events`);
subscriptions are made, listed, rotated, switched on and off and removed here, each input checked
before anything is read or written (a refused request changes nothing). A subscription's secret
leaves this service only when it is made or rotated, to the caller, once; the worker gets it
through :meth:`FeedService.endpoints`, opened in memory for the call that signs with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from workflow.cases.case import Case
from workflow.errors import ConfigurationError, ValidationError
from workflow.feed import events as feed
from workflow.feed import subscriptions as subs
from workflow.feed.events import ChangeEvent
from workflow.feed.subscriptions import SecretBox, Subscription
from workflow.ports import UnitOfWork
from workflow.service import inputs
from workflow.service.runtime import Runtime


@dataclass(frozen=True)
class FeedPage:
    events: list[ChangeEvent]
    next_cursor: str
    """After the last event of the page; the request's own cursor when the page is empty (poll again with it)."""
    cases: list[Case]
    """The cases the page's events are about (for the access log), each once."""


@dataclass(frozen=True)
class Endpoint:
    """Where and with what a delivery is signed and sent: the secret in clear, in memory only."""

    url: str
    secret: str


class FeedService:
    def __init__(self, runtime: Runtime, *, allow_local_http: bool = False) -> None:
        self._rt = runtime
        self._box = SecretBox(runtime.identity_key)
        self.allow_local_http = allow_local_http

    # --- the pull feed --------------------------------------------------------------------------

    def page(self, organisation: str, after: str | None = None, limit: int | None = None) -> FeedPage:
        """Up to ``limit`` events of ``organisation`` after the cursor ``after``, oldest first."""
        position, size = feed.position_of(after), feed.checked_limit(limit)
        with self._rt.uow(False) as uow:
            found = uow.feed.page(organisation, position, size)
            cases = [c for i in dict.fromkeys(e.case_id for e in found) if (c := uow.cases.get(i)) is not None]
        last = found[-1].sequence if found else None
        return FeedPage(found, feed.cursor_of(last) if last is not None else (after or feed.cursor_of(0)), cases)

    # --- subscriptions --------------------------------------------------------------------------

    def add(
        self, organisation: str, url: str, event_types: Sequence[str] | None = None, *, active: bool = True
    ) -> tuple[str, Subscription]:
        """A new subscription, and its secret: the only time it is shown."""
        inputs.check_id("organisation", organisation)
        url = subs.checked_url(url, allow_local_http=self.allow_local_http)
        types = subs.checked_types(None if event_types is None else list(event_types))
        subscription_id, secret = subs.new_id(), subs.new_secret()
        sealed = self._box.seal(subscription_id, secret)  # a missing identity key refuses here, nothing written
        made = Subscription(subscription_id, organisation, url, sealed, types, active, self._rt.clock.now())
        with self._rt.uow(True) as uow:
            if len(uow.subscriptions.of_organisation(organisation)) >= subs.MAX_PER_ORGANISATION:
                raise ValidationError(
                    "subscription", f"{organisation} has {subs.MAX_PER_ORGANISATION} subscriptions, the most allowed"
                )
            uow.subscriptions.add(made)
            uow.commit()
        return secret, made

    def list(self, organisation: str) -> list[Subscription]:
        inputs.check_id("organisation", organisation)
        with self._rt.uow(False) as uow:
            return uow.subscriptions.of_organisation(organisation)

    def remove(self, subscription_id: str, organisation: str | None = None) -> Subscription:
        """Remove a subscription; its deliveries still pending are dead-lettered, none is sent again."""
        with self._rt.uow(True) as uow:
            found = self._found(uow, subscription_id, organisation)
            uow.subscriptions.remove(found.id, self._rt.clock.now())
            uow.commit()
        return found

    def rotate(self, subscription_id: str, organisation: str | None = None) -> tuple[str, Subscription]:
        """A new secret, in force for every delivery from now on (retries included); shown once.
        An id that is no subscription is refused before the sealing key is asked for."""
        with self._rt.uow(True) as uow:
            found = self._found(uow, subscription_id, organisation)
            secret = subs.new_secret()
            sealed = self._box.seal(subscription_id, secret)
            rotated = replace(found, secret=sealed, rotated_at=self._rt.clock.now())
            uow.subscriptions.save(rotated)
            uow.commit()
        return secret, rotated

    def set_active(self, subscription_id: str, active: bool, organisation: str | None = None) -> Subscription:
        """Switch a subscription on or off: while off, no delivery is queued for it."""
        with self._rt.uow(True) as uow:
            found = replace(self._found(uow, subscription_id, organisation), active=active)
            uow.subscriptions.save(found)
            uow.commit()
        return found

    def _found(self, uow: UnitOfWork, subscription_id: str, organisation: str | None) -> Subscription:
        """The subscription, if it exists (and belongs to ``organisation``, when given): another
        organisation's is as unknown as one that does not exist."""
        unknown = ValidationError("subscription", f"{subscription_id[:64]!r} is not a subscription id")
        if not isinstance(subscription_id, str) or not inputs.IDENTIFIER.fullmatch(subscription_id):
            raise unknown
        found = uow.subscriptions.get(subscription_id)
        if found is None or (organisation is not None and found.organisation != organisation):
            raise unknown
        return found

    # --- for the worker -------------------------------------------------------------------------

    def endpoints(self, subscription_ids: Sequence[str]) -> dict[str, Endpoint | str]:
        """For each id, its endpoint, or why there is none (removed, inactive, secret unreadable),
        which the worker records as the failed attempt's error."""
        found: dict[str, Endpoint | str] = {}
        with self._rt.uow(False) as uow:
            for subscription_id in dict.fromkeys(subscription_ids):
                subscription = uow.subscriptions.get(subscription_id)
                if subscription is None:
                    found[subscription_id] = f"subscription {subscription_id} was removed"
                elif not subscription.active:
                    found[subscription_id] = f"subscription {subscription_id} is inactive"
                else:
                    try:
                        found[subscription_id] = Endpoint(subscription.url, self._box.open(subscription))
                    except ConfigurationError as problem:  # names the subscription, never the secret
                        found[subscription_id] = str(problem)
        return found
