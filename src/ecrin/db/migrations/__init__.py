"""Schema migrations (Alembic), run when Ecrin opens its database, on SQLite and PostgreSQL.

- An empty database gets today's schema straight from `ecrin.db.schema` and is stamped with
  the newest revision (Alembic's "build from scratch" recipe): no replaying of history.
- A database built before migrations existed (it has `schema_info` but no `alembic_version`)
  is stamped with the baseline revision, then upgraded.
- Any other database is upgraded to the newest revision, in one transaction.
- A database stamped with a revision this build does not know is newer than this Ecrin: it
  is refused rather than guessed at.

Several server processes may open one PostgreSQL database at once: a transaction-level
advisory lock makes one of them migrate while the others wait. On SQLite the migration's
`BEGIN IMMEDIATE` does the same.

To change the schema: edit `ecrin.db.schema`, then add `versions/vNNNN_what.py` whose
`down_revision` is the newest revision, with `upgrade()` (use `op.batch_alter_table` to alter
a table: SQLite rebuilds it). `tests/db/test_migrations.py` fails until replaying every
revision gives exactly the tables, columns and indexes that `ecrin.db.schema` declares.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from ecrin.core.errors import StorageError
from ecrin.db import schema

BASELINE = "0001"
# Any constant will do; it names "Ecrin migrates this database" among advisory locks.
_ADVISORY_LOCK_KEY = 0x45435249


def alembic_config(connection: Connection) -> Config:
    """An Alembic configuration bound to `connection` (its transaction is used as is)."""
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    script = ScriptDirectory(str(Path(__file__).parent))
    head = script.get_current_head()
    assert head is not None
    return head


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection) -> tuple[str | None, str]:
    """Bring the schema up to date; returns (revision before, revision after).

    Runs inside the caller's transaction: if anything fails, nothing has changed.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
    config = alembic_config(connection)
    tables = set(inspect(connection).get_table_names())
    ours = tables & set(schema.metadata.tables)
    if "alembic_version" not in tables:
        if "schema_info" in tables:
            command.stamp(config, BASELINE)
        elif not ours:
            schema.metadata.create_all(connection)
            connection.execute(
                schema.schema_info.insert().values(key="version", value=str(schema.SCHEMA_VERSION))
            )
            command.stamp(config, "head")
            return None, head_revision()
        else:
            raise StorageError(
                f"the database holds Ecrin tables ({', '.join(sorted(ours))}) but no record of "
                "their schema version: restore it from a backup or start with an empty one"
            )
    before = current_revision(connection)
    script = ScriptDirectory.from_config(config)
    try:
        if before is not None:
            script.get_revision(before)
    except CommandError as exc:
        raise StorageError(
            f"the database schema is at revision {before}, which this Ecrin does not know: "
            "it was upgraded by a newer Ecrin; upgrade Ecrin"
        ) from exc
    command.upgrade(config, "head")
    return before, head_revision()
