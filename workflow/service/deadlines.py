"""The service-layer entry points for deadlines: the sweep, recomputation, queries, the outbox.

The sweep is written so that any number of workers can run it at once and each reminder and
breach is recorded exactly once: one transaction per case claims the case (storage skips cases
another worker holds), re-reads its deadlines under that lock, appends a ``noted`` audit record
per action to the case's chain, writes one outbox row per notification channel and moves the
deadline on, then commits. A crash before the commit leaves nothing; after it, everything.

Delivery of outbox rows happens afterwards and may repeat (a crash after the POST, before the
outcome is written): each row carries a stable key that receivers use to drop duplicates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from workflow.audit.chain import NOTED
from workflow.cases.case import Actor, Case
from workflow.clock import Clock, utc_iso
from workflow.deadlines.policies import (
    BREACH,
    RECOMPUTED,
    RUNNING,
    Action,
    Deadline,
    calendar_of,
    pending_actions,
    policy_named,
    recomputed,
)
from workflow.errors import ConcurrentUpdate, ValidationError
from workflow.ports import Notification, UnitOfWork
from workflow.service.observer import operation
from workflow.service.progress import Progress, tell
from workflow.service.publishing import publish
from workflow.service.recording import next_record, readable, stamp
from workflow.service.runtime import Runtime
from workflow.service.views import Views

WORKER = Actor("deadline-worker", "system")
RETRY_BASE = timedelta(seconds=30)
RETRY_MAX = timedelta(hours=1)


@dataclass(frozen=True)
class Channel:
    """Where notifications go: ``log`` (the worker's log) or ``webhook`` (POSTed to ``target``)."""

    name: str
    target: str = ""


@dataclass
class SweepReport:
    cases: int = 0
    reminders: int = 0
    breaches: int = 0
    parked: list[str] = field(default_factory=list)
    """Deadlines whose policy is no longer in the table: set aside, with no next action."""


class DeadlineService:
    def __init__(self, runtime: Runtime, channels: Sequence[Channel] = (Channel("log"),)) -> None:
        self._rt = runtime
        self._views = Views(runtime)
        self.channels = tuple(channels)

    @property
    def runtime(self) -> Runtime:
        return self._rt

    @property
    def clock(self) -> Clock:
        return self._rt.clock

    # --- the sweep ------------------------------------------------------------------------------

    def sweep(
        self, should_stop: Callable[[], bool] = lambda: False, limit: int | None = None,
        progress: Progress | None = None,
    ) -> SweepReport:  # fmt: skip
        """Handle everything due by now, one case per transaction, until nothing is due.

        ``progress`` hears the claims handled so far after each (one transaction each; how many
        are due is not known in advance: what falls due meanwhile is swept too)."""
        swept = SweepReport()
        claims = 0
        with operation(self._rt.observer, "sweep"):
            while not should_stop() and (limit is None or swept.cases < limit):
                if not self._handle_one(swept):
                    break
                claims += 1
                tell(progress, claims, None)
        return swept

    def _handle_one(self, report: SweepReport) -> bool:
        with readable(), self._rt.uow(True) as uow:
            now = self.clock.now()
            case_id = uow.deadlines.claim_due(now)
            if case_id is None:
                return False
            case = uow.cases.get(case_id, lock=True)
            assert case is not None
            with operation(self._rt.observer, "sweep.case", case_id=case_id, organisation=case.organisation):
                self._sweep_case(uow, case, report)
            return True

    def _sweep_case(self, uow: UnitOfWork, case: Case, report: SweepReport) -> None:
        """The claimed (and locked) case's due actions, committed together (see :meth:`sweep`)."""
        case_id = case.id
        # the case held, then the log's end: what the sweep records is never dated before the
        # last record (a clock too far behind refuses the sweep whole, see recording.stamp)
        now = stamp(uow, self.clock, self._rt.clock_tolerance)
        start, acted = case, False
        for deadline in uow.deadlines.for_case(case_id):
            policy = policy_named(deadline.policy, self._rt.policies)
            if policy is None:
                # a policy removed from the table: park the row (visible in `deadlines`, next action
                # empty) rather than fail every sweep on it and starve every other case
                if deadline.next_action_at is not None and deadline.next_action_at <= now:
                    uow.deadlines.save(replace(deadline, next_action_at=None, updated_at=now))
                    report.parked.append(deadline.id)
                continue
            actions, after = pending_actions(deadline, policy, calendar_of(deadline, self._rt.calendars), now)
            for action in actions:
                acted = True
                case = self._note(uow, case, deadline, action, now)
                report.reminders += action.kind != BREACH
                report.breaches += action.kind == BREACH
            if actions or (deadline.next_action_at is not None and deadline.next_action_at <= now):
                uow.deadlines.save(after)  # also when calendar data moved the moment: never claim it again
        if not uow.cases.update(case, expected_version=start.version, expected_audit_count=start.audit_count):
            raise ConcurrentUpdate(case_id, start.version, case.version)
        uow.commit()
        # A claim can find nothing left to do: on PostgreSQL another worker may have handled
        # the case between this worker's read of the due list and its lock on the case.
        report.cases += acted

    def _note(self, uow: UnitOfWork, case: Case, deadline: Deadline, action: Action, now: datetime) -> Case:
        """One action: its audit record on the case's chain and its outbox rows, same transaction."""
        payload = {
            "deadline": deadline.id,
            "policy": deadline.policy,
            "due_at": utc_iso(deadline.due_at) if deadline.due_at else None,
            "fell_due_at": utc_iso(action.fell_due_at),
            "notify": list(action.notify),
            "escalate_to": action.escalate_to,
            **({"reminder": action.index} if action.kind != BREACH else {}),
        }
        record = next_record(
            case, action.kind, self._rt.with_channel(WORKER), now, None, outcome=NOTED, to_state=case.state,
            occurred_at=action.fell_due_at, payload=payload, reason=None, refusal=None,
        )  # fmt: skip
        uow.audit.append(record)
        publish(uow, record, case)  # the feed and the subscriptions: beside the global channels below
        message = {"case_id": case.id, "kind": action.kind, "seq": record.seq, **payload}
        for channel in self.channels:
            key = f"{action.key(deadline)}/{channel.name}"
            uow.outbox.add(Notification(key, case.id, action.kind, channel.name, channel.target, message, now, now))
        return case.chained(record.hash)

    # --- recomputation --------------------------------------------------------------------------

    def recompute(self, progress: Progress | None = None) -> list[dict[str, Any]]:
        """Recompute running deadlines under today's calendar data; audit every change.

        One transaction per case, and the case's deadlines are read again under its lock, so a
        sweep or a command that changed them meanwhile is never overwritten. ``progress`` hears
        the cases done, of all with a running deadline, after each transaction."""
        with readable(), self._rt.uow(False) as uow:
            case_ids = sorted({d.case_id for d in uow.deadlines.list(RUNNING)})
        changes: list[dict[str, Any]] = []
        for done, case_id in enumerate(case_ids, 1):
            changes += self._recompute_case(case_id)
            tell(progress, done, len(case_ids))
        return changes

    def _recompute_case(self, case_id: str) -> list[dict[str, Any]]:
        changes: list[dict[str, Any]] = []
        with readable(), self._rt.uow(True) as uow:
            case = uow.cases.get(case_id, lock=True)
            assert case is not None
            # the records are dated by the time the deadlines are recomputed as of (verify replays
            # them so): read holding the log's end, never before the last record
            now = stamp(uow, self.clock, self._rt.clock_tolerance)
            start = case
            for deadline in uow.deadlines.for_case(case_id):
                policy = policy_named(deadline.policy, self._rt.policies)
                if policy is None or deadline.state != RUNNING:
                    continue
                new = recomputed(deadline, policy, calendar_of(deadline, self._rt.calendars), now)
                if new.due_at == deadline.due_at:
                    continue
                change = {"deadline": deadline.id, "old_due_at": _iso(deadline.due_at), "new_due_at": _iso(new.due_at)}
                record = next_record(
                    case, RECOMPUTED, self._rt.with_channel(WORKER), now, None, outcome=NOTED, to_state=case.state,
                    occurred_at=now, payload=change, reason=None, refusal=None,
                )  # fmt: skip
                uow.audit.append(record)
                case = case.chained(record.hash)
                uow.deadlines.save(new)
                changes.append(change)
            if changes:
                if not uow.cases.update(case, expected_version=start.version, expected_audit_count=start.audit_count):
                    raise ConcurrentUpdate(case_id, start.version, case.version)
                uow.commit()
        return changes

    # --- queries --------------------------------------------------------------------------------

    def deadlines(self, *, overdue: bool = False, due_before: datetime | None = None) -> list[Deadline]:
        """See :meth:`workflow.service.views.Views.deadlines`."""
        return self._views.deadlines(overdue=overdue, due_before=due_before)

    # --- the outbox -----------------------------------------------------------------------------

    def claim_notifications(self, lease: timedelta = timedelta(minutes=2), limit: int = 50) -> list[Notification]:
        """Lease notifications that are due for a delivery attempt (other workers skip them)."""
        with self._rt.uow(True) as uow:
            now = self.clock.now()
            claimed = uow.outbox.claim(now, now + lease, limit)
            uow.commit()
            return claimed

    def failed(self, notification: Notification, error: str, max_attempts: int) -> Notification:
        """Schedule a retry with exponential backoff, or dead-letter after ``max_attempts``."""
        (after,) = self.settle([(notification, error)], max_attempts)
        return after

    def settle(
        self, outcomes: Sequence[tuple[Notification, str | None]], max_attempts: int, *,
        deferred: Sequence[Notification] = (), released: Sequence[Notification] = (),
    ) -> list[Notification]:  # fmt: skip
        """Write back the outcomes of delivery attempts, all in one transaction: None for a
        delivered notification, else the error (see :meth:`failed`). Returns them as written.

        Claimed notifications that were not attempted go back without counting an attempt:
        ``deferred`` ones (their target was too slow this round) are due again after the first
        retry delay, so a slow target is not asked again at once; ``released`` ones (the worker
        is stopping, or their lease would have run out mid-send) are due again at once, for any
        worker.

        Until this commits, a notification stays leased as claimed; a worker that dies first
        leaves it to be attempted again when the lease runs out (delivery is at least once)."""
        if not (outcomes or deferred or released):
            return []
        with self._rt.uow(True) as uow:
            now = self.clock.now()
            written = [_after_attempt(n, error, max_attempts, now) for n, error in outcomes]
            put_back = [replace(n, leased_until=None, next_attempt_at=now + RETRY_BASE) for n in deferred]
            put_back += [replace(n, leased_until=None) for n in released]
            uow.outbox.save_all(written + put_back)
            uow.commit()
        return written

    def retry(self, notification_id: int) -> Notification:
        """Put a dead-lettered notification back in the queue (an operator's decision)."""
        with self._rt.uow(True) as uow:
            found = [n for n in uow.outbox.list("dead") if n.id == notification_id]
            if not found:
                raise ValidationError("notification", f"{notification_id} is not a dead-lettered notification")
            again = replace(found[0], status="pending", next_attempt_at=self.clock.now(), leased_until=None)
            uow.outbox.save(again)
            uow.commit()
            return again

    def notifications(self, status: str | None = None) -> list[Notification]:
        if status is not None and status not in ("pending", "delivered", "dead"):
            raise ValidationError("status", f"{status!r} is not one of pending, delivered, dead")
        with self._rt.uow(False) as uow:
            return uow.outbox.list(status)


def _after_attempt(notification: Notification, error: str | None, max_attempts: int, now: datetime) -> Notification:
    """A notification after one attempt: delivered, or a retry with exponential backoff, or
    dead-lettered after ``max_attempts``."""
    attempts = notification.attempts + 1
    if error is None:
        return replace(notification, status="delivered", attempts=attempts, leased_until=None, last_error=None,
                       delivered_at=now)  # fmt: skip
    delay = min(RETRY_BASE * 2 ** min(attempts - 1, 12), RETRY_MAX)  # capped before it could overflow
    status = "dead" if attempts >= max_attempts else "pending"
    return replace(notification, status=status, attempts=attempts, next_attempt_at=now + delay, leased_until=None,
                   last_error=error[:500])  # fmt: skip


def _iso(at: datetime | None) -> str | None:
    return None if at is None else utc_iso(at)
