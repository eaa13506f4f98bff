"""The transparency log's tree head and proofs at 1M records (issue 17: "checkpoint and proof
generation with O(log n) reads at 1M records"), at two sizes so the growth shows: the library
(:mod:`workflow.audit.transparency` over the log's unit of work, every stored hash it reads
counted) against a floor that reads the same stored hashes by primary key through the driver.

The store is ``Sizes.log_records`` synthetic entries (``audit <i> <hash>``), their leaves and the
hash of every complete subtree, bulk-inserted as the sequencer would have left them (sequencing
1M records one batch at a time is the worker's work, not a figure here).
"""

from __future__ import annotations

import hashlib
import random
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from second_opinion import connect
from workflow.audit.transparency import (
    NodeKey,
    consistency_path,
    inclusion_path,
    leaf_of,
    new_nodes,
    right_edge,
    tree_root,
)

from .config import Sizes
from .databases import database, pg_analyze, sqlite_path
from .measure import latencies_ms, percentile
from .report import Figure

BATCH = 50_000


def run(sizes: Sizes, backends: list[str], pg: str) -> list[Figure]:
    figures = []
    for backend in backends:
        smallest: dict[str, float] = {}
        for n in sizes.log_records:
            with database(backend, pg) as url:
                _seed(url, n)
                if not url.startswith("sqlite"):
                    pg_analyze(url)
                for figure in _measure(url, backend, n, sizes.log_samples):
                    kind = figure.id.split(".")[1]
                    smallest.setdefault(kind, figure.detail["reads"])
                    figure.detail["reads_growth_from_smallest"] = round(figure.detail["reads"] / smallest[kind], 2)
                    figures.append(figure)
    return figures


def _seed(url: str, n: int) -> None:
    """``n`` leaves and every complete subtree's hash, inserted in bulk."""
    conn = sqlite3.connect(sqlite_path(url)) if url.startswith("sqlite") else psycopg.connect(url)
    mark = "?" if url.startswith("sqlite") else "%s"
    edge: dict[NodeKey, bytes] = {}
    size = 0
    try:
        while size < n:
            count = min(BATCH, n - size)
            leaves = [leaf_of("audit", size + i + 1, hashlib.sha256(str(size + i).encode()).hexdigest())
                      for i in range(count)]  # fmt: skip
            made = new_nodes(size, edge, leaves)
            cursor = conn.cursor()
            values = f"({mark}, {mark}, {mark}, {mark})"
            rows = [(size + i, "audit", size + i + 1, leaf.hex()) for i, leaf in enumerate(leaves)]
            cursor.executemany(f"INSERT INTO log_leaves (position, kind, ref, leaf) VALUES {values}", rows)
            cursor.executemany(f"INSERT INTO log_nodes (level, idx, hash) VALUES ({mark}, {mark}, {mark})",
                               [(level, idx, value.hex()) for (level, idx), value in made.items()])  # fmt: skip
            conn.commit()
            known = {**edge, **made, **{(0, size + i): leaf for i, leaf in enumerate(leaves)}}
            size += count
            edge = {key: known[key] for key in right_edge(size)}
    finally:
        conn.close()


class Reader:
    """The log's stored-hash reader, keeping the keys it is asked for (the count of reads)."""

    def __init__(self, uow: Any) -> None:
        self.uow, self.keys = uow, []  # type: ignore[var-annotated]

    def __call__(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        self.keys.extend(keys)
        found: dict[NodeKey, bytes] = self.uow.log.hashes(keys)
        return found


def _measure(url: str, backend: str, n: int, samples: int) -> list[Figure]:
    rng = random.Random(17)
    positions = [rng.randrange(n) for _ in range(samples + 1)]
    olds = [rng.randrange(1, n) for _ in range(samples + 1)]
    ops: dict[str, Callable[[Reader, int], object]] = {
        "head": lambda read, i: tree_root(n, read),
        "inclusion": lambda read, i: inclusion_path(positions[i], n, read),
        "consistency": lambda read, i: consistency_path(olds[i], n, read),
    }
    raw = sqlite3.connect(sqlite_path(url)) if backend == "sqlite" else psycopg.connect(url)
    mark = "?" if backend == "sqlite" else "%s"
    figures = []
    try:
        with connect(url) as service, service.unit_of_work(False) as uow:
            for name, op in ops.items():
                figures.append(_figure(f"log.{name}.{backend}.{n}", f"transparency log {name} at {n:,} records, "
                                       f"{backend}", op, uow, raw, mark, samples, n))  # fmt: skip
    finally:
        raw.close()
    return figures


def _figure(id_: str, what: str, op: Callable[[Reader, int], object], uow: Any, raw: Any, mark: str, samples: int,
            n: int) -> Figure:  # fmt: skip
    """The library's call (sample ``i`` of the op, a fresh reader each) against the driver reading
    the same stored hashes the library read in the same sample."""
    turns, replay = iter(range(10**9)), iter(range(10**9))
    calls: list[list[NodeKey]] = []

    def library() -> None:
        reader = Reader(uow)
        op(reader, next(turns) % (samples + 1))
        calls.append(reader.keys)

    lib = latencies_ms(library, samples)
    floor = latencies_ms(lambda: _raw_reads(raw, mark, calls[next(replay) % len(calls)]), samples)
    value, base = percentile(lib, 50), percentile(floor, 50)
    reads = sum(len(c) for c in calls) / len(calls)
    return Figure(id_, what, "ms p50", value, base, value / base if base else float("inf"),
                  detail={"reads": round(reads, 1), "max_reads": max(len(c) for c in calls), "records": n,
                          "p95_ms": percentile(lib, 95), "floor_p95_ms": percentile(floor, 95),
                          "samples": samples})  # fmt: skip


def _raw_reads(raw: Any, mark: str, keys: Sequence[NodeKey]) -> None:
    """The same stored hashes, one primary-key SELECT each, through the driver."""
    cursor = raw.cursor()
    for level, idx in keys:
        if level == 0:
            cursor.execute(f"SELECT leaf FROM log_leaves WHERE position = {mark}", (idx,))
        else:
            cursor.execute(f"SELECT hash FROM log_nodes WHERE level = {mark} AND idx = {mark}", (level, idx))
        cursor.fetchone()
    raw.rollback()


