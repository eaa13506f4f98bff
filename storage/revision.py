"""The schema revision this code reads and writes, as a constant.

The readiness check (:meth:`storage.Backend.check`, :func:`storage.open_backend`) compares a
database's ``alembic_version`` with it, so that opening storage never imports Alembic; a contract
test keeps it equal to the head of the migration scripts.
"""

from __future__ import annotations

SCHEMA_HEAD = "0017"


def is_newer(revision: str) -> bool:
    """Whether ``revision`` (as ``alembic_version`` holds it) comes after :data:`SCHEMA_HEAD`: the
    migrations are numbered 0001, 0002, ... in the order they apply, so a higher number was
    written by a newer version of this code, which this one must neither use nor "upgrade"."""
    return revision.isdigit() and int(revision) > int(SCHEMA_HEAD)


def is_known(revision: str) -> bool:
    """Whether ``revision`` is one of this code's migrations (0001 to :data:`SCHEMA_HEAD`)."""
    return revision.isdigit() and len(revision) == len(SCHEMA_HEAD) and 1 <= int(revision) <= int(SCHEMA_HEAD)
