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

Alembic (with Mako and Pygments, ~11 MiB per process) is imported only when a database is
not already at the newest revision: a server opening an up-to-date database never loads it.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from ecrin.core.errors import StorageError
from ecrin.db import schema

if TYPE_CHECKING:
    from alembic.config import Config

BASELINE = "0001"
# Any constant will do; it names "Ecrin migrates this database" among advisory locks.
_ADVISORY_LOCK_KEY = 0x45435249


def alembic_config(connection: Connection) -> Config:
    """An Alembic configuration bound to `connection` (its transaction is used as is)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(Path(__file__).parent))
    head = script.get_current_head()
    assert head is not None
    return head


def current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


@cache
def _newest_revision_here() -> str | None:
    """The revision no other revision file names as its `down_revision` (None if unsure)."""
    revisions, parents = set(), set()
    for path in (Path(__file__).parent / "versions").glob("v*.py"):
        source = path.read_text(encoding="utf-8")
        revisions.update(re.findall(r'^revision\b[^=]*= "(\w+)"', source, re.M))
        parents.update(re.findall(r'^down_revision\b[^=]*= "(\w+)"', source, re.M))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _already_newest(connection: Connection) -> bool:
    newest = _newest_revision_here()
    if newest is None or not inspect(connection).has_table("alembic_version"):
        return False
    stamped = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return stamped == [newest]


def upgrade(connection: Connection) -> tuple[str | None, str]:
    """Bring the schema up to date; returns (revision before, revision after).

    Runs inside the caller's transaction: if anything fails, nothing has changed.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
    if _already_newest(connection):
        newest = _newest_revision_here()
        assert newest is not None
        return newest, newest
    from alembic import command
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

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
