"""Throw-away databases: a SQLite file in a temporary directory, or a fresh PostgreSQL schema
(dropped afterwards). Both are initialised by the project's own migrations."""

from __future__ import annotations

import os
import platform
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from storage import initialise


@contextmanager
def sqlite_db(name: str = "bench") -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="so-bench-") as tmp:
        url = f"sqlite:///{Path(tmp) / f'{name}.sqlite3'}"
        initialise(url)
        yield url


@contextmanager
def pg_db(base: str) -> Iterator[str]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    url = f"{base}{sep}options=-csearch_path%3D{schema}"
    try:
        initialise(url)
        yield url
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


@contextmanager
def database(backend: str, pg: str) -> Iterator[str]:
    with sqlite_db() if backend == "sqlite" else pg_db(pg) as url:
        yield url


def sqlite_path(url: str) -> str:
    return url.removeprefix("sqlite:///")


def pg_analyze(url: str) -> None:
    """What autovacuum would have done by the time a table this size is queried in production."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def machine(pg: str | None) -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cores": os.cpu_count(), "cpu": cpu, "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(), "postgresql": None,
    }  # fmt: skip
    if pg:
        with psycopg.connect(pg) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            info["postgresql"] = row[0] if row else None
    return info
