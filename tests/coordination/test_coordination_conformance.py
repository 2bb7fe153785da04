"""What every coordination back-end guarantees, seen from two processes sharing it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from ecrin.coordination.leases import holding
from ecrin.coordination.protocol import Reading
from ecrin.coordination.redis import RedisCoordination
from ecrin.core.errors import Unavailable
from tests.coordination.conftest import Peers


async def test_generations_start_at_zero_and_an_advance_is_seen_by_the_peer(peers: Peers) -> None:
    a, b = await peers()
    assert await a.generation("credentials:alice") == 0
    assert await a.advance("credentials:alice") == 1
    assert await b.generation("credentials:alice") == 1
    assert await b.advance("credentials:alice") == 2
    assert await a.generation("credentials:alice") == 2
    assert await a.generation("credentials:bob") == 0


async def test_event_windows_count_only_recent_events_on_both_sides(peers: Peers) -> None:
    a, b = await peers()
    for at in (100.0, 200.0, 250.0):
        await a.record_event("link:x", at, keep_for=300.0)
    await b.record_event("link:x", 260.0, keep_for=300.0)
    assert await b.count_events("link:x", since=0.0) == 4
    assert await a.count_events("link:x", since=200.0) == 2  # strictly after
    assert await a.count_events("link:y", since=0.0) == 0
    await b.record_event("link:x", 460.0, keep_for=300.0)  # drops what is older than 160
    assert await a.count_events("link:x", since=0.0) == 4
    await a.forget_events("link:x")
    assert await b.count_events("link:x", since=0.0) == 0


async def test_two_events_at_the_same_instant_both_count(peers: Peers) -> None:
    a, b = await peers()
    await a.record_event("same", 5.0, keep_for=60.0)
    await b.record_event("same", 5.0, keep_for=60.0)
    assert await a.count_events("same", since=0.0) == 2


async def test_one_read_answers_as_the_separate_calls_would(peers: Peers) -> None:
    a, b = await peers()
    await a.advance("credentials:alice")
    await a.advance("credentials:alice")
    for at in (100.0, 200.0, 250.0):
        await a.record_event("network:x", at, keep_for=300.0)
    await a.record_event("login:x", 250.0, keep_for=300.0)
    reading = await b.read(
        ["credentials:alice", "credentials:bob"], ["network:x", "login:x", "nothing"], 200.0
    )
    assert reading.generations == (2, 0)
    assert reading.event_counts == (1, 1, 0)  # strictly after `since`
    assert (await b.read([], [], 0.0)).generations == ()


async def test_reads_follow_both_sides_changes_and_the_sliding_window(peers: Peers) -> None:
    """Asked again and again, as every request does: never an answer gone stale."""
    a, b = await peers()
    asked = (["credentials:alice"], ["network:x"])
    assert await a.read(*asked, 0.0) == Reading((0,), (0,))
    await b.advance("credentials:alice")
    await b.record_event("network:x", 100.0, keep_for=300.0)
    assert await a.read(*asked, 0.0) == Reading((1,), (1,))
    await a.record_event("network:x", 200.0, keep_for=300.0)
    await a.advance("credentials:alice")
    assert await a.read(*asked, 50.0) == Reading((2,), (2,))
    assert await a.read(*asked, 150.0) == Reading((2,), (1,))  # the window slid past 100
    assert await a.read(*asked, 50.0) == Reading((2,), (2,))  # and back
    await b.forget_events("network:x")
    assert await a.read(*asked, 50.0) == Reading((2,), (0,))
    assert await b.read(*asked, 50.0) == Reading((2,), (0,))


async def test_a_lease_excludes_the_peer_until_released(peers: Peers) -> None:
    a, b = await peers()
    lease = await a.acquire("upload:1", ttl=30.0)
    assert lease is not None
    assert await b.acquire("upload:1", ttl=30.0) is None
    assert await b.is_held("upload:1")
    assert await a.acquire("upload:2", ttl=30.0) is not None  # names are independent
    await a.release(lease)
    assert not await b.is_held("upload:1")
    again = await b.acquire("upload:1", ttl=30.0)
    assert again is not None and again.token != lease.token


async def test_only_the_holder_renews_or_releases(peers: Peers) -> None:
    a, b = await peers()
    lease = await a.acquire("job", ttl=30.0)
    assert lease is not None
    impostor = type(lease)(lease.name, "not-the-token")
    assert not await b.renew(impostor, 30.0)
    await b.release(impostor)
    assert await a.is_held("job")
    assert await a.renew(lease, 30.0)


async def test_a_lease_ends_by_itself_after_its_ttl(peers: Peers) -> None:
    a, b = await peers()
    lease = await a.acquire("short", ttl=0.2)
    assert lease is not None
    deadline = time.monotonic() + 10.0
    taken = None
    while taken is None:  # bounded polling: the lease's end is the event under test
        assert time.monotonic() < deadline, "the lease never expired"
        taken = await b.acquire("short", ttl=30.0)
        if taken is None:
            await asyncio.sleep(0.05)
    assert not await a.renew(lease, 30.0)  # the first holder lost it


async def test_holding_gives_the_lease_to_one_block_at_a_time(peers: Peers) -> None:
    a, b = await peers()
    async with holding(a, "assembly", ttl=30.0) as held:
        assert held
        async with holding(b, "assembly", ttl=30.0) as second:
            assert not second
        assert await b.is_held("assembly")
    assert not await b.is_held("assembly")


async def _collect(messages: AsyncIterator[str], count: int) -> list[str]:
    received = []
    async for message in messages:
        received.append(message)
        if len(received) == count:
            break
    return received


async def test_published_messages_reach_every_subscriber_in_order(peers: Peers) -> None:
    a, b = await peers()
    await a.publish("changes", "before anyone listens")
    async with b.subscribe("changes") as first, a.subscribe("changes") as second:
        for index in range(5):
            await a.publish("changes", f"m{index}")
        await b.publish("other", "elsewhere")
        expected = [f"m{index}" for index in range(5)]
        assert await asyncio.wait_for(_collect(first, 5), 10) == expected
        assert await asyncio.wait_for(_collect(second, 5), 10) == expected


async def test_an_unreachable_redis_fails_at_open_with_unavailable() -> None:
    coordination = RedisCoordination("redis://127.0.0.1:9/0")  # the discard port: refused
    with pytest.raises(Unavailable, match="unreachable"):
        await coordination.open()
