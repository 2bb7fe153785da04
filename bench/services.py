"""PostgreSQL, S3 and Redis for the scale-out Ecrin: found through the environment, never started.

The benchmark does not start long-lived services by itself. It reads the variables that
`scripts/services/start-test-backends.sh` prints, the same ones the test suite reads
(tests/backends.py):

- `ECRIN_TEST_DATABASE_URL`: a PostgreSQL database whose role may CREATE DATABASE;
- `ECRIN_TEST_S3_URL` (`s3://bucket/?endpoint=…&region=…`), `ECRIN_TEST_S3_ACCESS_KEY_ID`
  and `ECRIN_TEST_S3_SECRET_ACCESS_KEY`: a bucket to work in;
- `ECRIN_TEST_REDIS_URL`: a Redis (or Valkey) server.

Each instance the benchmark prepares gets a database of its own (CREATE DATABASE with a random
name), an S3 key prefix of its own under the bucket and a Redis key prefix of its own;
`release()` drops the database and deletes what is left under both prefixes.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import secrets
import socket
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

DATABASE_VARIABLE = "ECRIN_TEST_DATABASE_URL"
S3_VARIABLES = (
    "ECRIN_TEST_S3_URL",
    "ECRIN_TEST_S3_ACCESS_KEY_ID",
    "ECRIN_TEST_S3_SECRET_ACCESS_KEY",
)
REDIS_VARIABLE = "ECRIN_TEST_REDIS_URL"
VARIABLES = (DATABASE_VARIABLE, *S3_VARIABLES, REDIS_VARIABLE)
# The Python clients Ecrin needs for them, and the extra that installs each.
CLIENTS = {"asyncpg": "postgresql", "aiobotocore": "s3", "redis": "redis"}
DATABASE_PREFIX = "ecrin_bench_"
S3_PREFIX = "bench-"
REDIS_PREFIX = "ecrin-bench-"
HOW_TO_START = (
    "start them with scripts/services/start-test-backends.sh and export what it prints "
    "(docs/benchmarks.md)"
)


@dataclass(frozen=True)
class Services:
    """Where the shared services are, as the environment names them."""

    admin_database_url: str  # postgresql://…, a role with CREATEDB
    s3_url: str  # s3://bucket/[prefix/]?endpoint=…
    s3_access_key_id: str
    s3_secret_access_key: str
    redis_url: str

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Services:
        admin, s3_url, key_id, secret, redis_url = (environ[name] for name in VARIABLES)
        return cls(
            admin.replace("postgresql+asyncpg://", "postgresql://", 1),
            s3_url,
            key_id,
            secret,
            redis_url,
        )

    def endpoints(self) -> list[tuple[str, str, int]]:
        """(what, host, port) of each service, for a reachability check."""
        database = urlsplit(self.admin_database_url)
        endpoint = parse_qs(urlsplit(self.s3_url).query).get("endpoint", [""])[-1]
        s3 = urlsplit(endpoint or "https://s3.amazonaws.com")
        redis = urlsplit(self.redis_url)
        return [
            ("PostgreSQL", database.hostname or "localhost", database.port or 5432),
            ("S3", s3.hostname or "localhost", s3.port or (443 if s3.scheme == "https" else 80)),
            ("Redis", redis.hostname or "localhost", redis.port or 6379),
        ]


def missing_services(environ: Mapping[str, str] = os.environ) -> str | None:
    """Why the scale-out services cannot be used from here, or None if they can."""
    unset = [name for name in VARIABLES if not environ.get(name)]
    if unset:
        return f"its services are not set ({', '.join(unset)}): {HOW_TO_START}"
    absent = [module for module in CLIENTS if importlib.util.find_spec(module) is None]
    if absent:
        extras = ",".join(CLIENTS[module] for module in absent)
        return f"{', '.join(absent)} not installed (pip install -e '.[{extras}]')"
    for what, host, port in Services.from_environment(environ).endpoints():
        try:
            with socket.create_connection((host, port), timeout=2.0):
                pass
        except OSError as error:
            return f"{what} at {host}:{port} does not answer ({error}): {HOW_TO_START}"
    return None


@dataclass(frozen=True)
class Instance:
    """The database and the prefixes of one benchmark instance."""

    database_name: str
    database_url: str
    storage_url: str
    redis_key_prefix: str

    def environment(self, services: Services) -> dict[str, str]:
        """The ECRIN_* settings every process of the instance (and the CLI) runs with."""
        return {
            "ECRIN_DATABASE_URL": self.database_url,
            "ECRIN_STORAGE_URL": self.storage_url,
            "ECRIN_S3_ACCESS_KEY_ID": services.s3_access_key_id,
            "ECRIN_S3_SECRET_ACCESS_KEY": services.s3_secret_access_key,
            "ECRIN_REDIS_URL": services.redis_url,
            "ECRIN_REDIS_KEY_PREFIX": self.redis_key_prefix,
        }

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def _with_path(url: str, path: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=path))


async def create_instance(services: Services) -> Instance:
    """CREATE DATABASE with a random name; pick fresh S3 and Redis prefixes."""
    import asyncpg

    token = secrets.token_hex(6)
    name = DATABASE_PREFIX + token
    admin = await asyncpg.connect(services.admin_database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = urlsplit(services.s3_url).path.strip("/")
    prefix = (base + "/" if base else "") + S3_PREFIX + token + "/"
    return Instance(
        database_name=name,
        database_url=_with_path(services.admin_database_url, "/" + name),
        storage_url=_with_path(services.s3_url, "/" + prefix),
        redis_key_prefix=REDIS_PREFIX + token + ":",
    )


async def release_instance(services: Services, instance: Instance) -> None:
    """Drop the database; delete every object and key under the instance's prefixes."""
    await _drop_database(services.admin_database_url, instance.database_name)
    await _empty_s3_prefix(services, instance.storage_url)
    await _empty_redis_prefix(services.redis_url, instance.redis_key_prefix)


async def _drop_database(admin_url: str, name: str) -> None:
    """DROP … WITH (FORCE) ends the sessions left in it. An autovacuum worker (another role's
    session, which FORCE may not end) can sit in it for a moment: try a few times."""
    import asyncpg

    admin = await asyncpg.connect(admin_url)
    try:
        for attempt in range(6):
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                return
            except (asyncpg.InsufficientPrivilegeError, asyncpg.ObjectInUseError):
                if attempt == 5:
                    raise
                await asyncio.sleep(0.2 * 2**attempt)
    finally:
        await admin.close()


async def _empty_s3_prefix(services: Services, storage_url: str) -> None:
    """Abort unfinished uploads, then delete the objects under the prefix, 1,000 a request."""
    import time

    from ecrin.storage.s3 import S3BlobStore, S3Location, S3Options

    location = S3Location.from_url(storage_url)
    if not location.prefix:
        raise ValueError(f"refusing to empty a whole bucket: {storage_url}")
    store = S3BlobStore(
        location, S3Options(services.s3_access_key_id, services.s3_secret_access_key)
    )
    await store.open()
    try:
        await store.clean_temporary(time.time() + 3600)
        client: Any = store.client
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=location.bucket, Prefix=location.prefix
        )
        async for page in pages:
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                await client.delete_objects(
                    Bucket=location.bucket, Delete={"Objects": keys, "Quiet": True}
                )
    finally:
        await store.close()


async def _empty_redis_prefix(url: str, prefix: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=prefix + "*", count=1000)]
        for start in range(0, len(keys), 1000):
            await client.delete(*keys[start : start + 1000])
    finally:
        await client.aclose()


async def versions(services: Services) -> dict[str, str]:
    """The PostgreSQL and Redis server versions, for the report ('' when unknown)."""
    import asyncpg
    import redis.asyncio as aioredis

    found = {"postgresql": "", "redis": ""}
    try:
        connection = await asyncpg.connect(services.admin_database_url, timeout=5)
        try:
            found["postgresql"] = str(await connection.fetchval("SHOW server_version"))
        finally:
            await connection.close()
    except (OSError, asyncpg.PostgresError):
        pass
    client = aioredis.Redis.from_url(services.redis_url, socket_timeout=5)
    try:
        found["redis"] = str((await client.info("server")).get("redis_version", ""))
    except (OSError, aioredis.RedisError):
        pass
    finally:
        await client.aclose()
    return found
