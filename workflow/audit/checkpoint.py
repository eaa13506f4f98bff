"""Signed checkpoints of the audit log: the C2SP ``tlog-checkpoint`` body in a C2SP ``signed-note``,
signed with Ed25519, in the formats of Go's ``golang.org/x/mod/sumdb/note`` (which the C2SP specs
write down), so that an auditor can check one with tools that are not ours.

Why these formats: a checkpoint is what an auditor keeps outside the database (a file, a witness).
It must be readable in ten years by someone who never ran this library. The C2SP texts fix every
byte:

- **Body** (tlog-checkpoint): the origin line (the log's name), the tree size in decimal, the root
  hash in standard base64, then optional extension lines; every line ends in ``\\n``.
- **Note** (signed-note): the body, a blank line, then one line per signature:
  ``— <key name> <base64(key id || signature)>`` (U+2014, a space, the name, a space).
- **Key id**: the first four bytes of ``SHA-256(name || "\\n" || 0x01 || public key)``; 0x01 names
  Ed25519. The signature is Ed25519 over the body's bytes.
- **Keys as text**: the verifier key ``<name>+<key id, 8 hex digits>+<base64(0x01 || public key)>``
  and the signer key ``PRIVATE+KEY+<name>+<key id>+<base64(0x01 || 32-byte seed)>``.

The signer key never enters the database: the CLI reads it from a file the operator keeps.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from workflow.errors import CheckpointError

ED25519 = 0x01
"""The signature type byte of Ed25519 in a note key."""
DASH = "\u2014"
MAX_NOTE = 64 * 1024
"""A checkpoint note is a few hundred bytes; anything much larger is not one."""
MAX_SIGNATURES = 100
_NAME = re.compile(r"[^\s+]{1,128}")
_SIZE = re.compile(r"0|[1-9][0-9]{0,19}")


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte id of an Ed25519 key under ``name`` (signed-note)."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + public_key).digest()[:4]


def _check_name(name: str, what: str) -> None:
    if not _NAME.fullmatch(name):
        raise CheckpointError(what, "a key name is 1 to 128 characters, without spaces or '+'")


@dataclass(frozen=True)
class Verifier:
    """A public key that checkpoints may be signed with: its name and 32 bytes."""

    name: str
    public_key: bytes

    @property
    def id(self) -> bytes:
        return key_id(self.name, self.public_key)

    def text(self) -> str:
        """The verifier key as text (``name+hash+key``)."""
        data = base64.b64encode(bytes([ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.id.hex()}+{data}"

    @classmethod
    def parse(cls, text: str) -> Verifier:
        """A verifier key from its text; :class:`CheckpointError` saying what is wrong."""
        what = "public key"
        parts = text.strip().split("+", 2)  # the base64 may hold a '+'
        if len(parts) != 3:
            raise CheckpointError(what, "expected name+keyid+key (one line, as `audit keygen` writes it)")
        name, hash_hex, data = parts
        _check_name(name, what)
        raw = _b64(data, what)
        if len(raw) != 33 or raw[0] != ED25519:
            raise CheckpointError(what, "not an Ed25519 key (type byte 0x01 and 32 bytes)")
        verifier = cls(name, raw[1:])
        if hash_hex != verifier.id.hex():
            raise CheckpointError(what, "its key id does not match its name and key")
        return verifier

    def verifies(self, body: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, body)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True)
class Signer:
    """A private key to sign checkpoints with (kept in a file, never in the database)."""

    name: str
    seed: bytes

    @classmethod
    def generate(cls, name: str) -> Signer:
        _check_name(name, "key name")
        key = Ed25519PrivateKey.generate()
        return cls(name, key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()))

    @property
    def verifier(self) -> Verifier:
        public = Ed25519PrivateKey.from_private_bytes(self.seed).public_key()
        return Verifier(self.name, public.public_bytes(Encoding.Raw, PublicFormat.Raw))

    def text(self) -> str:
        data = base64.b64encode(bytes([ED25519]) + self.seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier.id.hex()}+{data}"

    @classmethod
    def parse(cls, text: str) -> Signer:
        what = "signing key"
        parts = text.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise CheckpointError(what, "expected PRIVATE+KEY+name+keyid+key (as `audit keygen` writes it)")
        name, hash_hex, data = parts[2:]
        _check_name(name, what)
        raw = _b64(data, what)
        if len(raw) != 33 or raw[0] != ED25519:
            raise CheckpointError(what, "not an Ed25519 key (type byte 0x01 and 32 bytes)")
        signer = cls(name, raw[1:])
        if hash_hex != signer.verifier.id.hex():
            raise CheckpointError(what, "its key id does not match its name and key")
        return signer

    def sign(self, body: bytes) -> bytes:
        return Ed25519PrivateKey.from_private_bytes(self.seed).sign(body)


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: the log's origin, its size, its RFC 6962 root, extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode(), *self.extensions]
        return "".join(f"{line}\n" for line in lines)

    @classmethod
    def parse_body(cls, body: str) -> Checkpoint:
        what = "checkpoint"
        if not body.endswith("\n"):
            raise CheckpointError(what, "its text must end with a newline")
        lines = body[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointError(what, "expected the origin, the tree size and the root hash, one per line")
        origin, size, root, *extensions = lines
        if not origin or origin != origin.strip():
            raise CheckpointError(what, "the first line (the origin) is empty or has surrounding spaces")
        if not _SIZE.fullmatch(size):
            raise CheckpointError(what, f"the second line is not a tree size: {size[:24]!r}")
        raw = _b64(root, what)
        if len(raw) != 32:
            raise CheckpointError(what, "the third line is not a 32-byte root hash in base64")
        if any(not line for line in extensions):
            raise CheckpointError(what, "an empty line inside the body")
        return cls(origin, int(size), raw, tuple(extensions))

    def sign(self, signers: Sequence[Signer]) -> str:
        """The signed note of this checkpoint."""
        return sign_note(self.body(), signers)


def sign_note(text: str, signers: Sequence[Signer]) -> str:
    """A signed note: ``text`` (ending in a newline), a blank line, one signature line per signer."""
    if not text.endswith("\n"):
        raise CheckpointError("note", "its text must end with a newline")
    lines = [f"{DASH} {s.name} {base64.b64encode(s.verifier.id + s.sign(text.encode())).decode()}\n"
             for s in signers]  # fmt: skip
    return text + "\n" + "".join(lines)


def open_checkpoint(note: str, trusted: Iterable[Verifier]) -> tuple[Checkpoint, list[Verifier]]:
    """The checkpoint in a signed note and the trusted keys whose signatures on it hold
    (:func:`open_note`)."""
    body, good = open_note(note, trusted, "checkpoint")
    return Checkpoint.parse_body(body), good


def open_note(note: str, trusted: Iterable[Verifier], what: str = "note") -> tuple[str, list[Verifier]]:
    """The text of a signed note and the trusted keys whose signatures on it hold.

    Refused with :class:`CheckpointError` when the note cannot be read, when no signature is by a
    trusted key ("signed by an unknown key", naming the names found), or when a signature by a
    trusted key does not hold (the note was changed after signing)."""
    if len(note) > MAX_NOTE:
        raise CheckpointError(what, f"over {MAX_NOTE // 1024} KiB: not a checkpoint")
    body, sep, signatures = note.rpartition("\n\n")  # the last blank line, as Go's note.Open
    if not sep or not signatures.endswith("\n"):
        raise CheckpointError(what, "no signature lines after a blank line (a signed note)")
    body += "\n"
    keys = {(v.name, v.id): v for v in trusted}
    found, good = [], []
    lines = signatures[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise CheckpointError(what, f"more than {MAX_SIGNATURES} signatures")
    for line in lines:
        dash, _, rest = line.partition(" ")
        name, _, data = rest.partition(" ")
        if dash != DASH or not name or not data or " " in data:
            raise CheckpointError(what, "a signature line is not '\u2014 name signature'")
        raw = _b64(data, what)
        if len(raw) < 5:
            raise CheckpointError(what, f"the signature by {name[:64]!r} is too short")
        found.append(name)
        key = keys.get((name, raw[:4]))
        if key is None:
            continue
        if not key.verifies(body.encode(), raw[4:]):
            raise CheckpointError(what, f"the signature by {name[:64]!r} does not hold: the checkpoint was changed")
        good.append(key)
    if not good:
        names = ", ".join(sorted({n[:64] for n in found}))
        raise CheckpointError(what, f"signed by an unknown key ({names}); give the public key it was signed with")
    return body, good


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise CheckpointError(what, "a value is not base64") from None
