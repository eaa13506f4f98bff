"""Scheduled work: the deadline sweep and the delivery of outbox notifications.

Both call only the service layer (:class:`workflow.service.deadlines.DeadlineService`); the
deadlines themselves live in the database, not in the scheduler, so any number of workers can
run and a restart catches up on everything that fell due while none was running.
"""

from .delivery import SEND_TIMEOUT, Delivery, DeliveryReport
from .witness import LogKeeper, Witnesses
from .worker import Worker

__all__ = ["SEND_TIMEOUT", "Delivery", "DeliveryReport", "LogKeeper", "Witnesses", "Worker"]
