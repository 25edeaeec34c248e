"""Alembic's environment: migrate the connection `palabre.db.migrate` hands over.

Palabre runs migrations from code (`palabre db upgrade`), on a connection of its own
engine, already in a transaction; there is no alembic.ini and no URL to read here.
"""

from __future__ import annotations

from alembic import context

from palabre.db.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the migrations with `palabre db upgrade`, not the alembic command")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copy
)
with context.begin_transaction():
    context.run_migrations()
