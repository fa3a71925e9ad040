"""Alembic environment: runs on the connection the metadata store hands over (see upgrade_schema)."""

from alembic import context

from leitstand.store.sql.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only through `alembic` on the command line
    raise RuntimeError("run migrations through leitstand.store.sql.metadata.upgrade_schema")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
