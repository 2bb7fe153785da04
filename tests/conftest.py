"""Shared fixtures: an in-process app (httpx over ASGI) and users to drive it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from ecrin.app import EcrinApp, create_app
from ecrin.core.clock import ManualClock
from ecrin.settings import Settings
from tests.support import PASSWORD, Dav


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Cheap password hashing: the tests create many users; production keeps the defaults.
    return Settings(
        data_dir=tmp_path / "data", fsync=False, argon2_time_cost=1, argon2_memory_kib=1024
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def app(settings: Settings, clock: ManualClock) -> AsyncIterator[EcrinApp]:
    application = create_app(settings, clock)
    await application.runtime.open()
    try:
        yield application
    finally:
        await application.runtime.close()


@pytest.fixture
async def client(app: EcrinApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def alice(app: EcrinApp, client: httpx.AsyncClient) -> Dav:
    await app.runtime.services.accounts.create_user("alice", PASSWORD)
    return Dav(client, "alice", PASSWORD)


@pytest.fixture
async def bob(app: EcrinApp, client: httpx.AsyncClient) -> Dav:
    await app.runtime.services.accounts.create_user("bob", PASSWORD)
    return Dav(client, "bob", PASSWORD)
