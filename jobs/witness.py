"""Keeping the transparency log's checkpoints outside the database: the worker signs one on a
schedule (:class:`LogKeeper`) and hands it to witnesses (:class:`Witnesses`): a directory (a mount
the database's owner cannot write, a backup bucket's sync folder) and a webhook (another team's
service). A checkpoint only protects what it pins if a copy exists that the owner cannot rewrite;
docs/audit.md says what to point these at.

With a directory, the worker also writes the log's leaves since the last file it wrote
(``leaves-<from>-<to>.txt``, one line a position, :func:`workflow.audit.transparency.leaf_line`)
before the checkpoint that covers them: with them ``audit verify --witness-dir`` names the first
position where the database departs from what was witnessed, even after the owner rebuilt the log.

A witness that fails is logged and tried again with the next checkpoint; it never stops the
worker, and the checkpoint is in ``log_checkpoints`` either way.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

from workflow.audit.checkpoint import Signer
from workflow.audit.transparency import Leaf, leaf_line
from workflow.service.transparency import LogService

log = logging.getLogger("second_opinion.worker")
CHECKPOINT_FILE = re.compile(r"checkpoint-[0-9]{12}-[0-9]+\.txt")
LEAVES_FILE = re.compile(r"leaves-[0-9]{12}-([0-9]{12})\.txt")
"""The names witnesses' files are written under; ``audit verify --witness-dir`` reads them back."""
WITNESS_TIMEOUT = 5.0


class Witnesses:
    def __init__(self, directory: Path | None = None, url: str | None = None, *,
                 client: httpx.Client | None = None, timeout: float = WITNESS_TIMEOUT) -> None:  # fmt: skip
        self.directory = directory
        self.url = url
        self._client = client
        self._timeout = timeout

    def leaves_until(self) -> int:
        """The position up to which the directory holds the leaves already (0 without one)."""
        if self.directory is None:
            return 0
        try:
            ends = [int(m.group(1)) for p in self.directory.iterdir() if (m := LEAVES_FILE.fullmatch(p.name))]
        except OSError:
            return 0
        return max(ends, default=0)

    def hand(self, note: str, leaves: Sequence[Leaf] = ()) -> list[str]:
        """Give ``note`` (and the ``leaves`` it adds, to the directory) to every witness; the
        failures, one line each (empty: all took it)."""
        failures = []
        size = note.split("\n", 2)[1] if note.count("\n") >= 2 else "0"
        if self.directory is not None:
            try:
                if leaves:
                    lines = "".join(leaf_line(leaf) + "\n" for leaf in leaves)
                    self._write(lines, f"leaves-{leaves[0].position:012d}-{leaves[-1].position + 1:012d}.txt")
                self._write(note, f"checkpoint-{int(size):012d}-{time.time_ns()}.txt")
            except (OSError, ValueError) as exc:
                failures.append(f"directory {self.directory}: {exc}")
        if self.url is not None:
            try:
                client = self._client or httpx.Client(timeout=self._timeout)
                answer = client.post(self.url, content=note.encode(), headers={"content-type": "text/plain"})
                if answer.status_code >= 300:
                    failures.append(f"webhook: answered {answer.status_code}")
            except httpx.HTTPError as exc:
                failures.append(f"webhook: {type(exc).__name__}")
        return failures

    def _write(self, note: str, name: str) -> None:
        """Written whole or not at all: a witness never reads half a file."""
        assert self.directory is not None
        descriptor, temporary = tempfile.mkstemp(dir=self.directory, prefix=".checkpoint-")
        with os.fdopen(descriptor, "w") as handle:
            handle.write(note)
        os.replace(temporary, self.directory / name)


class LogKeeper:
    """On every worker tick: append what is not yet logged; every ``every`` seconds, with a
    signing key, sign a checkpoint and hand it to the witnesses."""

    def __init__(self, service: LogService, signer: Signer | None, witnesses: Witnesses, every: float,
                 monotonic: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.service, self.signer, self.witnesses, self.every = service, signer, witnesses, every
        self._monotonic = monotonic
        self._last: float | None = None
        self._leaves_until: int | None = None

    def tick(self) -> str | None:
        """The checkpoint signed on this tick, if one was due."""
        appended = self.service.sequence()
        if appended:
            log.info("transparency log: %d record(s) appended", appended)
        now = self._monotonic()
        if self.signer is None or (self._last is not None and now - self._last < self.every):
            return None
        self._last = now
        note = self.service.checkpoint([self.signer], self.signer.name)
        size = int(note.split("\n", 2)[1])
        if self._leaves_until is None:
            self._leaves_until = self.witnesses.leaves_until()
        leaves: list[Leaf] = []
        if self.witnesses.directory is not None:
            leaves = [x for x in self.service.leaves(self._leaves_until) if x.position < size]
        failures = self.witnesses.hand(note, leaves)
        if leaves and not any(f.startswith("directory") for f in failures):
            self._leaves_until = leaves[-1].position + 1
        for failure in failures:
            log.warning("checkpoint not handed to a witness: %s", re.sub(r"\s+", " ", failure)[:300])
        return note
