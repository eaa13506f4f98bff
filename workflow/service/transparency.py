"""The transparency log as an operator and an auditor use it: append what is not yet logged
(:meth:`LogService.sequence`), sign a checkpoint (:meth:`LogService.checkpoint`), verify today's
database against checkpoints kept outside it (:meth:`LogService.verify`), and prove a record's
place for a verifier elsewhere (:meth:`LogService.prove`, :meth:`LogService.extends`).

What verification can and cannot say is in docs/audit.md; in short: a checkpoint pins the first
``size`` records of the log; a deleted, changed, re-chained or reordered record among them, a
deleted case, or an older copy restored makes today's records hash to another root. The first bad
position is named when the log's own rows show it (a record changed or gone since it was logged),
else bounded by the checkpoints that still hold.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from workflow.audit import merkle
from workflow.audit.checkpoint import Checkpoint, Signer, Verifier, open_checkpoint
from workflow.audit.transparency import (
    KINDS,
    Leaf,
    consistency_path,
    entry,
    inclusion_path,
    leaf_of,
    new_nodes,
    order,
    right_edge,
    tree_root,
)
from workflow.errors import CheckpointError, ValidationError
from workflow.service.runtime import Runtime

BATCH = 10_000
"""Records appended per transaction by the sequencer."""


@dataclass
class LogReport:
    size: int
    """Records in the log."""
    not_yet_logged: int
    """Records newer than the log (the sequencer has not run since they were written)."""
    checkpoints: int
    """Checkpoints checked."""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class LogService:
    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime

    def sequence(self) -> int:
        """Append every record not yet in the log, in batches; how many were appended."""
        appended = 0
        while True:
            with self._rt.uow(True) as uow:
                log = uow.log
                log.hold()
                size = log.size()
                pending = order([p for kind in KINDS for p in log.pending(kind, log.last_ref(kind), BATCH)])
                if not pending:
                    return appended
                leaves = [Leaf(size + i, p.kind, p.ref, leaf_of(p.kind, p.ref, p.hash)) for i, p in enumerate(pending)]
                nodes = new_nodes(size, log.hashes(right_edge(size)), [x.leaf for x in leaves])
                log.append(leaves, nodes)
                uow.commit()
            appended += len(leaves)

    def checkpoint(self, signers: Sequence[Signer], origin: str) -> str:
        """Log what is pending, then sign the tree head and record it; the signed note."""
        self.sequence()
        with self._rt.uow(True) as uow:
            uow.log.hold()
            size = uow.log.size()
            head = tree_root(size, uow.log.hashes)
            note = Checkpoint(origin, size, head).sign(signers)
            uow.log.add_checkpoint(size, head, note, self._rt.clock.now())
            uow.commit()
        return note

    def leaves(self, start: int = 0) -> list[Leaf]:
        """The log's leaves from position ``start``: what a witness keeps beside the checkpoints
        (:func:`workflow.audit.transparency.leaf_line`), so that verification can name the first
        position where today's log departs from it."""
        with self._rt.uow(False) as uow:
            return uow.log.leaves(start)

    def verify(self, notes: Sequence[tuple[str, str]], trusted: Sequence[Verifier], origin: str,
               witnessed: Sequence[tuple[str, list[Leaf]]] = ()) -> LogReport:  # fmt: skip
        """Today's log and records against checkpoints (``(name, note)`` each) and, if given, the
        leaves a witness kept (``(name, leaves)`` each); writes nothing."""
        with self._rt.uow(False) as uow:
            leaves = uow.log.leaves()
            stored = {kind: uow.log.record_hashes(kind) for kind in KINDS}
        report = LogReport(len(leaves), 0, 0)
        today = self._today(leaves, stored, report)
        opened: list[tuple[str, Checkpoint]] = []
        heads: dict[int, tuple[str, bytes]] = {}
        for name, note in notes:
            try:
                cp, _ = open_checkpoint(note, trusted)
            except CheckpointError as exc:
                report.problems.append(f"{name}: {exc.problem}")
                continue
            report.checkpoints += 1
            if cp.origin != origin:
                report.problems.append(f"{name}: a checkpoint of {cp.origin!r}, not of this log ({origin!r})")
                continue
            if cp.size in heads and heads[cp.size][1] != cp.root:
                report.problems.append(f"{name}: a fork: {heads[cp.size][0]} has the same size ({cp.size}) and "
                                       "another root; someone was shown another history")  # fmt: skip
            heads.setdefault(cp.size, (name, cp.root))
            opened.append((name, cp))
        kept = self._witnessed(witnessed, opened, report)
        roots = merkle.prefix_roots(today, (cp.size for _, cp in opened))
        first = next((p for p in range(min(len(today), len(kept))) if today[p] != kept[p].leaf), None)
        held: list[int] = []
        for name, cp in opened:
            if cp.size > len(today):
                report.problems.append(
                    f"{name}: the log holds {len(today)} records, the checkpoint {cp.size}: records from position "
                    f"{len(today)} on were removed, or an older copy of the database was restored"
                )
            elif roots[cp.size] != cp.root:
                where = self._first_difference(cp.size, first, leaves, kept) or self._bound(cp.size, held)
                report.problems.append(f"{name}: {where} do not hash to its root: history it pins was changed, "
                                       "deleted, reordered or re-chained")  # fmt: skip
            else:
                held.append(cp.size)
        return report

    @staticmethod
    def _witnessed(witnessed: Sequence[tuple[str, list[Leaf]]], opened: list[tuple[str, Checkpoint]],
                   report: LogReport) -> list[Leaf]:  # fmt: skip
        """The witnessed leaves from position 0 on, believed only as far as a signed checkpoint
        vouches for them (the largest one they cover: its root pins every leaf below it)."""
        if not witnessed:
            return []
        by_position: dict[int, Leaf] = {}
        for name, leaves in witnessed:
            for leaf in leaves:
                if by_position.setdefault(leaf.position, leaf) != leaf:
                    report.problems.append(f"{name}: position {leaf.position} differs from another witnessed copy")
                    return []
        kept: list[Leaf] = []
        while len(kept) in by_position:
            kept.append(by_position[len(kept)])
        covered = [(name, cp) for name, cp in opened if cp.size <= len(kept)]
        if not covered:
            return []
        name, cp = max(covered, key=lambda pair: pair[1].size)
        if merkle.root([leaf.leaf for leaf in kept[: cp.size]]) != cp.root:
            report.problems.append(f"the witnessed leaves do not hash to the root of {name}: that copy of the "
                                   "leaves is not to be believed")  # fmt: skip
            return []
        return kept[: cp.size]

    @staticmethod
    def _first_difference(size: int, first: int | None, leaves: list[Leaf], kept: list[Leaf]) -> str | None:
        """Where today's log first departs from the witnessed leaves (``first``, found once for every
        checkpoint), in words; None when they do not differ below ``size``."""
        if first is None or first >= size:
            return None
        was, now = kept[first], leaves[first] if first < len(leaves) else None
        if now is not None and (now.kind, now.ref) != (was.kind, was.ref):
            change = (f"it holds {now.kind} record {now.ref} today: records before it were deleted or "
                      "reordered, or the log was rebuilt")  # fmt: skip
        else:
            change = "that record was changed or deleted since (re-chained, rewritten, or its case removed)"
        return (f"the log's first {size} records (the first difference at position {first}: witnessed as "
                f"{was.kind} record {was.ref}; {change})")  # fmt: skip

    def _today(self, leaves: list[Leaf], stored: dict[str, dict[int, str]], report: LogReport) -> list[bytes]:
        """The leaves today's records give, position by position; problems the log's rows show."""
        today: list[bytes] = []
        logged: dict[str, set[int]] = {kind: set() for kind in KINDS}
        for position, leaf in enumerate(leaves):
            if leaf.position != position:
                report.problems.append(f"position {position}: missing from the log (it jumps to {leaf.position})")
                break
            logged[leaf.kind].add(leaf.ref)
            now = stored[leaf.kind].get(leaf.ref)
            if now is None:
                report.problems.append(f"position {position}: {leaf.kind} record {leaf.ref} is gone (deleted)")
                today.append(merkle.leaf_hash(b""))
                continue
            today.append(leaf_of(leaf.kind, leaf.ref, now))
            if today[-1] != leaf.leaf:
                report.problems.append(f"position {position}: {leaf.kind} record {leaf.ref} changed after it was "
                                       "logged")  # fmt: skip
        for kind in KINDS:
            last = max(logged[kind], default=0)
            outside = sorted(ref for ref in stored[kind] if ref not in logged[kind] and ref < last)
            for ref in outside[:20]:
                report.problems.append(f"{kind} record {ref} is not in the log: written into the past after "
                                       "later records were logged")  # fmt: skip
            report.not_yet_logged += sum(1 for ref in stored[kind] if ref > last)
        return today

    @staticmethod
    def _bound(size: int, held: list[int]) -> str:
        below = max((s for s in held if s < size), default=0)
        return f"the log's first {size} records (the first difference at a position from {below} to {size - 1})"

    def prove(self, kind: str, ref: int, note: str, trusted: Sequence[Verifier]) -> dict[str, Any]:
        """An inclusion proof of one record in the tree of checkpoint ``note``, as
        ``verifier/verify.mjs inclusion`` reads it (the public key added by the caller)."""
        cp, _ = open_checkpoint(note, trusted)
        with self._rt.uow(False) as uow:
            position = uow.log.position_of(kind, ref)
            if position is None or position >= cp.size:
                raise ValidationError("record", f"{kind} record {ref} is not in the log of that checkpoint "
                                                f"(size {cp.size})")  # fmt: skip
            current = uow.log.record_hashes(kind).get(ref)
            if current is None:
                raise ValidationError("record", f"{kind} record {ref} is gone from the database")
            proof = inclusion_path(position, cp.size, uow.log.hashes)
        return {"checkpoint": note, "entry": _b64(entry(kind, ref, current)), "index": position,
                "proof": [_b64(p) for p in proof]}  # fmt: skip

    def extends(self, old_note: str, new_note: str, trusted: Sequence[Verifier]) -> dict[str, Any]:
        """A consistency proof between two checkpoints, as ``verify.mjs consistency`` reads it."""
        old, _ = open_checkpoint(old_note, trusted)
        new, _ = open_checkpoint(new_note, trusted)
        if old.size > new.size:
            raise ValidationError("checkpoints", f"the first ({old.size}) is larger than the second ({new.size})")
        with self._rt.uow(False) as uow:
            proof = consistency_path(old.size, new.size, uow.log.hashes)
        return {"old": old_note, "new": new_note, "proof": [_b64(p) for p in proof]}


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()
