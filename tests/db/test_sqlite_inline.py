"""The SQLite driver that runs statements on the event loop: a writer of another process
(here another engine on the same file) holding the write lock is waited for, not refused,
and the event loop keeps running meanwhile."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ecrin.db.sql import SqlMetadataStore


async def test_a_writer_waits_for_another_connections_write_lock(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ecrin.sqlite3'}"
    first, second = SqlMetadataStore(url), SqlMetadataStore(url)
    await first.open()
    await second.open()
    try:
        holding = asyncio.Event()
        release = asyncio.Event()

        async def hold_the_lock() -> None:
            async with first.write() as tx:
                await tx.insert_user("ana", "Ana", "hash", None, False, 1.0)
                holding.set()
                await release.wait()

        holder = asyncio.create_task(hold_the_lock())
        await holding.wait()
        waiting = asyncio.create_task(second_writer(second))
        ticks = 0
        while ticks < 20:  # the loop is not blocked while the second writer waits
            await asyncio.sleep(0.01)
            ticks += 1
        assert not waiting.done()
        release.set()
        await holder
        await waiting
        async with second.read() as tx:
            assert {u.name for u in await tx.list_users()} == {"ana", "bo"}
    finally:
        await first.close()
        await second.close()


async def second_writer(store: SqlMetadataStore) -> None:
    async with store.write() as tx:
        await tx.insert_user("bo", "Bo", "hash", None, False, 2.0)


async def test_an_invalidated_connection_is_closed_and_replaced(tmp_path: Path) -> None:
    store = SqlMetadataStore(f"sqlite:///{tmp_path / 'ecrin.sqlite3'}")
    await store.open()
    try:
        async with store.engine.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            await conn.invalidate()
        assert driver is not None and driver._connection is None  # closed
        async with store.read() as tx:
            assert await tx.user_count() == 0
    finally:
        await store.close()
