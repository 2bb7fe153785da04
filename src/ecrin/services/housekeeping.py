"""Periodic clean-up, run by the app lifespan: expired chunked uploads, login flows and
trash items past their retention."""

from __future__ import annotations

import asyncio
import logging

from ecrin.core.errors import EcrinError
from ecrin.services.container import Services

log = logging.getLogger(__name__)


def interval_for(upload_expiry_seconds: float) -> float:
    """Check a few times per upload lifetime, at least hourly, at most every second."""
    return max(1.0, min(3600.0, upload_expiry_seconds / 4))


async def housekeep_once(services: Services) -> None:
    try:
        await services.uploads.expire()
        await services.login_flows.expire()
        await services.trash.expire_all()
    except EcrinError as error:
        log.warning("housekeeping failed, will retry: %s", error.message)


async def run_housekeeping(services: Services, interval_seconds: float) -> None:
    """Forever, every `interval_seconds` (the lifespan cancels it at shutdown)."""
    while True:
        await asyncio.sleep(interval_seconds)
        await housekeep_once(services)
