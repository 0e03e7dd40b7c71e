"""Alembic environment: migrations run on the connection Portico hands over."""

from __future__ import annotations

from alembic import context

from portico.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - Portico always passes its connection
    raise RuntimeError("run migrations through `portico migrate` or Store.migrate()")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
