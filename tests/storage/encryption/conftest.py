"""Encrypted stores over a local disk, with a key file or a SoftHSM2 token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ecrin.storage.encryption.key_file import KeyFile
from ecrin.storage.encryption.records import LocalKeyRecords
from ecrin.storage.encryption.store import EncryptedBlobStore
from ecrin.storage.local import LocalBlobStore
from tests.hsm import SoftHsm, softhsm

SEGMENT = 1024  # small segments, so tests cross many boundaries with little data


def make_store(root: Path, *, segment_size: int = SEGMENT, kek_id: str = "") -> EncryptedBlobStore:
    return EncryptedBlobStore(
        LocalBlobStore(root / "blobs", fsync=False),
        LocalKeyRecords(root / "blobs" / "key-records", fsync=False),
        KeyFile(root / "encryption.keys", fsync=False),
        kek_id=kek_id,
        segment_size=segment_size,
    )


def data_dir_store(data_dir: Path) -> EncryptedBlobStore:
    """The layout the app uses: blobs/, blobs/key-records/, encryption.keys."""
    return EncryptedBlobStore(
        LocalBlobStore(data_dir / "blobs", fsync=False),
        LocalKeyRecords(data_dir / "blobs" / "key-records", fsync=False),
        KeyFile(data_dir / "encryption.keys", fsync=False),
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[EncryptedBlobStore]:
    encrypted = make_store(tmp_path)
    await encrypted.open()
    try:
        yield encrypted
    finally:
        await encrypted.close()


async def put(
    store: EncryptedBlobStore, data: bytes, *, step: int = 777, kek_id: str | None = None
) -> str:
    writer = await store.create(kek_id=kek_id)
    for i in range(0, len(data), step):
        await writer.write(data[i : i + step])
    assert writer.size == len(data)
    return await writer.commit()


async def get(
    store: EncryptedBlobStore, blob_id: str, start: int = 0, end: int | None = None
) -> bytes:
    return b"".join([chunk async for chunk in store.read(blob_id, start, end)])


def body_path(store: EncryptedBlobStore, blob_id: str) -> Path:
    inner = store.inner
    assert isinstance(inner, LocalBlobStore)
    return inner.path_of(blob_id)


def record_path(store: EncryptedBlobStore, blob_id: str) -> Path:
    records = store.records
    assert isinstance(records, LocalKeyRecords)
    return records.path_of(blob_id)


__all__ = ["SoftHsm", "softhsm"]  # the session fixture, shared with the whole suite
