"""Bulk seeding: template cases cloned under new ids, written straight into the tables.

Seeding a million rows through the service would take most of an hour, so rows go in with
``executemany`` of prepared rows (SQLite) or ``COPY`` (PostgreSQL). Their shapes are the
library's own: every clone is a template case (made by real commands, see
:mod:`bench.workload`) under another case id and patient reference, values converted by the
storage layer's own :class:`~storage.statements.Compiled`, and its audit chain re-sealed (a record's
hash covers its case id), so ``audit verify`` accepts a full clone. ``trail=False`` writes only
the case row and its deadline rows: the sweep's background, whose trails the sweep never reads.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any

import psycopg

from storage.codec import encode_payload
from storage.db import make_engine
from storage.statements import AUDIT, CASES, DEADLINES, TRANSITIONS, Compiled
from workflow.audit import jcs
from workflow.audit.chain import GENESIS, canonical, hashed_fields
from workflow.listing import assignee_of, case_due_at, provider_of

from .databases import sqlite_path
from .workload import Template

Rows = dict[str, list[tuple[Any, ...]]]
TABLES = {
    "cases": [c.name for c in CASES.columns],
    "audit_records": [c.name for c in AUDIT.columns if c.name != "sequence"],
    "case_transitions": [c.name for c in TRANSITIONS.columns if c.name != "id"],
    "deadlines": [c.name for c in DEADLINES.columns],
}
CHUNK = 20_000  # cases per executemany/COPY batch: bounded memory at a million rows


def compiled_for(url: str) -> Compiled:
    engine = make_engine(url)
    try:
        return Compiled(engine)
    finally:
        engine.dispose()


class Cloner:
    """Rows of a template case under any case id, values already as the driver takes them."""

    def __init__(self, template: Template, compiled: Compiled) -> None:
        self.template = template
        convert = compiled.params
        # with the columns storage derives for the work lists (as SqlCases.add and the deadline writes keep them)
        case = template.case
        due = case_due_at(template.deadlines)
        self._case = convert({**case.__dict__, "provider": provider_of(case.facts), "assignee": assignee_of(case.facts),
                              "due_at": due})  # fmt: skip
        self._records = []
        for record in template.records:
            values = {k: v for k, v in record.__dict__.items() if k != "sequence"}
            values["payload"] = encode_payload(record.payload)
            self._records.append((hashed_fields(record), convert(values)))
        self._transitions = [convert(dict(t.__dict__)) for t in template.transitions]
        self._deadlines = [convert({"id": d.id, **d.__dict__}) for d in template.deadlines]
        self._policy_ids = [d.policy for d in template.deadlines]

    def add(self, rows: Rows, case_id: str, patient_ref: str, trail: bool = True) -> None:
        head, count = self._case["audit_head"], self._case["audit_count"]
        if trail:
            prev = GENESIS
            for fields, values in self._records:
                fields = {**fields, "case_id": case_id, "prev_hash": prev}
                values = {**values, "case_id": case_id, "prev_hash": prev}
                if fields["seq"] == 1:  # the opening record names the patient reference
                    fields["payload"] = {**fields["payload"], "patient_ref": patient_ref}
                    values["payload"] = encode_payload(fields["payload"])
                body = jcs.dumps(fields) if fields["v"] >= 2 else canonical(fields)
                prev = values["hash"] = hashlib.sha256(body).hexdigest()
                values["body"] = body.decode() if fields["v"] >= 2 else None  # as seal() keeps it
                rows["audit_records"].append(_tuple("audit_records", values))
            for values in self._transitions:
                rows["case_transitions"].append(_tuple("case_transitions", {**values, "case_id": case_id}))
            head = prev
        case = {**self._case, "id": case_id, "patient_ref": patient_ref, "audit_head": head, "audit_count": count}
        rows["cases"].append(_tuple("cases", case))
        for policy, values in zip(self._policy_ids, self._deadlines, strict=True):
            rows["deadlines"].append(_tuple("deadlines", {**values, "id": f"{case_id}/{policy}", "case_id": case_id}))


def _tuple(table: str, values: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(values[c] for c in TABLES[table])


def case_id(tag: str, i: int) -> str:
    return f"so-{tag}{i:012d}"


def clones(mix: list[tuple[Cloner, int]], tag: str, n: int, trail: bool = True) -> Iterator[Rows]:
    """Rows of ``n`` cases in chunks; ``mix`` says how many of every ``sum(weights)`` cases
    each template gives (in a fixed round-robin, so any prefix has the same mix)."""
    pattern = [cloner for cloner, weight in mix for _ in range(weight)]
    rows = _empty()
    for i in range(n):
        pattern[i % len(pattern)].add(rows, case_id(tag, i), f"PX-{tag}{i:08d}", trail)
        if (i + 1) % CHUNK == 0:
            yield rows
            rows = _empty()
    if rows["cases"]:
        yield rows


def _empty() -> Rows:
    return {table: [] for table in TABLES}


def insert(url: str, chunks: Iterable[Rows]) -> int:
    """Write every chunk, parents first; returns the number of rows written."""
    written = 0
    if url.startswith("sqlite"):
        conn = sqlite3.connect(sqlite_path(url), isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            for rows in chunks:
                for table, columns in TABLES.items():
                    marks = ", ".join("?" * len(columns))
                    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
                    conn.executemany(sql, rows[table])
                    written += len(rows[table])
            conn.execute("COMMIT")
        finally:
            conn.close()
        return written
    with psycopg.connect(url) as pg, pg.cursor() as cursor:
        for rows in chunks:
            for table, columns in TABLES.items():
                with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows[table]:
                        copy.write_row(row)
                written += len(rows[table])
    return written
