"""The ``webhook`` commands: add (the secret printed once), list, remove, rotate-secret, activate,
deactivate; registered in :mod:`second_opinion.cli.root`.

A subscription sends an organisation's change events (docs/integrations.md), signed as Standard
Webhooks says, to its URL. The secret is stored sealed under the identity key
(``SECOND_OPINION_SECRET``), which these commands and the worker therefore need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from workflow.clock import utc_iso
from workflow.feed.events import EVENT_TYPES
from workflow.feed.subscriptions import FAMILIES, Subscription
from workflow.service.feed import FeedService

from ..bootstrap import local_http_from_env
from .common import Db, Json, emit, guard, open_service, out

if TYPE_CHECKING:
    from rich.table import Table

TYPES = ", ".join([*EVENT_TYPES, *FAMILIES])
Organisation = Annotated[str, typer.Option("--org", help="The organisation whose events are sent.")]
Only = Annotated[str | None, typer.Option("--org", help="Refuse unless the subscription is this organisation's.")]


def shown(subscription: Subscription) -> dict[str, Any]:
    data = subscription.as_dict()
    data["created_at"] = utc_iso(subscription.created_at)
    data["rotated_at"] = None if subscription.rotated_at is None else utc_iso(subscription.rotated_at)
    return data


def add_command(
    org: Organisation,
    url: Annotated[str, typer.Option("--url", help="https://... (http only to localhost, where allowed).")],
    event: Annotated[
        list[str] | None, typer.Option("--event", help=f"Only these types (repeatable): {TYPES}. Default: all.")
    ] = None,
    inactive: Annotated[bool, typer.Option("--inactive", help="Create it switched off.")] = False,
    db: Db = None,
    as_json: Json = False,
) -> None:
    """Subscribe a URL to an organisation's events and print its signing secret: the only time it is shown."""
    with guard(as_json), open_service(db) as service:
        feed = FeedService(service.runtime, allow_local_http=local_http_from_env())
        secret, made = feed.add(org, url, event or None, active=not inactive)
        emit(as_json, {"secret": secret, **shown(made)}, f"subscription {made.id}\nsecret {secret}")


def list_command(org: Organisation, db: Db = None, as_json: Json = False) -> None:
    """An organisation's subscriptions; never a secret."""
    with guard(as_json), open_service(db) as service:
        found = FeedService(service.runtime).list(org)
        emit(as_json, [shown(s) for s in found], lambda: subscriptions_table(found))


def subscriptions_table(found: list[Subscription]) -> Table:
    from ..render import new_table

    table = new_table(title="Webhook subscriptions", caption="times in UTC")
    for column in ("id", "url", "events", "active", "created", "rotated"):
        table.add_column(column)
    for s in found:
        rotated = "" if s.rotated_at is None else utc_iso(s.rotated_at)
        table.add_row(s.id, s.url, ", ".join(s.event_types) or "all", "yes" if s.active else "no",
                      utc_iso(s.created_at), rotated)  # fmt: skip
    return table


def remove_command(subscription: str, org: Only = None, db: Db = None) -> None:
    """Remove a subscription; its deliveries still pending are dead-lettered (nothing more is sent)."""
    with guard(), open_service(db) as service:
        removed = FeedService(service.runtime).remove(subscription, org)
        out.print(f"subscription {removed.id} removed")


def rotate_command(subscription: str, org: Only = None, db: Db = None, as_json: Json = False) -> None:
    """A new signing secret, in force for every delivery from now on; printed once."""
    with guard(as_json), open_service(db) as service:
        secret, rotated = FeedService(service.runtime).rotate(subscription, org)
        emit(as_json, {"secret": secret, **shown(rotated)}, f"subscription {rotated.id}\nsecret {secret}")


def activate_command(subscription: str, org: Only = None, db: Db = None) -> None:
    """Switch a subscription on: events from now on are queued for it."""
    with guard(), open_service(db) as service:
        FeedService(service.runtime).set_active(subscription, True, org)
        out.print(f"subscription {subscription} active")


def deactivate_command(subscription: str, org: Only = None, db: Db = None) -> None:
    """Switch a subscription off: no event is queued for it while it is off."""
    with guard(), open_service(db) as service:
        FeedService(service.runtime).set_active(subscription, False, org)
        out.print(f"subscription {subscription} inactive")
