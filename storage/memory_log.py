"""The transparency log in memory (:class:`workflow.ports.TransparencyLog`), staged like the rest
of :mod:`storage.memory`: appended on commit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from workflow.audit.transparency import Leaf, NodeKey, Pending


@dataclass
class MemoryLogStore:
    leaves: list[Leaf] = field(default_factory=list)
    nodes: dict[NodeKey, bytes] = field(default_factory=dict)
    checkpoints: list[str] = field(default_factory=list)


class MemoryLog:
    def __init__(self, store: MemoryLogStore, records: Any) -> None:
        """``records(kind)``: the committed and staged records of that kind, in sequence order."""
        self._store = store
        self._records = records
        self.new_leaves: list[Leaf] = []
        self.new_nodes: dict[NodeKey, bytes] = {}
        self.new_checkpoints: list[str] = []

    def commit(self) -> None:
        self._store.leaves.extend(self.new_leaves)
        self._store.nodes.update(self.new_nodes)
        self._store.checkpoints.extend(self.new_checkpoints)
        self.new_leaves, self.new_nodes, self.new_checkpoints = [], {}, []

    def hold(self) -> None:
        """The memory store's write lock is held by a writing unit already."""

    def size(self) -> int:
        return len(self._store.leaves) + len(self.new_leaves)

    def last_ref(self, kind: str) -> int:
        return max((x.ref for x in self._all() if x.kind == kind), default=0)

    def pending(self, kind: str, after: int, limit: int) -> list[Pending]:
        found = [Pending(kind, ref, h, at) for ref, h, at in self._records(kind) if ref > after]
        return found[:limit]

    def append(self, leaves: Sequence[Leaf], nodes: dict[NodeKey, bytes]) -> None:
        self.new_leaves.extend(leaves)
        self.new_nodes.update(nodes)

    def hashes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        leaves = self._all()
        found = {}
        for level, idx in keys:
            if level == 0:
                if idx >= len(leaves):
                    raise KeyError((level, idx))
                found[(level, idx)] = leaves[idx].leaf
            else:
                key = (level, idx)
                found[key] = self.new_nodes[key] if key in self.new_nodes else self._store.nodes[key]
        return found

    def position_of(self, kind: str, ref: int) -> int | None:
        return next((x.position for x in self._all() if x.kind == kind and x.ref == ref), None)

    def leaves(self, start: int = 0) -> list[Leaf]:
        return [leaf for leaf in self._all() if leaf.position >= start]

    def record_hashes(self, kind: str) -> dict[int, str]:
        return {ref: h for ref, h, _ in self._records(kind)}

    def add_checkpoint(self, size: int, root: bytes, note: str, at: datetime) -> None:
        self.new_checkpoints.append(note)

    def checkpoints(self) -> list[str]:
        return [*self._store.checkpoints, *self.new_checkpoints]

    def _all(self) -> list[Leaf]:
        return [*self._store.leaves, *self.new_leaves]


__all__ = ["MemoryLog", "MemoryLogStore"]
