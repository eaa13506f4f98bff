"""``audit verify`` throughput against SHA-256 alone over exactly the bytes it hashes.

``CaseService.verify()`` (what ``second-opinion audit verify`` runs) reads every case, its audit
records, transitions and deadlines, recomputes each record's hash, replays state, facts and
deadlines; the floor hashes the canonical bytes of the same records with ``hashlib`` and nothing
else. The records are the realistic mix of :mod:`bench.reads`.
"""

from __future__ import annotations

from second_opinion import connect
from workflow import FixedClock
from workflow.audit.chain import compute_hash, hash_input

from .config import Sizes
from .databases import database
from .floors import hashlib_rate
from .measure import seconds
from .reads import seed_mix
from .report import Figure
from .workload import NOW


def run(sizes: Sizes, backends: list[str], pg: str) -> list[Figure]:
    figures = []
    for backend in backends:
        with database(backend, pg) as url:
            seed_mix(url, sizes.verify_cases)
            with connect(url, clock=FixedClock(NOW)) as service:
                records = service.export()
                payloads = [hash_input(r) for r in records]
                reports = []
                elapsed = seconds(lambda: reports.append(service.verify()))  # noqa: B023
        (report,) = reports
        if not report.ok or report.records != len(payloads):
            raise RuntimeError(f"verify: ok={report.ok}, {report.records} records of {len(payloads)}")
        library, floor = report.records / elapsed, hashlib_rate(payloads)
        figures.append(Figure(
            f"verify.{backend}", f"audit verify of {report.records:,} records ({report.cases:,} cases), {backend}",
            "records/s", library, floor, floor / library, None, None,
            {"records": report.records, "cases": report.cases, "seconds": elapsed, "ok": report.ok},
        ))  # fmt: skip
        # the hashing part alone (issue 17): each record's hash input built and hashed, as verify does,
        # against hashlib over the same bytes; the rest of verify (reads, replay) is the figure above
        hashing = len(records) / min(seconds(lambda: [compute_hash(r) for r in records]) for _ in range(3))  # noqa: B023
        encodings = sorted({r.encoding for r in records})
        figures.append(Figure(
            f"verify_hash.{backend}", f"audit record hashes of {len(records):,} records (encoding {encodings}), "
            f"{backend}", "records/s", hashing, floor, floor / hashing, "≤3x (issue 17)", floor / hashing <= 3,
            {"records": len(records), "encodings": encodings, "bytes_mean": sum(map(len, payloads)) / len(payloads)},
        ))  # fmt: skip
    return figures
