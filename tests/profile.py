"""The test profile: `ECRIN_TEST_PROFILE=embedded` (the default) or `scaleout`.

- embedded: what one process needs: SQLite in the data folder, blobs on the local disk,
  coordination inside the process. Every in-process app and every e2e server runs so.
- scaleout: what a multi-worker deployment runs on. The in-process `settings` fixture
  (tests/conftest.py) gives each test a PostgreSQL database migrated once per session and
  emptied before every test, a fresh S3 prefix and a Redis key prefix of its own; the e2e
  servers are 2 workers behind nginx on a database of their own (tests/e2e/scaleout.py).
  The services are found through tests/backends.py's variables.

`scripts/test` runs the suite in both profiles in CI (`ECRIN_TEST_PROFILES`).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

PROFILE_VARIABLE = "ECRIN_TEST_PROFILE"

T = TypeVar("T")


def scaleout_profile() -> bool:
    profile = os.environ.get(PROFILE_VARIABLE, "embedded")
    if profile not in ("embedded", "scaleout"):
        raise ValueError(f"{PROFILE_VARIABLE} is embedded or scaleout, not {profile!r}")
    return profile == "scaleout"


def run_async(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from synchronous code (in a thread of its own, so it
    works whether or not the caller runs an event loop)."""
    results: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            results.append(asyncio.run(factory()))
        except BaseException as error:  # re-raised in the calling thread
            errors.append(error)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return results[0]


def _admin_url() -> str:
    from tests.backends import backend_setting

    url = backend_setting("ECRIN_TEST_DATABASE_URL", "PostgreSQL")
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _database_url(name: str) -> str:
    return urlunsplit(urlsplit(_admin_url())._replace(path="/" + name))


@dataclass(frozen=True)
class SessionDatabase:
    """The PostgreSQL database the in-process tests of one session share, one at a time."""

    name: str
    emptied: tuple[str, ...]  # the tables a test may fill (the others hold schema data)

    @property
    def url(self) -> str:
        return _database_url(self.name)


async def create_session_database() -> SessionDatabase:
    """A database at the current schema (migrated once; a fresh one per test would cost
    0.3 s in CREATE DATABASE alone, emptying its tables costs 0.05 s)."""
    import asyncpg

    from ecrin.db.sql import SqlMetadataStore

    name = "ecrin_session_" + secrets.token_hex(6)
    admin = await asyncpg.connect(_admin_url())
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    store = SqlMetadataStore(_database_url(name), durable=False, pool_size=1)
    try:
        await store.open()  # runs the migrations
    finally:
        await store.close()
    connection = await asyncpg.connect(_database_url(name))
    try:
        tables = [
            row["tablename"]
            for row in await connection.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            )
        ]
        emptied = []
        for table in tables:
            if not await connection.fetchval(f'SELECT EXISTS (SELECT 1 FROM "{table}")'):
                emptied.append(table)
    finally:
        await connection.close()
    return SessionDatabase(name, tuple(emptied))


async def drop_database(name: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(_admin_url())
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def empty_session_database(database: SessionDatabase) -> None:
    """Back to the state right after the migrations (ids start at 1 again)."""
    import asyncpg

    connection = await asyncpg.connect(database.url)
    try:
        await connection.execute("SET lock_timeout = '20s'")  # an app a test left open
        names = ", ".join(f'"{table}"' for table in database.emptied)
        await connection.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    finally:
        await connection.close()


async def scaleout_settings(database: SessionDatabase) -> dict[str, Any]:
    """Settings for one test's app: the session's database, emptied, and an S3 prefix and
    a Redis key prefix of its own (what they hold is left to the services' purge: emptying
    them would double the cost of a short test)."""
    from tests.backends import redis_test_location, s3_test_location

    storage_url, key_id, secret = s3_test_location()
    redis_url, redis_prefix = redis_test_location()
    await empty_session_database(database)
    return {
        "database_url": database.url,
        "database_pool_size": 4,
        "storage_url": storage_url,
        "s3_access_key_id": key_id,
        "s3_secret_access_key": secret,
        "s3_part_size": 5 * 1024 * 1024,
        "redis_url": redis_url,
        "redis_key_prefix": redis_prefix,
    }
