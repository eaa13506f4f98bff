"""Signed checkpoints (workflow/audit/checkpoint.py): the signed-note wire format checked against
the reference example of Go's golang.org/x/mod/sumdb/note (the key pair and the signed note its docs
print; Ed25519 signatures are deterministic, so ours must be byte for byte the same), the
tlog-checkpoint body, and every refusal: an unknown key, a changed note, a mangled key."""

from __future__ import annotations

import base64

import pytest

from workflow.audit.checkpoint import Checkpoint, Signer, Verifier, open_checkpoint, open_note, sign_note
from workflow.audit.merkle import EMPTY_ROOT
from workflow.errors import CheckpointError

GO_SIGNER = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VERIFIER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_NOTE = GO_TEXT + ("\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfq"
                     "dngotpRZb6KE6RyyBwJnAM=\n")  # fmt: skip


def test_the_go_reference_keys_and_note() -> None:
    signer, verifier = Signer.parse(GO_SIGNER), Verifier.parse(GO_VERIFIER)
    assert signer.verifier == verifier and signer.text() == GO_SIGNER and verifier.text() == GO_VERIFIER
    assert sign_note(GO_TEXT, [signer]) == GO_NOTE
    text, good = open_note(GO_NOTE, [verifier])
    assert text == GO_TEXT and good == [verifier]


def test_a_checkpoint_round_trips_and_its_body_is_the_c2sp_one() -> None:
    signer = Signer.generate("second-opinion.example/audit")
    checkpoint = Checkpoint("second-opinion.example/audit", 1234, EMPTY_ROOT)
    assert checkpoint.body() == "second-opinion.example/audit\n1234\n" + base64.b64encode(EMPTY_ROOT).decode() + "\n"
    note = checkpoint.sign([signer])
    assert open_checkpoint(note, [signer.verifier]) == (checkpoint, [signer.verifier])
    assert Signer.parse(signer.text()) == signer and Verifier.parse(signer.verifier.text()) == signer.verifier


def test_an_unknown_key_a_changed_note_and_a_rotated_key() -> None:
    old, new, stranger = Signer.generate("log"), Signer.generate("log"), Signer.generate("someone-else")
    note = Checkpoint("log", 10, EMPTY_ROOT).sign([old])
    with pytest.raises(CheckpointError, match=r"signed by an unknown key \(log\)"):
        open_checkpoint(note, [new.verifier])  # same name, another key: another key id
    with pytest.raises(CheckpointError, match="does not hold: the checkpoint was changed"):
        open_checkpoint(note.replace("\n10\n", "\n11\n"), [old.verifier])
    both = Checkpoint("log", 10, EMPTY_ROOT).sign([old, new])  # a rotation: signed by both for a while
    assert open_checkpoint(both, [new.verifier])[1] == [new.verifier]
    with pytest.raises(CheckpointError, match="unknown key"):
        open_checkpoint(Checkpoint("log", 10, EMPTY_ROOT).sign([stranger]), [old.verifier, new.verifier])


@pytest.mark.parametrize("key", [
    "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",  # wrong length
    "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # id mismatch
    "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # upper-case id
    "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # a space in the name
    "PeterNeumann+c74f20a3",
    "PeterNeumann+c74f20a3+!!!!",
    "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # not Ed25519 (type 0x65)
])  # fmt: skip
def test_mangled_verifier_keys_are_refused(key: str) -> None:
    with pytest.raises(CheckpointError, match=r"^public key: "):
        Verifier.parse(key)


@pytest.mark.parametrize(("body", "problem"), [
    ("log\n10\n", "expected the origin, the tree size and the root hash"),
    ("log\n010\n" + base64.b64encode(EMPTY_ROOT).decode() + "\n", "not a tree size"),
    ("log\n-1\n" + base64.b64encode(EMPTY_ROOT).decode() + "\n", "not a tree size"),
    ("log\n10\n" + base64.b64encode(b"short").decode() + "\n", "not a 32-byte root hash"),
    ("log\n10\n" + base64.b64encode(EMPTY_ROOT).decode(), "must end with a newline"),
])  # fmt: skip
def test_bodies_that_are_not_checkpoints(body: str, problem: str) -> None:
    with pytest.raises(CheckpointError, match=problem):
        Checkpoint.parse_body(body)


def test_notes_that_cannot_be_read() -> None:
    verifier = Verifier.parse(GO_VERIFIER)
    for note, problem in ((GO_TEXT, "no signature lines"), (GO_NOTE.replace("\u2014", "-"), "not '\u2014 name"),
                          ("x" * 70_000, "over 64 KiB")):  # fmt: skip
        with pytest.raises(CheckpointError, match=problem):
            open_note(note, [verifier])
