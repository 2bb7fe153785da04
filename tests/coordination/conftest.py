"""Every coordination back-end the conformance suite runs against: in-process, SQLite, Redis.

`peers()` gives two handles on one shared state, as two server processes would hold: the
same object in-process, two connections to one file for SQLite, two clients of one server
(and one key prefix) for Redis.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from ecrin.coordination.local import InProcessCoordination
from ecrin.coordination.protocol import Coordination
from ecrin.coordination.redis import RedisCoordination
from ecrin.coordination.sqlite import SQLiteCoordination
from tests.backends import empty_redis_prefix, redis_test_location

Peers = Callable[[], Awaitable[tuple[Coordination, Coordination]]]


@pytest.fixture(params=["in-process", "sqlite", "redis"])
async def peers(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Peers]:
    opened: list[Coordination] = []
    location = redis_test_location() if request.param == "redis" else None

    async def make() -> tuple[Coordination, Coordination]:
        pair: tuple[Coordination, Coordination]
        if request.param == "sqlite":
            path = tmp_path / "coordination.sqlite3"
            pair = (SQLiteCoordination(path), SQLiteCoordination(path))
        elif location is None:
            shared = InProcessCoordination()
            pair = (shared, shared)
        else:
            url, prefix = location
            pair = (
                RedisCoordination(url, key_prefix=prefix),
                RedisCoordination(url, key_prefix=prefix),
            )
        for handle in pair:
            if handle not in opened:
                await handle.open()
                opened.append(handle)
        return pair

    try:
        yield make
    finally:
        for handle in opened:
            await handle.close()
        if location is not None:
            await empty_redis_prefix(*location)
