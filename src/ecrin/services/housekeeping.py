"""Periodic clean-up, run by the app lifespan: expired chunked uploads, login flows and
trash items past their retention.

Every worker runs it; a lease makes one of them do a round while the others skip it (each
step re-checks what it removes, so overlapping rounds would be safe, only wasteful).
"""

from __future__ import annotations

import asyncio
import logging

from ecrin.coordination.leases import holding
from ecrin.coordination.local import InProcessCoordination
from ecrin.coordination.protocol import Coordination
from ecrin.core.errors import EcrinError
from ecrin.services.container import Services

log = logging.getLogger(__name__)


def interval_for(upload_expiry_seconds: float) -> float:
    """Check a few times per upload lifetime, at least hourly, at most every second."""
    return max(1.0, min(3600.0, upload_expiry_seconds / 4))


LEASE_SECONDS = 300.0  # renewed while a round runs


async def housekeep_once(services: Services, coordination: Coordination | None = None) -> None:
    try:
        async with holding(
            coordination or InProcessCoordination(), "housekeeping", LEASE_SECONDS
        ) as mine:
            if not mine:
                return  # another worker is doing this round
            await services.uploads.expire()
            await services.login_flows.expire()
            await services.trash.expire_all()
    except EcrinError as error:
        log.warning("housekeeping failed, will retry: %s", error.message)


async def run_housekeeping(
    services: Services, interval_seconds: float, coordination: Coordination | None = None
) -> None:
    """Forever, every `interval_seconds` (the lifespan cancels it at shutdown)."""
    while True:
        await asyncio.sleep(interval_seconds)
        await housekeep_once(services, coordination)
