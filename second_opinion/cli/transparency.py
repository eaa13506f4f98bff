"""The transparency log's commands (registered in :mod:`second_opinion.cli.root`): ``audit keygen``,
``audit checkpoint``, ``audit prove`` and ``audit extends``; ``audit verify --checkpoint`` is in
:mod:`second_opinion.cli.audit`. Keys and checkpoints are files the operator and the auditor keep
outside the database; every file read is bounded and every failure is one line."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from workflow.errors import ValidationError

from .common import Db, guard, open_service, out, print_json

if TYPE_CHECKING:
    from workflow.audit.checkpoint import Verifier
    from workflow.audit.transparency import Leaf

MAX_FILE = 64 * 1024
KeyFile = Annotated[Path, typer.Option("--signing-key", help="The private key file `audit keygen` wrote.")]
PublicKeys = Annotated[
    list[Path] | None, typer.Option("--public-key", help="A public key (FILE.pub) checkpoints may be signed with.")
]


def read_text(path: Path, what: str, limit: int = 0) -> str:
    """A small text file (``limit`` bytes, :data:`MAX_FILE` unless given), or
    :class:`ValidationError` naming it and the problem."""
    limit = limit or MAX_FILE
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise ValidationError(what, f"cannot read {str(path)[:200]!r}: {exc.strerror}") from None
    if len(data) > limit:
        raise ValidationError(what, f"{str(path)[:200]!r} is over {limit // 1024} KiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError(what, f"{str(path)[:200]!r} is not UTF-8 text") from None


def verifiers(paths: list[Path] | None) -> list[Verifier]:
    from workflow.audit.checkpoint import Verifier

    if not paths:
        raise ValidationError("--public-key", "give the public key (FILE.pub) the checkpoints were signed with")
    return [Verifier.parse(read_text(p, "--public-key")) for p in paths]


def keygen_command(
    out_file: Annotated[Path, typer.Option("--out", help="Write the private key here, the public key to FILE.pub.")],
    name: Annotated[str, typer.Option("--name", help="The log's name: the origin line of its checkpoints.")] = (
        "second-opinion.local/audit"),
) -> None:
    """Make an Ed25519 key pair for signing checkpoints. Keep FILE out of the database's reach."""
    from workflow.audit.checkpoint import Signer

    public = out_file.with_name(out_file.name + ".pub")
    with guard():
        for path in (out_file, public):
            if path.exists():
                raise ValidationError("--out", f"{str(path)[:200]!r} exists; a key is never overwritten")
        signer = Signer.generate(name)
        try:
            descriptor = os.open(out_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(signer.text() + "\n")
            public.write_text(signer.verifier.text() + "\n")
        except OSError as exc:
            raise ValidationError("--out", f"cannot write {str(out_file)[:200]!r}: {exc.strerror}") from None
    out.print(f"private key: {out_file} (mode 0600)\npublic key:  {public}\nkey: {signer.verifier.text()}",
              markup=False)  # fmt: skip


def checkpoint_command(signing_key: KeyFile, db: Db = None) -> None:
    """Log every record not yet logged, then print a signed checkpoint of the log (and record it)."""
    from workflow.audit.checkpoint import Signer
    from workflow.service.transparency import LogService

    with guard(), open_service(db) as service:
        signer = Signer.parse(read_text(signing_key, "--signing-key"))
        note = LogService(service.runtime).checkpoint([signer], signer.name)
    out.print(note, end="", markup=False)


def prove_command(
    record: Annotated[str, typer.Argument(help="audit:SEQUENCE or access:SEQUENCE (a bare number: audit).")],
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="The checkpoint to prove against.")],
    public_key: PublicKeys = None,
    db: Db = None,
) -> None:
    """Print an inclusion proof of one record (JSON, for verifier/verify.mjs inclusion)."""
    from workflow.service.transparency import LogService

    with guard(), open_service(db) as service:
        kind, _, ref = record.rpartition(":")
        if kind not in ("", "audit", "access") or not ref.isdigit() or len(ref) > 19:
            raise ValidationError("record", f"{record[:40]!r} is not audit:SEQUENCE or access:SEQUENCE")
        trusted = verifiers(public_key)
        note = read_text(checkpoint, "--checkpoint")
        bundle = LogService(service.runtime).prove(kind or "audit", int(ref), note, trusted)
    print_json({**bundle, "public_key": trusted[0].text()})


def extends_command(
    old: Annotated[Path, typer.Argument(help="The earlier checkpoint.")],
    new: Annotated[Path, typer.Argument(help="The later checkpoint.")],
    public_key: PublicKeys = None,
    db: Db = None,
) -> None:
    """Print a consistency proof that the log of NEW extends the log of OLD (JSON, for verify.mjs)."""
    from workflow.service.transparency import LogService

    with guard(), open_service(db) as service:
        trusted = verifiers(public_key)
        notes = read_text(old, "checkpoint"), read_text(new, "checkpoint")
        bundle = LogService(service.runtime).extends(*notes, trusted)
    print_json({**bundle, "public_key": trusted[0].text()})




MAX_LEAVES_FILE = 1 << 30
"""A witnessed leaves file is read whole; 1 GiB is some 10 million positions."""


def witness_dir(path: Path) -> tuple[list[tuple[str, str]], list[tuple[str, list[Leaf]]]]:
    """The checkpoints (``checkpoint-*.txt``) and leaves (``leaves-*.txt``) a witness directory
    holds, as :meth:`LogService.verify` takes them; a clear error for a directory that is not one."""
    from jobs.witness import CHECKPOINT_FILE, LEAVES_FILE
    from workflow.audit.transparency import parse_leaf_lines

    try:
        names = sorted(p.name for p in path.iterdir())
    except OSError as exc:
        raise ValidationError("--witness-dir", f"cannot read {str(path)[:200]!r}: {exc.strerror}") from None
    notes = [(str(path / n), read_text(path / n, "--witness-dir")) for n in names if CHECKPOINT_FILE.fullmatch(n)]
    leaves = [(str(path / n), parse_leaf_lines(read_text(path / n, "--witness-dir", MAX_LEAVES_FILE), n))
              for n in names if LEAVES_FILE.fullmatch(n)]  # fmt: skip
    if not notes:
        raise ValidationError("--witness-dir", f"{str(path)[:200]!r} holds no checkpoint-*.txt")
    return notes, leaves

