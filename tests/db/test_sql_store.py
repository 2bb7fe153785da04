"""SQLite read transactions on kept connections (`SqlMetadataStore._sqlite_read`): begun on
SQLite's own connection, joined by SQLAlchemy Core statements, one snapshot throughout, and
the connection handed back outside any transaction, after an error too."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ecrin.core.errors import NotFound
from ecrin.db.sql import SqlMetadataStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlMetadataStore]:
    store = SqlMetadataStore(f"sqlite:///{tmp_path / 'ecrin.sqlite3'}", durable=False)
    await store.open()
    async with store.write() as tx:
        await tx.insert_user("ana", "Ana", "hash", None, False, 1.0)
    yield store
    await store.close()


async def test_a_read_sees_one_snapshot_across_prepared_and_core_statements(
    store: SqlMetadataStore,
) -> None:
    async with store.read() as tx:
        ana = await tx.user_by_name("ana")  # a Core statement: SQLAlchemy joins the read
        assert ana is not None
        async with store.write() as writer:
            await writer.insert_user("bo", "Bo", "hash", None, False, 2.0)
            await writer.set_quota(ana.id, 1000)
        assert [u.name for u in await tx.list_users()] == ["ana"]
        seen = await tx.user_by_id(ana.id)  # a prepared statement, same snapshot
        assert seen is not None and seen.quota_bytes is None
    async with store.read() as tx:
        assert {u.name for u in await tx.list_users()} == {"ana", "bo"}


async def test_a_read_connection_is_kept_and_left_outside_any_transaction(
    store: SqlMetadataStore,
) -> None:
    async with store.read() as tx:
        await tx.list_users()
        first = tx._prepared.sqlite
    with pytest.raises(NotFound):
        async with store.read() as tx:
            assert tx._prepared.sqlite is first  # the same connection, kept
            await tx.list_users()
            raise NotFound("the caller's own error")
    async with store.read() as tx:
        assert tx._prepared.sqlite is first  # still kept after the error
    assert first is not None and not first.in_transaction
    assert all(not conn.in_transaction() for conn, _ in store._idle_readers)
