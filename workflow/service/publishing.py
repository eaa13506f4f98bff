"""Publishing a change: its event in the feed and one delivery per subscription that wants it, in
the unit of work of the change itself (:func:`workflow.service.recording.write_accepted`, the
deadline sweep's notices). They commit with the change or not at all: the feed never reports a
change that was rolled back, and no accepted change is left out of it.

The feed's order is its ``sequence``. Every unit that publishes has appended an audit record
after :func:`~workflow.service.recording.stamp`, which holds the audit log's end until commit
(one appender at a time, see :meth:`workflow.ports.AuditLog.last_recorded_at`): so feed events
become visible in sequence order too, and a reader after a cursor misses none.
"""

from __future__ import annotations

from workflow.audit.chain import AuditRecord
from workflow.cases.case import Case
from workflow.feed.events import ChangeEvent, of_record
from workflow.ports import SUBSCRIPTION, Notification, UnitOfWork


def publish(uow: UnitOfWork, record: AuditRecord, case: Case) -> ChangeEvent:
    """Append the event reporting ``record`` (of ``case`` as it is after it) and queue it for every
    active subscription of the case's organisation whose filter takes its type. A delivery's key is
    the event id and the subscription id: the same on every attempt, as its ``webhook-id`` is."""
    event = of_record(record, case)
    uow.feed.append(event)
    body = event.payload()
    now = record.recorded_at
    for subscription in uow.subscriptions.of_organisation(case.organisation, active_only=True):
        if subscription.wants(event.type):
            uow.outbox.add(
                Notification(f"{event.id}/{subscription.id}", case.id, event.type, SUBSCRIPTION, subscription.id,
                             body, now, now)
            )  # fmt: skip
    return event
