"""Coordination inside one process: the embedded profile (`redis_url` empty)."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

from ecrin.coordination.protocol import Lease, Reading

log = logging.getLogger(__name__)

MAX_EVENT_KEYS = 100_000  # beyond this the windows are forgotten (memory bound)
SUBSCRIBER_BACKLOG = 10_000  # messages a slow subscriber may fall behind before losing some


class InProcessCoordination:
    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._generations: dict[str, int] = {}
        self._events: dict[str, list[float]] = {}
        self._leases: dict[str, tuple[str, float]] = {}
        self._subscribers: defaultdict[str, set[asyncio.Queue[str]]] = defaultdict(set)

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def generation(self, name: str) -> int:
        return self._generations.get(name, 0)

    async def advance(self, name: str) -> int:
        value = self._generations.get(name, 0) + 1
        self._generations[name] = value
        return value

    async def count_events(self, key: str, since: float) -> int:
        return self._count(key, since)

    def _count(self, key: str, since: float) -> int:
        return sum(1 for at in self._events.get(key, ()) if at > since)

    async def record_event(self, key: str, at: float, keep_for: float) -> None:
        if key not in self._events and len(self._events) >= MAX_EVENT_KEYS:
            self._events.clear()
        kept = [t for t in self._events.get(key, ()) if t > at - keep_for]
        kept.append(at)
        self._events[key] = kept

    async def forget_events(self, key: str) -> None:
        self._events.pop(key, None)

    async def read(
        self, generations: Sequence[str], events: Sequence[str], since: float
    ) -> Reading:
        # Before every request's credentials: plain look-ups, no coroutine each.
        return Reading(
            tuple([self._generations.get(name, 0) for name in generations]),
            tuple([self._count(key, since) for key in events]),
        )

    async def acquire(self, name: str, ttl: float) -> Lease | None:
        now = self._monotonic()
        held = self._leases.get(name)
        if held is not None and held[1] > now:
            return None
        lease = Lease(name, secrets.token_hex(16))
        self._leases[name] = (lease.token, now + ttl)
        return lease

    async def renew(self, lease: Lease, ttl: float) -> bool:
        now = self._monotonic()
        held = self._leases.get(lease.name)
        if held is None or held[0] != lease.token or held[1] <= now:
            return False
        self._leases[lease.name] = (lease.token, now + ttl)
        return True

    async def release(self, lease: Lease) -> None:
        held = self._leases.get(lease.name)
        if held is not None and held[0] == lease.token:
            del self._leases[lease.name]

    async def is_held(self, name: str) -> bool:
        held = self._leases.get(name)
        return held is not None and held[1] > self._monotonic()

    async def publish(self, channel: str, message: str) -> None:
        for queue in self._subscribers.get(channel, ()):
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                log.warning("a subscriber of %s fell behind; a message was dropped", channel)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[str]]:
        queue: asyncio.Queue[str] = asyncio.Queue(SUBSCRIBER_BACKLOG)
        self._subscribers[channel].add(queue)
        try:
            yield _drain(queue)
        finally:
            self._subscribers[channel].discard(queue)
            if not self._subscribers[channel]:
                del self._subscribers[channel]


async def _drain(queue: asyncio.Queue[str]) -> AsyncIterator[str]:
    while True:
        yield await queue.get()
