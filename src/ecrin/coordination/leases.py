"""Holding a lease for as long as some work takes, renewing it in the background."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from ecrin.coordination.protocol import Coordination, Lease
from ecrin.core.errors import EcrinError

log = logging.getLogger(__name__)


@asynccontextmanager
async def holding(coordination: Coordination, name: str, ttl: float) -> AsyncIterator[bool]:
    """Yield True while this process holds `name` (renewed every ttl/3), False if another does.

    The renewing task belongs to the block: it stops when the block ends, and the lease is
    released then. If the process dies, the lease ends by itself after `ttl` seconds.
    """
    lease = await coordination.acquire(name, ttl)
    if lease is None:
        yield False
        return
    renewing = asyncio.create_task(_renew(coordination, lease, ttl))
    try:
        yield True
    finally:
        renewing.cancel()
        with suppress(asyncio.CancelledError):
            await renewing
        try:
            await coordination.release(lease)
        except EcrinError:
            log.warning("could not release lease %s; it ends in %.0f s", name, ttl)


async def _renew(coordination: Coordination, lease: Lease, ttl: float) -> None:
    while True:
        await asyncio.sleep(ttl / 3)
        try:
            if not await coordination.renew(lease, ttl):
                log.warning("lease %s was lost before its work ended", lease.name)
                return
        except EcrinError:
            log.warning("could not renew lease %s; will try again", lease.name)
