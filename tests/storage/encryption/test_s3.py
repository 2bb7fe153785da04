"""Encryption over S3: bodies and key records both in the bucket, nothing readable there."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ecrin.core.errors import StorageError
from ecrin.settings import Settings
from ecrin.storage.encryption.factory import encrypt_blob_store
from ecrin.storage.encryption.records import ObjectKeyRecords
from ecrin.storage.encryption.rotation import census, rotate
from ecrin.storage.encryption.store import EncryptedBlobStore
from tests.backends import s3_test_location
from tests.storage.encryption.conftest import get, put

MARKER = b"ECRIN-S3-MARKER-51e2-never-in-the-bucket"


@pytest.fixture
async def s3_store(tmp_path: Path) -> AsyncIterator[EncryptedBlobStore]:
    from ecrin.storage.factory import blob_store_from_url
    from ecrin.storage.s3 import S3BlobStore

    url, key_id, secret = s3_test_location()
    settings = Settings(
        data_dir=tmp_path,
        storage_url=url,
        s3_access_key_id=key_id,
        s3_secret_access_key=secret,
        encryption=True,
        fsync=False,
    )
    store = encrypt_blob_store(blob_store_from_url(url, settings=settings), settings)
    await store.open()
    try:
        yield store
    finally:
        inner, records = store.inner, store.records
        assert isinstance(inner, S3BlobStore) and isinstance(records, ObjectKeyRecords)
        async for blob_id in inner.list_blobs():
            await inner.delete(blob_id)
        async for blob_id in records.list_ids():
            await records.delete(blob_id)
        await store.close()


async def raw_objects(store: EncryptedBlobStore) -> list[bytes]:
    assert isinstance(store.records, ObjectKeyRecords)
    found = []
    for objects in (store.inner, store.records.objects):
        async for blob_id in objects.list_blobs():
            found.append(b"".join([c async for c in objects.read(blob_id)]))
    return found


async def test_s3_round_trip_ranges_rotation_and_no_marker_in_the_bucket(
    s3_store: EncryptedBlobStore,
) -> None:
    contents = {}
    for size in (0, 10, 64 * 1024, 200_000):
        data = (MARKER + os.urandom(size))[: max(size, len(MARKER))]
        contents[await put(s3_store, data, step=50_000)] = data
    for blob_id, data in contents.items():
        assert await get(s3_store, blob_id) == data
        assert await get(s3_store, blob_id, 5, 70_000) == data[5:70_000]
    raw = await raw_objects(s3_store)
    assert len(raw) == 2 * len(contents)  # a body and a key record each
    assert not any(MARKER in item or MARKER[:12] in item for item in raw)

    old = s3_store.kek_id
    await s3_store.keks.create("kek-s3-next")
    report = await rotate(s3_store, "kek-s3-next")
    assert report.rewrapped == len(contents) and not report.failed
    assert (await census(s3_store)).by_kek == {"kek-s3-next": len(contents)}
    await s3_store.keks.destroy(old)
    for blob_id, data in contents.items():
        assert await get(s3_store, blob_id) == data


async def test_s3_swapped_records_and_deleted_blobs(s3_store: EncryptedBlobStore) -> None:
    one = await put(s3_store, b"first" * 100)
    two = await put(s3_store, b"second" * 100)
    record_one = await s3_store.records.get(one)
    record_two = await s3_store.records.get(two)
    assert record_one is not None and record_two is not None
    await s3_store.records.put_many([(one, record_two), (two, record_one)])
    for blob_id in (one, two):
        with pytest.raises(StorageError):
            await get(s3_store, blob_id)
    await s3_store.delete(one)
    assert await s3_store.records.get(one) is None
    assert not await s3_store.exists(one)
