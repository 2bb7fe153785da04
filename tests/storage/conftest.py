"""Every blob store the conformance suite runs against: local disk, and S3 when reachable."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ecrin.storage import local
from ecrin.storage.protocol import BlobStore
from tests.backends import empty_s3_prefix, s3_test_location


@dataclass
class StoreUnderTest:
    store: BlobStore
    boundary: int  # where the store splits a blob internally (read chunk, S3 part)


@pytest.fixture(params=["local", "s3"])
async def subject(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreUnderTest]:
    if request.param == "local":
        store: BlobStore = local.LocalBlobStore(tmp_path / "blobs", fsync=False)
        await store.open()
        try:
            yield StoreUnderTest(store, local.READ_CHUNK)
        finally:
            await store.close()
        return

    from ecrin.storage.s3 import MIN_PART_SIZE, S3BlobStore, S3Location, S3Options

    url, key_id, secret = s3_test_location()
    s3 = S3BlobStore(
        S3Location.from_url(url),
        S3Options(access_key_id=key_id, secret_access_key=secret, part_size=MIN_PART_SIZE),
    )
    await s3.open()
    try:
        yield StoreUnderTest(s3, MIN_PART_SIZE)
    finally:
        await s3.close()
        await empty_s3_prefix(url, key_id, secret)


@pytest.fixture
def store(subject: StoreUnderTest) -> BlobStore:
    return subject.store
