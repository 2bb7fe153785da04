"""The whole app, in process, on each pair of back-ends: SQLite with local disk, and
PostgreSQL with S3 (when reachable, see tests/backends.py). Same requests, same answers."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ecrin.app import EcrinApp
from ecrin.settings import Settings
from tests.backends import empty_s3_prefix, postgres_database, s3_test_location
from tests.support import Dav


@pytest.fixture(params=["sqlite+local", "postgresql+s3"])
async def settings(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Settings]:
    local = Settings(data_dir=tmp_path / "data", fsync=False)
    if request.param == "sqlite+local":
        yield local
        return
    storage_url, key_id, secret = s3_test_location()
    async with postgres_database() as database_url:
        try:
            yield Settings(
                data_dir=tmp_path / "data",
                fsync=False,
                database_url=database_url,
                storage_url=storage_url,
                s3_access_key_id=key_id,
                s3_secret_access_key=secret,
                s3_part_size=5 * 1024 * 1024,
                database_pool_size=4,
            )
        finally:
            await empty_s3_prefix(storage_url, key_id, secret)


async def test_files_round_trip(app: EcrinApp, alice: Dav) -> None:
    large = os.urandom(12 * 1024 * 1024 + 17)  # three S3 parts
    await alice.mkcol("/docs")
    await alice.put("/docs/large.bin", large, status=201)
    await alice.put("/docs/small.txt", b"small", status=201)
    await alice.put("/docs/small.txt", b"smaller", status=204)

    assert (await alice.get("/docs/large.bin")).content == large
    ranged = await alice.get("/docs/large.bin", status=206, Range="bytes=5242870-5242890")
    assert ranged.content == large[5242870:5242891]

    await alice.copy("/docs", "/copy", status=201)
    await alice.move("/copy/small.txt", "/moved.txt", status=201)
    assert (await alice.get("/moved.txt")).content == b"smaller"
    await alice.delete("/docs", status=204)
    assert (await alice.get("/copy/large.bin")).content == large
    await alice.get("/docs/large.bin", status=404)

    report = await app.runtime.services.consistency.check(verify_checksums=True, grace_seconds=0)
    assert report.clean, report
