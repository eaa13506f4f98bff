"""The transparency log's statements (:mod:`workflow.audit.transparency`), named beside their SQL
as in :mod:`storage.statements`, whose catalogue includes them."""

from __future__ import annotations

from sqlalchemy import bindparam, func, select
from sqlalchemy.sql.expression import ClauseElement

from .tables import AccessRow, AuditRow, LogCheckpointRow, LogLeafRow, LogNodeRow

LEAVES = LogLeafRow.__table__  # type: ignore[attr-defined]
NODES = LogNodeRow.__table__  # type: ignore[attr-defined]
CHECKPOINTS = LogCheckpointRow.__table__  # type: ignore[attr-defined]
AUDIT = AuditRow.__table__  # type: ignore[attr-defined]
ACCESS = AccessRow.__table__  # type: ignore[attr-defined]

LOG_STATEMENTS: dict[str, tuple[ClauseElement, list[str] | None]] = {
    "log_size": (select(func.count()).select_from(LEAVES), None),
    "log_last_ref": (select(func.max(LEAVES.c.ref)).where(LEAVES.c.kind == bindparam("kind")), None),
    # records after the last one logged, oldest first; by the table's own sequence (commit order)
    "log_pending_audit": (
        select(AUDIT.c.sequence, AUDIT.c.hash, AUDIT.c.recorded_at)
        .where(AUDIT.c.sequence > bindparam("after")).order_by(AUDIT.c.sequence).limit(bindparam("limit")),
        None,
    ),
    "log_pending_access": (
        select(ACCESS.c.sequence, ACCESS.c.hash, ACCESS.c.at)
        .where(ACCESS.c.sequence > bindparam("after")).order_by(ACCESS.c.sequence).limit(bindparam("limit")),
        None,
    ),
    "insert_log_leaf": (LEAVES.insert().inline(), ["position", "kind", "ref", "leaf"]),
    "insert_log_node": (NODES.insert().inline(), ["level", "idx", "hash"]),
    "log_leaf_at": (select(LEAVES.c.leaf).where(LEAVES.c.position == bindparam("position")), None),
    "log_node_at": (
        select(NODES.c.hash).where(NODES.c.level == bindparam("level"), NODES.c.idx == bindparam("idx")),
        None,
    ),
    "log_position_of": (
        select(LEAVES.c.position).where(LEAVES.c.kind == bindparam("kind"), LEAVES.c.ref == bindparam("ref")),
        None,
    ),
    "log_leaves_all": (
        select(LEAVES.c.position, LEAVES.c.kind, LEAVES.c.ref, LEAVES.c.leaf)
        .where(LEAVES.c.position >= bindparam("start"))
        .order_by(LEAVES.c.position),
        None,
    ),
    "log_audit_hashes": (select(AUDIT.c.sequence, AUDIT.c.hash), None),
    "log_access_hashes": (select(ACCESS.c.sequence, ACCESS.c.hash), None),
    "insert_log_checkpoint": (CHECKPOINTS.insert().inline(), ["size", "root", "note", "created_at"]),
    "log_checkpoints_all": (
        select(CHECKPOINTS.c.size, CHECKPOINTS.c.root, CHECKPOINTS.c.note).order_by(CHECKPOINTS.c.id),
        None,
    ),
}

__all__ = ["LOG_STATEMENTS"]
