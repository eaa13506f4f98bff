"""Verification: every chain recomputed, every case replayed, every deadline rebuilt.

The audit trail is the record of what happened; the case rows, transition rows and deadline rows
are derived from it. :class:`Verification` checks each derived row against what the trail gives
when replayed by the same transition function and the same deadline policies that decided it.
"""

from __future__ import annotations

from workflow.audit.chain import AuditRecord, Finding, VerifyReport, verify_case
from workflow.cases.case import Case
from workflow.deadlines.policies import Deadline, calendar_of, difference, policy_named, replay_deadlines
from workflow.errors import UnknownCase
from workflow.ports import UnreadableRow
from workflow.service import inputs
from workflow.service.progress import Progress, tell
from workflow.service.recording import readable
from workflow.service.runtime import Runtime


class Verification:
    batch = 500
    """How many cases :meth:`verify` reads at once: three queries a batch rather than three a case."""

    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime

    def verify(self, case_id: str | None = None, progress: Progress | None = None) -> VerifyReport:
        """Recompute every chain and replay every case; collect the first problem of each.

        ``progress`` hears the cases verified so far, of all, once per batch."""
        findings: list[Finding] = []
        records_seen = 0
        if case_id is not None:
            inputs.shaped(case_id)
        with readable(), self._rt.uow(False) as uow:
            if case_id is not None:
                one = uow.cases.get(case_id)
                if one is None:
                    raise UnknownCase(case_id)
                cases = [one]
            else:
                cases = uow.cases.list()
            for start in range(0, len(cases), self.batch):
                batch = cases[start : start + self.batch]
                ids = [case.id for case in batch]
                audit, logs = uow.audit.for_cases(ids), uow.transitions.for_cases(ids)
                deadlines = uow.deadlines.for_cases(ids)
                for case in batch:
                    try:
                        records = audit.of(case.id)
                        transitions = logs.of(case.id)
                    except UnreadableRow as unreadable:
                        findings.append(Finding(case.id, None, str(unreadable)))
                        continue
                    records_seen += len(records)
                    finding = verify_case(case, records, transitions, self._rt.definition)
                    if finding is None:
                        finding = self._check_deadlines(case, records, deadlines.of(case.id))
                    if finding:
                        findings.append(finding)
                tell(progress, start + len(batch), len(cases))
        return VerifyReport(cases=len(cases), records=records_seen, findings=tuple(findings))

    def _check_deadlines(self, case: Case, records: list[AuditRecord], stored: list[Deadline]) -> Finding | None:
        """Deadline rows are derived data: the audit trail must rebuild them (see
        :func:`workflow.deadlines.policies.difference` for what is compared, and why not everything)."""
        rt = self._rt
        by_policy = {d.policy: d for d in stored}
        started_on = {d.policy: d.calendar for d in stored}  # each row keeps the calendar it started on
        rebuilt = replay_deadlines(records, case.route, rt.policies, rt.calendars, rt.terminal_states, started_on)
        for name in sorted(set(rebuilt) | set(by_policy)):
            have, want = by_policy.get(name), rebuilt.get(name)
            if have is None or want is None:
                what = "is not in the audit trail" if want is None else "is missing"
                return Finding(case.id, None, f"deadline {name} {what}")
            policy = policy_named(name, rt.policies)
            field = difference(have, want, None if policy is None else calendar_of(have, rt.calendars))
            if field:
                problem = (f"deadline {name}: {field} differs from what its audit trail and the calendar give "
                           "(altered, or calendar data changed: run `second-opinion deadlines recompute`)")  # fmt: skip
                return Finding(case.id, None, problem)
        return None
