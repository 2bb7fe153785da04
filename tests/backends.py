"""The external back-ends the conformance suites run against, found through the environment.

- `ECRIN_TEST_DATABASE_URL`: a PostgreSQL database whose role may CREATE DATABASE; each test
  gets a database of its own, dropped afterwards.
- `ECRIN_TEST_S3_URL` (`s3://bucket/?endpoint=…&region=…`) with `ECRIN_TEST_S3_ACCESS_KEY_ID`
  and `ECRIN_TEST_S3_SECRET_ACCESS_KEY`: each test works under a prefix of its own, emptied
  afterwards.
- `ECRIN_TEST_REDIS_URL`: a Redis (or Valkey) server; each test uses a key prefix of its own.

`scripts/services/start-postgres.sh` and `start-s3.sh` start both on loopback; `scripts/test`
does so itself when `CI` or `ECRIN_TEST_BACKENDS=1` is set, and then sets
`ECRIN_TEST_REQUIRE_BACKENDS=1`: a back-end that is missing fails its tests instead of
skipping them, so CI cannot pass without them by accident.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

# Tests always name their S3 keys; never let botocore look for an instance profile instead.
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")


def backend_setting(name: str, what: str) -> str:
    """The value of `name`, or skip (fail when back-ends are required) if it is unset."""
    value = os.environ.get(name, "")
    if not value:
        message = f"{what}: set {name} (scripts/services/ starts one on loopback)"
        if os.environ.get("ECRIN_TEST_REQUIRE_BACKENDS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return value


@asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database for one test; yields its URL."""
    import asyncpg

    admin_url = backend_setting("ECRIN_TEST_DATABASE_URL", "PostgreSQL")
    admin_url = admin_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    name = "ecrin_test_" + secrets.token_hex(6)
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        parts = urlsplit(admin_url)
        try:
            yield urlunsplit(parts._replace(path="/" + name))
        finally:
            await _drop_database(admin, name)
    finally:
        await admin.close()


async def _drop_database(admin: Any, name: str) -> None:
    """Drop a test database. An autovacuum worker (another role's session, which FORCE may
    not end) can sit in it for a moment: try a few times, then leave it to the cluster's
    purge rather than fail the test over its clean-up."""
    import asyncpg

    for attempt in range(5):
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except (asyncpg.InsufficientPrivilegeError, asyncpg.ObjectInUseError):
            await asyncio.sleep(0.2 * 2**attempt)


def s3_test_location() -> tuple[str, str, str]:
    """(storage URL under a fresh prefix, access key id, secret key)."""
    url = backend_setting("ECRIN_TEST_S3_URL", "S3")
    parts = urlsplit(url)
    prefix = parts.path.strip("/")
    prefix = (prefix + "/" if prefix else "") + "test-" + secrets.token_hex(6) + "/"
    return (
        urlunsplit(parts._replace(path="/" + prefix)),
        backend_setting("ECRIN_TEST_S3_ACCESS_KEY_ID", "S3 access key"),
        backend_setting("ECRIN_TEST_S3_SECRET_ACCESS_KEY", "S3 secret key"),
    )


async def empty_s3_prefix(url: str, access_key_id: str, secret_access_key: str) -> None:
    """Remove what a test left under its S3 prefix: blobs and unfinished uploads."""
    import time

    from ecrin.storage.s3 import S3BlobStore, S3Location, S3Options

    store = S3BlobStore(S3Location.from_url(url), S3Options(access_key_id, secret_access_key))
    await store.open()
    try:
        await store.clean_temporary(time.time() + 3600)
        async for blob_id in store.list_blobs():
            await store.delete(blob_id)
    finally:
        await store.close()


def redis_test_location() -> tuple[str, str]:
    """(Redis URL, a key prefix of this test's own) for `ECRIN_TEST_REDIS_URL`."""
    url = backend_setting("ECRIN_TEST_REDIS_URL", "Redis")
    return url, "ecrin-test-" + secrets.token_hex(6) + ":"


async def empty_redis_prefix(url: str, prefix: str) -> None:
    """Remove every key a test left under its prefix."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=prefix + "*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()
