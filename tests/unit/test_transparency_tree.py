"""The log's stored-node tree (workflow/audit/transparency.py) gives the same tree heads and
proofs as the reference implementation over all leaves (workflow/audit/merkle.py), whatever the
batches the leaves were appended in, and reads only O(log n) stored hashes for a head."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from workflow.audit import merkle
from workflow.audit.transparency import (
    NodeKey,
    consistency_path,
    inclusion_path,
    new_nodes,
    right_edge,
    tree_root,
)

LEAVES = [merkle.leaf_hash(bytes([i])) for i in range(45)]


def grown(batches: Sequence[int]) -> tuple[dict[NodeKey, bytes], list[NodeKey]]:
    """Stored hashes after appending LEAVES in batches of the given sizes; the keys read."""
    stored: dict[NodeKey, bytes] = {}
    size = 0
    for batch in batches:
        batch = min(batch, len(LEAVES) - size)
        edge = {k: stored[k] for k in right_edge(size)}
        added = LEAVES[size:size + batch]
        stored.update(new_nodes(size, edge, added))
        stored.update({(0, size + i): leaf for i, leaf in enumerate(added)})
        size += batch
    return stored, []


def reader(stored: dict[NodeKey, bytes], log: list[NodeKey]):  # type: ignore[no-untyped-def]
    def read(keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        log.extend(keys)
        return {k: stored[k] for k in keys}
    return read


@settings(max_examples=40)
@given(st.lists(st.integers(1, 9), min_size=1, max_size=45))
def test_heads_and_proofs_match_the_reference_whatever_the_batches(batches: list[int]) -> None:
    stored, _ = grown(batches)
    size = max(p for _, p in [(0, 0)] + [k for k in stored if k[0] == 0]) + 1
    read = reader(stored, [])
    for n in range(1, size + 1):
        assert tree_root(n, read) == merkle.root(LEAVES[:n])
        for i in range(0, n, 3):
            assert inclusion_path(i, n, read) == merkle.inclusion_proof(LEAVES[:n], i)
        for m in range(0, n + 1, 2):
            assert consistency_path(m, n, read) == merkle.consistency_proof(LEAVES[:n], m)


def test_a_head_reads_one_stored_hash_per_set_bit_of_the_size() -> None:
    stored, _ = grown([45])
    for n in (1, 8, 37, 45):
        log: list[NodeKey] = []
        tree_root(n, reader(stored, log))
        assert len(log) == bin(n).count("1")
