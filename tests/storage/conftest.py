"""Every blob store the conformance suite runs against: local disk, and S3 when reachable,
each also wrapped in the encryption layer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from ecrin.storage import local
from ecrin.storage.encryption.key_file import KeyFile
from ecrin.storage.encryption.records import LocalKeyRecords
from ecrin.storage.encryption.store import EncryptedBlobStore
from ecrin.storage.protocol import BlobStore
from tests.backends import empty_s3_prefix, s3_test_location


@dataclass
class StoreUnderTest:
    store: BlobStore
    boundary: int  # where the store splits a blob internally (read chunk, S3 part)


def _inner_store(
    kind: str, tmp_path: Path
) -> tuple[BlobStore, int, Callable[[], Awaitable[None]] | None]:
    """(an unopened store, its internal boundary, what cleans up after it)."""
    if kind == "local":
        # fsync on, as in production: the conformance suite covers the durable write path.
        return local.LocalBlobStore(tmp_path / "blobs", fsync=True), local.READ_CHUNK, None

    from ecrin.storage.s3 import MIN_PART_SIZE, S3BlobStore, S3Location, S3Options

    url, key_id, secret = s3_test_location()
    s3 = S3BlobStore(
        S3Location.from_url(url),
        S3Options(access_key_id=key_id, secret_access_key=secret, part_size=MIN_PART_SIZE),
    )
    return s3, MIN_PART_SIZE, lambda: empty_s3_prefix(url, key_id, secret)


@pytest.fixture(params=["local", "s3", "encrypted-local", "encrypted-s3"])
async def subject(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreUnderTest]:
    kind = str(request.param)
    inner, boundary, cleanup = _inner_store(kind.removeprefix("encrypted-"), tmp_path)
    store: BlobStore = inner
    if kind.startswith("encrypted-"):
        store = EncryptedBlobStore(
            inner,
            LocalKeyRecords(tmp_path / "key-records", fsync=False),
            KeyFile(tmp_path / "encryption.keys", fsync=False),
        )
    await store.open()
    try:
        yield StoreUnderTest(store, boundary)
    finally:
        await store.close()
        if cleanup is not None:
            await cleanup()


@pytest.fixture
def store(subject: StoreUnderTest) -> BlobStore:
    return subject.store
