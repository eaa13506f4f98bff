"""Keeping the transparency log's checkpoints outside the database: the worker signs one on a
schedule (:class:`LogKeeper`) and hands it to witnesses (:class:`Witnesses`): a directory (a mount
the database's owner cannot write, a backup bucket's sync folder) and a webhook (another team's
service). A checkpoint only protects what it pins if a copy exists that the owner cannot rewrite;
docs/audit.md says what to point these at.

A witness that fails is logged and tried again with the next checkpoint; it never stops the
worker, and the checkpoint is in ``log_checkpoints`` either way.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from workflow.audit.checkpoint import Signer
from workflow.service.transparency import LogService

log = logging.getLogger("second_opinion.worker")
WITNESS_TIMEOUT = 5.0


class Witnesses:
    def __init__(self, directory: Path | None = None, url: str | None = None, *,
                 client: httpx.Client | None = None, timeout: float = WITNESS_TIMEOUT) -> None:  # fmt: skip
        self.directory = directory
        self.url = url
        self._client = client
        self._timeout = timeout

    def hand(self, note: str) -> list[str]:
        """Give ``note`` to every witness; the failures, one line each (empty: all took it)."""
        failures = []
        size = note.split("\n", 2)[1] if note.count("\n") >= 2 else "0"
        if self.directory is not None:
            try:
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
        """Written whole or not at all: a witness never reads half a checkpoint."""
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
        for failure in self.witnesses.hand(note):
            log.warning("checkpoint not handed to a witness: %s", re.sub(r"\s+", " ", failure)[:300])
        return note
