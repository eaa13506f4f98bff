"""Storage backends for the ports in :mod:`workflow.ports`.

:func:`open_backend` picks one by URL: ``sqlite:///FILE`` (the embedded default),
``postgresql://...`` (psycopg 3; several workers and API processes share it) or ``memory://``
(in-process, for tests). All three pass the same contract tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from workflow.errors import StorageNotReady
from workflow.ports import UnitOfWork

from .db import DEFAULT_URL, check_ready, make_engine, normalise_url, redact, upgrade
from .memory import MemoryStore, MemoryUnitOfWork
from .sql import Compiled, SqlUnitOfWork

MEMORY_URL = "memory://"


@dataclass
class Backend:
    """A storage choice, opened: hands out units of work and can be closed."""

    url: str
    engine: Engine | None = None
    store: MemoryStore | None = None

    def __post_init__(self) -> None:
        self._compiled = Compiled(self.engine) if self.engine is not None else None

    def unit_of_work(self, write: bool) -> UnitOfWork:
        if self.engine is not None:
            assert self._compiled is not None
            return SqlUnitOfWork(self.engine, self._compiled, write)
        assert self.store is not None
        return MemoryUnitOfWork(self.store, write)

    def check(self) -> None:
        """Raise StorageNotReady unless the database answers and is at the code's schema."""
        if self.engine is not None:
            check_ready(self.engine, self.url)

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()


def open_backend(url: str = DEFAULT_URL, *, check: bool = True) -> Backend:
    """Open storage at ``url``; with ``check``, refuse an un-initialised or outdated database."""
    if url.startswith(MEMORY_URL):
        return Backend(url=url, store=MemoryStore())
    engine = make_engine(url)
    if check and _missing_sqlite_file(url):
        raise StorageNotReady(redact(url), "does not exist: run `second-opinion init` first")
    if check:
        try:
            check_ready(engine, url)
        except StorageNotReady:
            engine.dispose()
            raise
    return Backend(url=url, engine=engine)


def initialise(url: str = DEFAULT_URL) -> str:
    """Create or upgrade the schema at ``url``; returns the revision it is now at."""
    if url.startswith(MEMORY_URL):
        return "memory"
    engine = make_engine(url)
    try:
        return upgrade(engine)
    finally:
        engine.dispose()


def _missing_sqlite_file(url: str) -> bool:
    parsed = make_url(normalise_url(url))
    return parsed.get_backend_name() == "sqlite" and bool(parsed.database) and not Path(str(parsed.database)).exists()


__all__ = ["DEFAULT_URL", "MEMORY_URL", "Backend", "MemoryStore", "initialise", "open_backend"]
