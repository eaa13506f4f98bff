"""The Merkle tree of RFC 6962 (Certificate Transparency) over the audit log, section 2.1, with the
proof verification of RFC 9162 (its successor), sections 2.1.3.2 and 2.1.4.2.

Why this tree and not a tree of our own: an auditor who keeps a signed tree head (a checkpoint)
outside the database must be able to check, with tools that are not ours, that today's log extends
it (a consistency proof) and that a given record is in it (an inclusion proof). RFC 6962's hashing
is what those tools speak: a leaf is ``SHA-256(0x00 || entry)``, a node ``SHA-256(0x01 || left ||
right)``, the empty tree ``SHA-256("")``, and a tree of ``n > 1`` leaves splits at the largest
power of two below ``n``. The prefixes keep a leaf from passing for a node (second pre-image).

Everything here works on leaf *hashes* (32 bytes each) in log order, and is pure: where they come
from (all of them, or stored subtree hashes so a proof reads O(log n) rows) is the caller's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
"""The root of the empty tree (RFC 6962 2.1: the hash of an empty string)."""


def leaf_hash(entry: bytes) -> bytes:
    """``SHA-256(0x00 || entry)``."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n > 1``): where RFC 6962 splits a tree."""
    if n < 2:
        raise ValueError(f"a tree of {n} leaves does not split")
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """The Merkle tree hash of ``leaves`` (leaf hashes, in order). Iterative, O(n) hashing, O(log n)
    memory: full subtrees are combined as they complete, then the ragged right edge from the right."""
    return prefix_roots(leaves, (len(leaves),))[len(leaves)]


def prefix_roots(leaves: Sequence[bytes], sizes: Iterable[int]) -> dict[int, bytes]:
    """The tree hash of the first ``n`` leaves for each ``n`` of ``sizes`` within reach, in one pass
    (O(len(leaves) + k log n) hashing): verifying against k checkpoints does not hash the log k times."""
    wanted = set(sizes)
    roots = {0: EMPTY_ROOT} if 0 in wanted else {}
    stack: list[tuple[int, bytes]] = []  # (size, hash) of completed subtrees, sizes decreasing
    for count, leaf in enumerate(leaves, 1):
        size, value = 1, leaf
        while stack and stack[-1][0] == size:
            left_size, left = stack.pop()
            size, value = left_size + size, node_hash(left, value)
        stack.append((size, value))
        if count in wanted:
            value = stack[-1][1]
            for _, left in reversed(stack[:-1]):
                value = node_hash(left, value)
            roots[count] = value
    return roots


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(index, D[n]) of RFC 6962 2.1.1: the sibling hashes from the leaf up to the root."""
    if not 0 <= index < len(leaves):
        raise ValueError(f"leaf {index} is not in a tree of {len(leaves)}")
    lo, hi = 0, len(leaves)
    path: list[bytes] = []  # from the root down; the proof runs from the leaf up
    while hi - lo > 1:
        k = split(hi - lo)
        if index - lo < k:
            path.append(root(leaves[lo + k:hi]))
            hi = lo + k
        else:
            path.append(root(leaves[lo:lo + k]))
            lo = lo + k
    return path[::-1]


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 6962 2.1.2: what shows that the tree of the first ``old_size`` leaves
    is a prefix of the tree of all of them."""
    n = len(leaves)
    if not 0 <= old_size <= n:
        raise ValueError(f"a tree of {old_size} is not a prefix of one of {n}")
    if old_size in (0, n):
        return []
    return _subproof(leaves, old_size, True)


def _subproof(leaves: Sequence[bytes], m: int, complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [root(leaves)]
    k = split(n)
    if m <= k:
        return [*_subproof(leaves[:k], m, complete), root(leaves[k:])]
    return [*_subproof(leaves[k:], m - k, False), root(leaves[:k])]


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], expected_root: bytes) -> bool:
    """Whether ``proof`` shows leaf hash ``leaf`` at ``index`` in the tree of ``size`` with root
    ``expected_root`` (RFC 9162 2.1.3.2)."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == expected_root


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> bool:  # fmt: skip
    """Whether ``proof`` shows the tree of ``old_size`` (root ``old_root``) to be a prefix of the
    tree of ``new_size`` (root ``new_root``) (RFC 9162 2.1.4.2)."""
    if not 0 <= old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is a node of the new tree
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root
