"""Alembic environment: always run with a connection handed in by :func:`storage.migrate.upgrade`
(or by the drift test), so the schema, the search path and the transaction are the caller's."""

from __future__ import annotations

from alembic import context

from storage.tables import METADATA

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `second-opinion init` (storage.migrate.upgrade)")

context.configure(
    connection=connection,
    target_metadata=METADATA,
    render_as_batch=connection.dialect.name == "sqlite",
    on_version_apply=context.config.attributes.get("on_version_apply"),  # init's progress (storage.migrate)
)
with context.begin_transaction():
    context.run_migrations()
