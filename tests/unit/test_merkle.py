"""RFC 6962's Merkle tree (workflow/audit/merkle.py) against the Certificate Transparency reference
vectors (the leaves and tree heads every CT implementation tests against, e.g. transparency-dev/merkle's
testonly data), and every proof of every tree up to 40 leaves verified, with every tampering refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workflow.audit.merkle import (
    EMPTY_ROOT,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    prefix_roots,
    root,
    split,
    verify_consistency,
    verify_inclusion,
)

ENTRIES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                      "606162636465666768696a6b6c6d6e6f")]  # fmt: skip
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
LEAVES = [leaf_hash(e) for e in ENTRIES]
INCLUSION = {  # (index, size): the reference path
    (0, 8): ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
    (5, 8): ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
}  # fmt: skip
CONSISTENCY = {  # (old, new): the reference proof
    (2, 8): ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
}  # fmt: skip
MANY = [leaf_hash(bytes([i, i * 7 % 256])) for i in range(40)]


@pytest.mark.parametrize("size", range(len(ROOTS)))
def test_the_reference_tree_heads(size: int) -> None:
    assert root(LEAVES[:size]).hex() == ROOTS[size]
    assert EMPTY_ROOT.hex() == ROOTS[0]


def test_the_split_is_the_largest_power_of_two_below_not_the_midpoint() -> None:
    assert [split(n) for n in (2, 3, 4, 5, 6, 7, 8, 9, 1000)] == [1, 2, 2, 4, 4, 4, 4, 8, 512]
    with pytest.raises(ValueError):
        split(1)


@pytest.mark.parametrize(("index", "size"), list(INCLUSION))
def test_the_reference_inclusion_proofs(index: int, size: int) -> None:
    proof = inclusion_proof(LEAVES[:size], index)
    assert [p.hex() for p in proof] == INCLUSION[(index, size)]
    assert verify_inclusion(LEAVES[index], index, size, proof, root(LEAVES[:size]))


@pytest.mark.parametrize(("old", "new"), list(CONSISTENCY))
def test_the_reference_consistency_proofs(old: int, new: int) -> None:
    proof = consistency_proof(LEAVES[:new], old)
    assert [p.hex() for p in proof] == CONSISTENCY[(old, new)]
    assert verify_consistency(old, new, root(LEAVES[:old]), root(LEAVES[:new]), proof)


def test_every_inclusion_proof_of_every_tree_verifies_and_nothing_else_does() -> None:
    for n in range(1, len(MANY) + 1):
        tree, head = MANY[:n], root(MANY[:n])
        for i in range(n):
            proof = inclusion_proof(tree, i)
            assert verify_inclusion(tree[i], i, n, proof, head), (i, n)
            assert len(proof) <= n.bit_length()
            other = MANY[(i + 1) % n] if n > 1 else leaf_hash(b"x")
            assert not verify_inclusion(other, i, n, proof, head)  # another leaf
            if n > 1:
                assert not verify_inclusion(tree[i], (i + 1) % n, n, proof, head)  # another index
                bent = [bytes(32), *proof[1:]]
                assert not verify_inclusion(tree[i], i, n, bent, head)  # a path altered
                assert not verify_inclusion(tree[i], i, n, proof[:-1], head)  # cut short
            assert not verify_inclusion(tree[i], i, n, [*proof, bytes(32)], head)  # too long


def test_every_consistency_proof_between_every_two_sizes_verifies_and_nothing_else_does() -> None:
    for n in range(1, len(MANY) + 1):
        new_head = root(MANY[:n])
        for m in range(0, n + 1):
            proof = consistency_proof(MANY[:n], m)
            old_head = root(MANY[:m])
            assert verify_consistency(m, n, old_head, new_head, proof), (m, n)
            if 0 < m < n:
                forged = root([leaf_hash(b"rewritten"), *MANY[1:m]])  # the first record rewritten
                assert not verify_consistency(m, n, forged, new_head, proof)
                assert not verify_consistency(m, n, old_head, root(MANY[1:n + 1]), proof)  # a record deleted
                assert not verify_consistency(m, n, old_head, new_head, proof[:-1])
                assert not verify_consistency(m + 1, n, old_head, new_head, proof)
            assert not verify_consistency(n, m, new_head, old_head, proof) or m == n


@given(st.lists(st.binary(max_size=20), min_size=1, max_size=70), st.data())
def test_a_log_that_only_grows_is_consistent_and_a_rewrite_is_not(entries: list[bytes], data: st.DataObject) -> None:
    leaves = [leaf_hash(e) for e in entries]
    m = data.draw(st.integers(1, len(leaves)))
    assert verify_consistency(m, len(leaves), root(leaves[:m]), root(leaves), consistency_proof(leaves, m))
    at = data.draw(st.integers(0, m - 1))
    changed = [*leaves[:at], leaf_hash(entries[at] + b"!"), *leaves[at + 1:]]
    if m < len(leaves):
        assert not verify_consistency(m, len(leaves), root(leaves[:m]), root(changed), consistency_proof(changed, m))


@given(st.integers(0, 70), st.lists(st.integers(0, 80), max_size=6))
def test_prefix_roots_in_one_pass_are_the_roots_of_each_prefix(n: int, sizes: list[int]) -> None:
    leaves = [leaf_hash(bytes([i])) for i in range(n)]
    assert prefix_roots(leaves, sizes) == {s: _mth(leaves[:s]) for s in sizes if s <= n}


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1's recursive definition, as written there (the library's is iterative)."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = split(len(leaves))
    return node_hash(_mth(leaves[:k]), _mth(leaves[k:]))
