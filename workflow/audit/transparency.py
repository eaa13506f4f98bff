"""One append-only log over every audit record and every access record, in one global order, with
the RFC 6962 Merkle tree (:mod:`workflow.audit.merkle`) over it.

Why a second structure over the two hash chains: a chain proves that nothing was changed *within*
what is there, by the hash function anyone can run, so an owner of the database can edit a record
and re-chain everything after it, or delete a whole case with its chain. A Merkle tree head signed
with a key that is not in the database (:mod:`workflow.audit.checkpoint`) and kept by the auditor
pins the log as it was: a later log must extend it (a consistency proof), and any record's place
in it can be proven (an inclusion proof).

- **The entry** of a record is the UTF-8 line ``"<kind> <sequence> <hash>"``: ``audit`` or
  ``access``, the record's position in its own table, and its own hash (which covers its content
  and its chain). A leaf is ``SHA-256(0x00 || entry)``.
- **The order** is the sequencer's (:func:`order`): records are appended to the log in batches, by
  their recording time, then kind, then sequence. Each table's appenders hold that table's end until
  they commit, so a table's sequence numbers commit in order and "after the last one logged" never
  skips a record.
- **Stored nodes**: the hash of every complete subtree of 2, 4, 8, ... leaves is kept as the tree
  grows (:func:`new_nodes`), so a tree head or a proof reads O(log n) hashes, not n leaves.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from workflow.audit.merkle import EMPTY_ROOT, leaf_hash, node_hash, split
from workflow.errors import ValidationError

AUDIT, ACCESS = "audit", "access"
KINDS = (AUDIT, ACCESS)
ORIGIN = "second-opinion.local/audit"
"""The default origin line of a checkpoint (``SECOND_OPINION_LOG_ORIGIN`` names yours)."""


def entry(kind: str, ref: int, record_hash: str) -> bytes:
    """The bytes a record is logged as (what its leaf hashes)."""
    return f"{kind} {ref} {record_hash}".encode()


@dataclass(frozen=True)
class Pending:
    """A record not yet in the log: its kind, sequence in its table, hash and recording time."""

    kind: str
    ref: int
    hash: str
    recorded_at: datetime


@dataclass(frozen=True)
class Leaf:
    """A position of the log: which record it holds, and the leaf hash that was logged for it."""

    position: int
    kind: str
    ref: int
    leaf: bytes


def order(pending: Sequence[Pending]) -> list[Pending]:
    """The global order of records appended in one batch."""
    return sorted(pending, key=lambda p: (p.recorded_at, KINDS.index(p.kind), p.ref))


NodeKey = tuple[int, int]
"""(level, index): the complete subtree of ``2**level`` leaves starting at ``index * 2**level``."""


def right_edge(size: int) -> list[NodeKey]:
    """The complete subtrees a tree of ``size`` leaves is made of, left to right (level 0: a leaf)."""
    keys, start = [], 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            keys.append((level, start >> level))
            start += 1 << level
    return keys


def new_nodes(size: int, edge: dict[NodeKey, bytes], leaves: Sequence[bytes]) -> dict[NodeKey, bytes]:
    """The complete subtrees (level 1 and up) that appending ``leaves`` to a tree of ``size``
    completes; ``edge`` holds the hashes of :func:`right_edge` of ``size`` (level 0: leaf hashes)."""
    known = dict(edge)
    made: dict[NodeKey, bytes] = {}
    for offset, value in enumerate(leaves):
        level, index = 0, size + offset
        known[(0, index)] = value
        while index & 1:
            value = node_hash(known[(level, index - 1)], value)
            level, index = level + 1, index >> 1
            known[(level, index)] = made[(level, index)] = value
    return made


Hashes = Callable[[Sequence[NodeKey]], dict[NodeKey, bytes]]
"""Storage's reader of stored hashes by key (level 0: the leaves)."""


def tree_root(size: int, read: Hashes) -> bytes:
    """The root of the tree of the first ``size`` leaves, from its right edge's stored hashes."""
    if size == 0:
        return EMPTY_ROOT
    keys = right_edge(size)
    found = read(keys)
    value = found[keys[-1]]
    for key in reversed(keys[:-1]):
        value = node_hash(found[key], value)
    return value


def subtree_root(lo: int, hi: int, read: Hashes) -> bytes:
    """The root of leaves ``[lo, hi)`` as RFC 6962 builds it, from stored hashes."""
    n = hi - lo
    if n & (n - 1) == 0 and lo % n == 0:
        level = n.bit_length() - 1
        return read([(level, lo >> level)])[(level, lo >> level)]
    k = split(n)
    return node_hash(subtree_root(lo, lo + k, read), subtree_root(lo + k, hi, read))


def inclusion_path(index: int, size: int, read: Hashes) -> list[bytes]:
    """PATH(index, D[size]) of RFC 6962 from stored hashes (as :func:`merkle.inclusion_proof`)."""
    if not 0 <= index < size:
        raise ValueError(f"position {index} is not in a tree of {size}")
    lo, hi, path = 0, size, []
    while hi - lo > 1:
        k = split(hi - lo)
        if index - lo < k:
            path.append(subtree_root(lo + k, hi, read))
            hi = lo + k
        else:
            path.append(subtree_root(lo, lo + k, read))
            lo = lo + k
    return path[::-1]


def consistency_path(old: int, size: int, read: Hashes) -> list[bytes]:
    """PROOF(old, D[size]) of RFC 6962 from stored hashes (as :func:`merkle.consistency_proof`)."""
    if not 0 <= old <= size:
        raise ValueError(f"a tree of {old} is not a prefix of one of {size}")
    if old in (0, size):
        return []

    def sub(lo: int, hi: int, m: int, complete: bool) -> list[bytes]:
        if m == hi - lo:
            return [] if complete else [subtree_root(lo, hi, read)]
        k = split(hi - lo)
        if m <= k:
            return [*sub(lo, lo + k, m, complete), subtree_root(lo + k, hi, read)]
        return [*sub(lo + k, hi, m - k, False), subtree_root(lo, lo + k, read)]

    return sub(0, size, old, True)


def leaf_of(kind: str, ref: int, record_hash: str) -> bytes:
    return leaf_hash(entry(kind, ref, record_hash))


# --- witnessed leaves ---------------------------------------------------------------------------
# A checkpoint pins the first ``size`` leaves by one root hash: enough to tell that history
# changed, not where. A witness that also keeps the leaves themselves (one line per position,
# checked against a signed checkpoint before it is believed) lets verification name the first
# position where today's log departs from what was witnessed, whatever the owner rebuilt.

LEAF_LINE = re.compile(r"(0|[1-9][0-9]{0,17}) (audit|access) (0|[1-9][0-9]{0,17}) ([0-9a-f]{64})")
MAX_LEAF_LINES = 10_000_000
"""Lines read from one witnessed file (about 1 GB); a longer file is refused, not read on."""


def leaf_line(leaf: Leaf) -> str:
    """One witnessed position: ``<position> <kind> <sequence> <leaf hash hex>``."""
    return f"{leaf.position} {leaf.kind} {leaf.ref} {leaf.leaf.hex()}"


def parse_leaf_lines(text: str, name: str) -> list[Leaf]:
    """The leaves of a witnessed file, or a :class:`ValidationError` naming the file and line."""
    leaves = []
    for number, line in enumerate(text.split("\n"), 1):
        if not line:
            continue
        if number > MAX_LEAF_LINES:
            raise ValidationError(name, f"holds more than {MAX_LEAF_LINES:,} lines")
        match = LEAF_LINE.fullmatch(line)
        if match is None:
            raise ValidationError(name, f"line {number} is not '<position> <audit|access> <sequence> <64 hex>'")
        position, kind, ref, leaf = match.groups()
        leaves.append(Leaf(int(position), kind, int(ref), bytes.fromhex(leaf)))
    return leaves
