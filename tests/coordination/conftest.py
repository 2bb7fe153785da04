"""Every coordination back-end the conformance suite runs against: in-process, and Redis.

`peers()` gives two handles on one shared state, as two server processes would hold: the
same object in-process, two clients of one server (and one key prefix) for Redis.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from ecrin.coordination.local import InProcessCoordination
from ecrin.coordination.protocol import Coordination
from ecrin.coordination.redis import RedisCoordination
from tests.backends import empty_redis_prefix, redis_test_location

Peers = Callable[[], Awaitable[tuple[Coordination, Coordination]]]


@pytest.fixture(params=["in-process", "redis"])
async def peers(request: pytest.FixtureRequest) -> AsyncIterator[Peers]:
    opened: list[Coordination] = []
    location = redis_test_location() if request.param == "redis" else None

    async def make() -> tuple[Coordination, Coordination]:
        if location is None:
            shared = InProcessCoordination()
            pair: tuple[Coordination, Coordination] = (shared, shared)
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
