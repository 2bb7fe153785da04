"""Database URLs and the error boundary."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from ecrin.core.errors import BadRequest, EcrinError, StorageError, Unavailable
from ecrin.db.engine import normalise_url
from ecrin.db.sql import SqlMetadataStore
from tests.backends import postgres_database


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgresql://u:p@db:5432/ecrin", "postgresql+asyncpg"),
        ("postgres://u:p@db/ecrin", "postgresql+asyncpg"),
        ("postgresql+asyncpg://u:p@db/ecrin", "postgresql+asyncpg"),
        ("sqlite:///data/ecrin.sqlite3", "sqlite+aiosqlite"),
        ("sqlite+aiosqlite:///data/ecrin.sqlite3", "sqlite+aiosqlite"),
    ],
)
def test_urls_get_the_asyncio_driver(given: str, driver: str) -> None:
    url = normalise_url(given)
    assert url.drivername == driver
    assert (
        url.database
        == normalise_url(given.split("://", 1)[0] + "://" + given.split("://")[1]).database
    )


@pytest.mark.parametrize(
    "given", ["mysql://u:p@db/ecrin", "postgresql+psycopg2://u@db/e", "not a url"]
)
def test_other_databases_are_refused(given: str) -> None:
    with pytest.raises(BadRequest):
        normalise_url(given)


async def test_an_unreachable_postgresql_is_an_ecrin_error() -> None:
    store = SqlMetadataStore("postgresql://ecrin:ecrin@127.0.0.1:1/ecrin")
    try:
        with pytest.raises(EcrinError) as raised:
            await store.open()
        assert isinstance(raised.value, StorageError | Unavailable)
    finally:
        await store.close()


async def test_a_pool_with_no_free_connection_answers_busy() -> None:
    async with postgres_database() as url:
        store = SqlMetadataStore(url, durable=False, pool_size=1)
        store.engine.sync_engine.pool._timeout = 0.2  # type: ignore[attr-defined]
        await store.open()
        try:
            async with store.read(), store.read():  # the pool lends 1 + 1 in a burst
                with pytest.raises(Unavailable):
                    async with store.read():
                        pass
        finally:
            await store.close()


async def test_sqlite_runs_in_write_ahead_log_mode(tmp_path: Path) -> None:
    store = SqlMetadataStore(f"sqlite:///{tmp_path / 'e.sqlite3'}", durable=False)
    await store.open()
    try:
        async with store.engine.connect() as conn:
            mode = await conn.exec_driver_sql("PRAGMA journal_mode")
            assert mode.scalar() == "wal"
    finally:
        await store.close()


async def _drop_connections(url: str) -> None:
    """What a database restart does to a pool: every connection of the database is closed."""
    import asyncpg

    admin = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()


@asynccontextmanager
async def postgres_store(**options: Any) -> AsyncIterator[tuple[str, SqlMetadataStore]]:
    """A fresh PostgreSQL database's URL and an open store on it."""
    async with postgres_database() as url:
        store = SqlMetadataStore(url, durable=False, **options)
        await store.open()
        try:
            yield url, store
        finally:
            await store.close()


async def test_a_dropped_connection_idle_long_enough_is_replaced_before_use() -> None:
    async with postgres_store(ping_after_idle=0.0) as (url, store):
        await _drop_connections(url)
        async with store.read() as tx:  # checked, found dead, replaced
            assert await tx.list_users() == []


async def test_a_connection_in_steady_use_is_not_checked_and_a_drop_costs_one_request() -> None:
    async with postgres_store(pool_size=2) as (url, store):
        async with store.read(), store.read():  # two connections in the pool
            pass
        await _drop_connections(url)
        with pytest.raises(Unavailable):
            async with store.read() as tx:
                await tx.list_users()
        for _ in range(3):  # the pool replaced the other dropped connection too
            async with store.read() as tx:
                assert await tx.list_users() == []


async def test_a_drop_met_by_a_prepared_statement_costs_one_request_too() -> None:
    async with postgres_store(pool_size=2) as (url, store):
        async with store.read(), store.read():
            pass
        await _drop_connections(url)
        with pytest.raises(Unavailable):
            async with store.read() as tx:
                await tx.user_by_id(1)  # runs on asyncpg, past SQLAlchemy's execution layer
        for _ in range(3):
            async with store.read() as tx:
                assert await tx.user_by_id(1) is None
