"""The transparency log over SQL (:class:`workflow.ports.TransparencyLog`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from workflow.audit.transparency import AUDIT, Leaf, NodeKey, Pending


class SqlLog:
    def __init__(self, runner: Any) -> None:
        self._run = runner

    def hold(self) -> None:
        lock = self._run.compiled.backend.log_lock
        if lock is not None:
            self._run.cursor.execute(lock)

    def size(self) -> int:
        return int(self._run.run("log_size", {}).fetchone()[0])

    def last_ref(self, kind: str) -> int:
        found = self._run.run("log_last_ref", {"kind": kind}).fetchone()[0]
        return 0 if found is None else int(found)

    def pending(self, kind: str, after: int, limit: int) -> list[Pending]:
        name = "log_pending_audit" if kind == AUDIT else "log_pending_access"
        ts_out = self._run.compiled.codec.ts_out
        rows = self._run.run(name, {"after": after, "limit": limit}).fetchall()
        return [Pending(kind, int(ref), str(hash_), ts_out(at)) for ref, hash_, at in rows]

    def append(self, leaves: Sequence[Leaf], nodes: dict[NodeKey, bytes]) -> None:
        sql = self._run.compiled.sql
        rows = [{"position": x.position, "kind": x.kind, "ref": x.ref, "leaf": x.leaf.hex()} for x in leaves]
        if rows:
            self._run.cursor.executemany(sql["insert_log_leaf"], rows)
        made = [{"level": level, "idx": idx, "hash": value.hex()} for (level, idx), value in nodes.items()]
        if made:
            self._run.cursor.executemany(sql["insert_log_node"], made)

    def hashes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        found = {}
        for level, idx in keys:
            if level == 0:
                row = self._run.run("log_leaf_at", {"position": idx}).fetchone()
            else:
                row = self._run.run("log_node_at", {"level": level, "idx": idx}).fetchone()
            if row is None:
                raise KeyError((level, idx))
            found[(level, idx)] = bytes.fromhex(row[0])
        return found

    def position_of(self, kind: str, ref: int) -> int | None:
        row = self._run.run("log_position_of", {"kind": kind, "ref": ref}).fetchone()
        return None if row is None else int(row[0])

    def leaves(self, start: int = 0) -> list[Leaf]:
        rows = self._run.run("log_leaves_all", {"start": start}).fetchall()
        return [Leaf(int(p), str(k), int(r), bytes.fromhex(leaf)) for p, k, r, leaf in rows]

    def record_hashes(self, kind: str) -> dict[int, str]:
        name = "log_audit_hashes" if kind == AUDIT else "log_access_hashes"
        return {int(ref): str(h) for ref, h in self._run.run(name, {}).fetchall()}

    def add_checkpoint(self, size: int, root: bytes, note: str, at: datetime) -> None:
        self._run.run("insert_log_checkpoint", {"size": size, "root": root.hex(), "note": note, "created_at": at})

    def checkpoints(self) -> list[str]:
        return [str(note) for _, _, note in self._run.run("log_checkpoints_all", {}).fetchall()]


__all__ = ["SqlLog"]
