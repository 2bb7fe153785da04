"""Alembic's environment for Ecrin: migrations run on the connection Ecrin hands over.

Ecrin upgrades its schema itself when it opens the database (`ecrin.db.migrations.upgrade`),
inside one transaction it already holds, so this file only wires that connection in.
"""

from __future__ import annotations

from alembic import context

from ecrin.db.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Ecrin runs its migrations itself when it opens the database")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
