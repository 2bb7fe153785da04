"""Every metadata store the conformance suite runs on: SQLite, and PostgreSQL when reachable."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ecrin.db.sql import SqlMetadataStore
from tests.backends import postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of a fresh, empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ecrin.sqlite3'}"
        return
    async with postgres_database() as url:
        yield url


@pytest.fixture
async def metadata_store(database_url: str) -> AsyncIterator[SqlMetadataStore]:
    store = SqlMetadataStore(database_url, durable=False, pool_size=4)
    await store.open()
    try:
        yield store
    finally:
        await store.close()
