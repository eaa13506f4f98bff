"""The independent verifier in another language (verifier/verify.mjs, Node.js's own crypto, no
shared code) agrees with the library on what holds and what does not: a checkpoint signed here, an
inclusion proof and a consistency proof made here, each accepted; a changed note, an unknown key, a
changed record, a rewritten history and a fork each refused with its reason.

Skipped without Node.js locally; required under CI=true (.ci/run installs it when missing)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from workflow.audit.checkpoint import Checkpoint, Signer
from workflow.audit.merkle import consistency_proof, inclusion_proof, leaf_hash, root

VERIFIER = Path(__file__).resolve().parents[2] / "verifier" / "verify.mjs"
ENTRIES = [f'{{"record":{i},"event":"refer"}}'.encode() for i in range(21)]
SIGNER = Signer.generate("second-opinion.test/audit")


@pytest.fixture(scope="module")
def node() -> str:
    found = shutil.which("node")
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("Node.js is not installed (CI=true requires the second-language verifier test)")
        pytest.skip("Node.js is not installed (apt-get install -y nodejs)")
    return found


def run(node: str, tmp_path: Path, command: str, *contents: str) -> tuple[int, str]:
    files = []
    for i, text in enumerate(contents):
        path = tmp_path / f"in-{command}-{i}"
        path.write_text(text)
        files.append(str(path))
    done = subprocess.run([node, str(VERIFIER), command, *files], capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout.strip()


def note(entries: list[bytes], signer: Signer = SIGNER) -> str:
    leaves = [leaf_hash(e) for e in entries]
    return Checkpoint("second-opinion.test/audit", len(leaves), root(leaves)).sign([signer])


def b64(values: list[bytes]) -> list[str]:
    return [base64.b64encode(v).decode() for v in values]


def test_a_checkpoint_and_what_is_not_one(node: str, tmp_path: Path) -> None:
    key, head = SIGNER.verifier.text(), root([leaf_hash(e) for e in ENTRIES]).hex()
    assert run(node, tmp_path, "checkpoint", note(ENTRIES), key) == (
        0,
        f"OK checkpoint of second-opinion.test/audit: 21 records, root {head}",
    )
    assert run(node, tmp_path, "checkpoint", note(ENTRIES).replace("\n21\n", "\n22\n"), key) == (
        1,
        "FAILED: the signature does not hold: the checkpoint was changed",
    )
    stranger = Signer.generate("second-opinion.test/audit")  # the same name, another key
    assert run(node, tmp_path, "checkpoint", note(ENTRIES, stranger), key) == (
        1,
        "FAILED: the checkpoint is signed by an unknown key",
    )
    assert run(node, tmp_path, "checkpoint", note(ENTRIES), key.replace("+", "-", 1))[0] == 1


@pytest.mark.parametrize("index", [0, 7, 8, 20])
def test_inclusion_proofs(node: str, tmp_path: Path, index: int) -> None:
    leaves = [leaf_hash(e) for e in ENTRIES]
    bundle = {
        "checkpoint": note(ENTRIES),
        "public_key": SIGNER.verifier.text(),
        "index": index,
        "entry": base64.b64encode(ENTRIES[index]).decode(),
        "proof": b64(inclusion_proof(leaves, index)),
    }
    assert run(node, tmp_path, "inclusion", json.dumps(bundle)) == (
        0,
        f"OK record {index} is in the log of second-opinion.test/audit at size 21",
    )
    changed = {**bundle, "entry": base64.b64encode(ENTRIES[index].replace(b"refer", b"waive")).decode()}
    assert run(node, tmp_path, "inclusion", json.dumps(changed)) == (
        1,
        f"FAILED: record {index} is not in the log of this checkpoint",
    )


@pytest.mark.parametrize("old_size", [1, 4, 13, 21])
def test_consistency_proofs_and_a_rewritten_history(node: str, tmp_path: Path, old_size: int) -> None:
    leaves = [leaf_hash(e) for e in ENTRIES]
    bundle = {
        "old": note(ENTRIES[:old_size]),
        "new": note(ENTRIES),
        "public_key": SIGNER.verifier.text(),
        "proof": b64(consistency_proof(leaves, old_size)),
    }
    assert run(node, tmp_path, "consistency", json.dumps(bundle)) == (
        0,
        f"OK the log at 21 extends the log at {old_size}",
    )
    if old_size < 21:
        rewritten = [*ENTRIES[: old_size - 1], b'{"record":"rewritten"}', *ENTRIES[old_size:]]
        forged = {
            **bundle,
            "new": note(rewritten),
            "proof": b64(consistency_proof([leaf_hash(e) for e in rewritten], old_size)),
        }
        assert run(node, tmp_path, "consistency", json.dumps(forged)) == (
            1,
            f"FAILED: the log at 21 does not extend the log at {old_size}",
        )


def test_a_fork_two_checkpoints_of_one_size_with_different_roots(node: str, tmp_path: Path) -> None:
    other = [*ENTRIES[:-1], b'{"record":"other"}']
    bundle = {"old": note(ENTRIES), "new": note(other), "public_key": SIGNER.verifier.text(), "proof": []}
    assert run(node, tmp_path, "consistency", json.dumps(bundle)) == (
        1,
        "FAILED: a fork: two checkpoints of size 21 with different roots",
    )


def test_records_of_an_export_are_recomputed_and_tied_to_a_signed_checkpoint(node: str, tmp_path: Path) -> None:
    """The verifier recomputes each record's own hash from an ``audit export`` (JCS in JavaScript,
    sharing nothing with the library), links each case's chain, and ties a proven entry to the
    export's record: content -> hash -> entry -> leaf -> inclusion -> signed root."""
    from second_opinion import connect
    from second_opinion.render import export_jsonl
    from tests.conftest import DESK, T0
    from workflow import FixedClock
    from workflow.service.transparency import LogService

    service = connect("memory://", clock=FixedClock(T0), channel="embedded:ward-é")
    case_id = service.open_case("PX-N1", actor=DESK).case_id
    service.fire(case_id, "withdraw", actor=DESK, reason='changed mind: "née"\t\u2028 ✓')
    service.open_case("PX-N2", actor=DESK)
    log = LogService(service.runtime)
    checkpoint = log.checkpoint([SIGNER], "second-opinion.test/audit")
    export = tmp_path / "export.jsonl"
    export.write_text(export_jsonl(service.export()))
    proofs = []
    for n, record in enumerate(service.export()):
        assert record.sequence is not None
        proof = log.prove("audit", record.sequence, checkpoint, [SIGNER.verifier])
        bundle = tmp_path / f"proof-{n}.json"
        bundle.write_text(json.dumps({**proof, "public_key": SIGNER.verifier.text()}))
        proofs.append(bundle)

    ok = run(node, tmp_path, "records", export.read_text(), *(p.read_text() for p in proofs))
    assert ok == (0, "OK 3 record hashes recomputed, 2 chain(s) linked, 3 proof(s) tied to the export")

    lines = [line for line in export.read_text().split("\n") if line]  # not splitlines: U+2028 is in a reason
    changed = json.loads(lines[1])
    changed["reason"] = "no reason"
    assert run(node, tmp_path, "records", "\n".join([lines[0], json.dumps(changed), lines[2]])) == (
        1,
        f"FAILED: record {case_id} #2 (line 2): its hash is not that of its content (changed after it was written)",
    )
    assert run(node, tmp_path, "records", "\n".join([lines[1], lines[2]]))[1].endswith(
        "its chain is broken (a record before it is missing, moved or changed)"
    )
    # a rewritten record with a recomputed hash passes the export's own checks, not the signed proof
    rehashed = json.loads(lines[2])
    rehashed["actor_id"] = "someone-else"
    body = {"v": 2, **{k: rehashed[k] for k in FIELDS}, "channel": rehashed["channel"]}
    import hashlib

    import rfc8785

    rehashed["hash"] = hashlib.sha256(rfc8785.dumps(body)).hexdigest()
    forged = "\n".join([lines[0], lines[1], json.dumps(rehashed)])
    code, said = run(node, tmp_path, "records", forged, proofs[2].read_text())
    assert (code, said) == (
        1,
        f"FAILED: audit record {rehashed['sequence']} of the proof is not in the export with that hash",
    )


FIELDS = ("case_id", "seq", "event", "outcome", "from_state", "to_state", "actor_id", "actor_role", "on_behalf_of",
          "occurred_at", "recorded_at", "idempotency_key", "payload", "reason", "refusal", "prev_hash")  # fmt: skip
