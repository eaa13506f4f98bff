"""The schema revision this code reads and writes, as a constant.

The readiness check (:meth:`storage.Backend.check`, :func:`storage.open_backend`) compares a
database's ``alembic_version`` with it, so that opening storage never imports Alembic; a contract
test keeps it equal to the head of the migration scripts.
"""

from __future__ import annotations

SCHEMA_HEAD = "0009"
