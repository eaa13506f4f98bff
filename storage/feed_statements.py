"""The change feed's and the webhook subscriptions' statements (:mod:`workflow.feed`), named beside
their SQL as in :mod:`storage.statements`, whose catalogue includes them."""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.sql.expression import ClauseElement

from workflow.ports import SUBSCRIPTION

from .tables import ChangeEventRow, OutboxRow, SubscriptionRow

EVENTS = ChangeEventRow.__table__  # type: ignore[attr-defined]
SUBSCRIPTIONS = SubscriptionRow.__table__  # type: ignore[attr-defined]
OUTBOX = OutboxRow.__table__  # type: ignore[attr-defined]
_BY_ID = SUBSCRIPTIONS.c.id == bindparam("id")
_OF_ORGANISATION = SUBSCRIPTIONS.c.organisation == bindparam("organisation")
_ORDER = (SUBSCRIPTIONS.c.created_at, SUBSCRIPTIONS.c.id)

FEED_STATEMENTS: dict[str, tuple[ClauseElement, list[str] | None]] = {
    "insert_change_event": (EVENTS.insert().inline(), [c.name for c in EVENTS.columns if c.name != "sequence"]),
    # through ix_change_events_org_sequence: the page's rows and their order in one index range
    "change_events_page": (
        select(EVENTS)
        .where(EVENTS.c.organisation == bindparam("organisation"), EVENTS.c.sequence > bindparam("after"))
        .order_by(EVENTS.c.sequence)
        .limit(bindparam("limit")),
        None,
    ),
    "insert_subscription": (SUBSCRIPTIONS.insert().inline(), [c.name for c in SUBSCRIPTIONS.columns]),
    "get_subscription": (select(SUBSCRIPTIONS).where(_BY_ID), None),
    "subscriptions_of_organisation": (select(SUBSCRIPTIONS).where(_OF_ORGANISATION).order_by(*_ORDER), None),
    "active_subscriptions_of_organisation": (
        select(SUBSCRIPTIONS).where(_OF_ORGANISATION, SUBSCRIPTIONS.c.active.is_(True)).order_by(*_ORDER),
        None,
    ),
    "save_subscription": (
        SUBSCRIPTIONS.update()
        .where(SUBSCRIPTIONS.c.id == bindparam("b_id"))
        .values(secret=bindparam("secret"), rotated_at=bindparam("rotated_at"), active=bindparam("active")),
        None,
    ),
    "delete_subscription": (SUBSCRIPTIONS.delete().where(_BY_ID), None),
    # a removed subscription's deliveries still waiting: dead, so nothing is sent to it any more
    "dead_letter_subscription_outbox": (
        OUTBOX.update()
        .where(OUTBOX.c.channel == SUBSCRIPTION, OUTBOX.c.target == bindparam("id"), OUTBOX.c.status == "pending")
        .values(status="dead", last_error="subscription removed", next_attempt_at=bindparam("now")),
        None,
    ),
}

__all__ = ["FEED_STATEMENTS"]
