"""Shared fixtures: an in-process app (httpx over ASGI) and users to drive it.

In the scale-out profile (tests/profile.py) the app runs on PostgreSQL, S3 and Redis.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from ecrin.app import EcrinApp, create_app
from ecrin.core.clock import ManualClock
from ecrin.settings import Settings
from tests.hsm import SUITE_KEK, softhsm, suite_hsm
from tests.profile import (
    SessionDatabase,
    create_session_database,
    drop_database,
    run_async,
    scaleout_profile,
    scaleout_settings,
)
from tests.support import PASSWORD, Dav


@pytest.fixture(scope="session")
def scaleout_database() -> Iterator[SessionDatabase]:
    """The PostgreSQL database of the scale-out profile's in-process tests."""
    database = run_async(create_session_database)
    try:
        yield database
    finally:
        run_async(lambda: drop_database(database.name))


@pytest.fixture
async def settings(tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    # Cheap password hashing: the tests create many users; production keeps the defaults.
    embedded = Settings(
        data_dir=tmp_path / "data", fsync=False, argon2_time_cost=1, argon2_memory_kib=1024
    )
    if os.environ.get("ECRIN_TEST_ENCRYPTION") == "pkcs11":
        hsm, pin_file = request.getfixturevalue("suite_hsm")
        embedded = dataclasses.replace(
            embedded,
            encryption=True,
            kek_provider="pkcs11",
            pkcs11_module=hsm.module,
            pkcs11_token_label=hsm.token_label,
            pkcs11_pin_file=str(pin_file),
            kek_id=SUITE_KEK,
        )
    if not scaleout_profile():
        return embedded
    shared = await scaleout_settings(request.getfixturevalue("scaleout_database"))
    return dataclasses.replace(embedded, **shared)


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


__all__ = ["softhsm", "suite_hsm"]  # session fixtures for the encryption profile
