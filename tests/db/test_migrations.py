"""Schema migrations on both databases: from empty, from before migrations, and the guard
that keeps `ecrin.db.schema` and the revisions in step."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from ecrin.core.errors import StorageError
from ecrin.db import migrations, schema
from ecrin.db.sql import SqlMetadataStore

NOW = 1_700_000_000.0


def index_names(connection: Connection, table: str) -> set[str]:
    return {str(index["name"]) for index in inspect(connection).get_indexes(table)}


async def test_an_empty_database_gets_the_whole_schema(database_url: str) -> None:
    store = SqlMetadataStore(database_url, durable=False)
    await store.open()
    try:
        async with store.engine.connect() as conn:
            assert await conn.run_sync(migrations.current_revision) == migrations.head_revision()
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        assert set(schema.metadata.tables) <= tables
    finally:
        await store.close()


async def test_a_database_from_before_migrations_is_upgraded(database_url: str) -> None:
    store = SqlMetadataStore(database_url, durable=False)
    try:
        async with store.engine.begin() as conn:  # what Ecrin 0.1 left: v1 tables, no revision

            def build_v1(connection: Connection) -> None:
                command.upgrade(migrations.alembic_config(connection), migrations.BASELINE)
                connection.execute(text("DROP TABLE alembic_version"))

            await conn.run_sync(build_v1)
            await conn.execute(
                text(
                    "INSERT INTO users (tenant, name, display_name, password_hash, used_bytes,"
                    " is_admin, created_at) VALUES ('default', 'alice', 'Alice', 'h', 0, false,"
                    " :now)"
                ),
                {"now": NOW},
            )
        await store.open()
        async with store.engine.connect() as conn:
            assert await conn.run_sync(migrations.current_revision) == migrations.head_revision()
            assert "ix_locks_expires" in await conn.run_sync(index_names, "locks")
            version = await conn.scalar(text("SELECT value FROM schema_info"))
        assert version == str(schema.SCHEMA_VERSION)
        async with store.read() as tx:
            alice = await tx.user_by_name("alice")
        assert alice is not None and alice.display_name == "Alice"
    finally:
        await store.close()


async def test_replaying_every_revision_gives_the_declared_schema(database_url: str) -> None:
    store = SqlMetadataStore(database_url, durable=False)
    try:
        async with store.engine.begin() as conn:

            def replay_and_compare(connection: Connection) -> list[object]:
                command.upgrade(migrations.alembic_config(connection), "head")
                return list(
                    compare_metadata(MigrationContext.configure(connection), schema.metadata)
                )

            differences = await conn.run_sync(replay_and_compare)
    finally:
        await store.close()
    assert differences == [], (
        "ecrin.db.schema and the revisions in ecrin/db/migrations/versions disagree: add a "
        f"revision for this change (see ecrin.db.migrations): {differences}"
    )


async def test_a_database_from_a_newer_ecrin_is_refused(database_url: str) -> None:
    store = SqlMetadataStore(database_url, durable=False)
    await store.open()
    async with store.engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    await store.close()
    newer = SqlMetadataStore(database_url, durable=False)
    try:
        with pytest.raises(StorageError, match="newer Ecrin"):
            await newer.open()
    finally:
        await newer.close()


async def test_tables_without_a_version_are_refused(database_url: str) -> None:
    store = SqlMetadataStore(database_url, durable=False)
    try:
        async with store.engine.begin() as conn:
            await conn.run_sync(lambda c: schema.users.create(c))
        with pytest.raises(StorageError, match="no record of their schema version"):
            await store.open()
    finally:
        await store.close()


async def test_processes_opening_one_database_at_once_migrate_it_once(database_url: str) -> None:
    stores = [SqlMetadataStore(database_url, durable=False) for _ in range(3)]
    try:
        await asyncio.gather(*(store.open() for store in stores))
        async with stores[0].read() as tx:
            assert await tx.user_count() == 0
    finally:
        for store in stores:
            await store.close()


def test_the_newest_revision_is_found_without_alembic() -> None:
    assert migrations._newest_revision_here() == migrations.head_revision()


async def test_opening_an_up_to_date_database_does_not_load_alembic(
    database_url: str, tmp_path: Path
) -> None:
    store = SqlMetadataStore(database_url, durable=False)
    await store.open()
    await store.close()
    script = (
        "import asyncio, sys\n"
        "from ecrin.db.sql import SqlMetadataStore\n"
        "async def main():\n"
        f"    store = SqlMetadataStore({database_url!r}, durable=False)\n"
        "    await store.open()\n"
        "    await store.close()\n"
        "asyncio.run(main())\n"
        "print(sorted(m for m in sys.modules if m.startswith(('alembic', 'mako'))))\n"
    )
    opened = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert opened.stdout.strip() == "[]"
