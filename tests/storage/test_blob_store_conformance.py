"""What every BlobStore must do, whatever keeps the bytes (local disk, S3).

Each test runs once per store in `conftest.py`; a new backend joins by adding a parameter.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import time

import pytest

from ecrin.core.errors import StorageError
from ecrin.storage.protocol import BlobStore
from tests.storage.conftest import StoreUnderTest


async def read_all(store: BlobStore, blob_id: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in store.read(blob_id, start, end)])


async def put(store: BlobStore, data: bytes, piece: int = 65_537) -> str:
    writer = await store.create()
    for offset in range(0, len(data), piece):
        await writer.write(data[offset : offset + piece])
    assert writer.size == len(data)
    return await writer.commit()


async def listed(store: BlobStore, older_than: float | None = None) -> set[str]:
    return {blob_id async for blob_id in store.list_blobs(older_than)}


async def test_write_commit_read(store: BlobStore) -> None:
    data = b"hello, " * 1000 + b"world"
    blob_id = await put(store, data, piece=333)
    assert await read_all(store, blob_id) == data
    assert await store.exists(blob_id)
    assert await listed(store) == {blob_id}


async def test_each_commit_gets_a_new_id(store: BlobStore) -> None:
    first, second = await store.create(), await store.create()
    await first.write(b"same")
    await second.write(b"same")
    ids = {await first.commit(), await second.commit()}
    assert len(ids) == 2
    assert await listed(store) == ids


async def test_ranged_reads(subject: StoreUnderTest) -> None:
    store, boundary = subject.store, subject.boundary
    data = os.urandom(2 * boundary + 4321)
    blob_id = await put(store, data, piece=100_003)
    size = len(data)
    ranges = [
        (0, 1),
        (0, size),
        (boundary - 10, boundary + 10),  # across the first internal boundary
        (boundary, 2 * boundary + 1),  # starts on one, ends past the next
        (boundary - 1, None),
        (size - 500, None),
        (size - 1, size),
        (12345, 12345 + 3 * 65536),
    ]
    for start, end in ranges:
        assert await read_all(store, blob_id, start, end) == data[start:end], (start, end)


async def test_pieces_to_send_are_what_read_gives(subject: StoreUnderTest) -> None:
    store, boundary = subject.store, subject.boundary
    data = os.urandom(2 * boundary + 4321)
    blob_id = await put(store, data, piece=100_003)
    for start, end in [(0, None), (boundary - 10, boundary + 10), (boundary + 1, None), (7, 8)]:
        sent = b"".join([bytes(piece) async for piece in store.read_to_send(blob_id, start, end)])
        assert sent == data[start:end], (start, end)
    with pytest.raises(StorageError):
        await anext(store.read_to_send(secrets.token_hex(16), 0, 3 * boundary))


async def test_empty_and_past_the_end_ranges_read_nothing(store: BlobStore) -> None:
    blob_id = await put(store, b"0123456789")
    assert await read_all(store, blob_id, 4, 4) == b""
    assert await read_all(store, blob_id, 10, None) == b""
    assert await read_all(store, blob_id, 50, None) == b""
    assert await read_all(store, blob_id, 8, 50) == b"89"


async def test_zero_byte_blob(store: BlobStore) -> None:
    writer = await store.create()
    blob_id = await writer.commit()
    assert writer.size == 0
    assert await store.exists(blob_id)
    assert await read_all(store, blob_id) == b""
    assert await listed(store) == {blob_id}


@pytest.mark.parametrize("parts", [0, 2])
async def test_abort_leaves_nothing(subject: StoreUnderTest, parts: int) -> None:
    store = subject.store
    writer = await store.create()
    await writer.write(os.urandom(parts * subject.boundary + 1000))
    await writer.abort()
    await writer.abort()  # a second abort is harmless
    assert await listed(store) == set()
    assert await store.clean_temporary(time.time() + 3600) == []


async def test_a_write_cancelled_midway_then_aborted_leaves_nothing(
    subject: StoreUnderTest,
) -> None:
    """A client that disconnects mid-upload cancels the request while a write is under way."""
    store = subject.store
    piece = os.urandom(subject.boundary + 1000)
    writer = await store.create()
    await writer.write(piece)
    interrupted = asyncio.create_task(writer.write(piece))
    await asyncio.sleep(0)  # the second write starts, then the request is cancelled
    interrupted.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await interrupted
    await writer.abort()
    assert await listed(store) == set()
    assert await store.clean_temporary(time.time() + 3600) == []
    assert await read_all(store, await put(store, piece)) == piece  # the store still works


async def test_delete_is_idempotent(store: BlobStore) -> None:
    blob_id = await put(store, b"bytes")
    await store.delete(blob_id)
    assert not await store.exists(blob_id)
    await store.delete(blob_id)
    await store.delete(secrets.token_hex(16))
    assert await listed(store) == set()


async def test_list_blobs_by_age(store: BlobStore) -> None:
    ids = {await put(store, str(n).encode()) for n in range(3)}
    assert await listed(store) == ids
    assert await listed(store, older_than=time.time() + 60) == ids
    assert await listed(store, older_than=time.time() - 3600) == set()


async def test_clean_temporary_removes_only_stale_unfinished_writes(
    subject: StoreUnderTest,
) -> None:
    store = subject.store
    data = os.urandom(subject.boundary + 1000)
    kept = await put(store, b"committed")
    in_flight = await store.create()
    await in_flight.write(data)

    assert await store.clean_temporary(time.time() - 3600) == []  # too young to be stale
    await in_flight.write(b"more")
    finished = await in_flight.commit()
    assert await read_all(store, finished) == data + b"more"

    crashed = await store.create()
    await crashed.write(data)
    await crashed.write(data)  # the first batch is on disk now; as if the process died here
    removed = await store.clean_temporary(time.time() + 3600)
    assert len(removed) == 1
    assert await store.clean_temporary(time.time() + 3600) == []
    await crashed.abort()  # the writer's owner notices later: still harmless
    assert await listed(store) == {kept, finished}


async def test_large_blob_streamed_in_many_writes(subject: StoreUnderTest) -> None:
    store = subject.store
    piece = os.urandom(64 * 1024)
    count = (3 * subject.boundary + 12345) // len(piece) + 1
    writer = await store.create()
    digest = hashlib.sha256()
    for n in range(count):
        chunk = piece[n % 7 :] + piece[: n % 7]
        digest.update(chunk)
        await writer.write(chunk)
    blob_id = await writer.commit()
    assert writer.size == count * len(piece)

    read_back, total = hashlib.sha256(), 0
    async for chunk in store.read(blob_id):
        read_back.update(chunk)
        total += len(chunk)
    assert total == count * len(piece)
    assert read_back.hexdigest() == digest.hexdigest()


async def test_missing_blob_is_a_storage_error(store: BlobStore) -> None:
    missing = secrets.token_hex(16)
    assert not await store.exists(missing)
    with pytest.raises(StorageError):
        await read_all(store, missing)
    with pytest.raises(StorageError):
        await read_all(store, missing, 10, 20)


async def test_reader_may_stop_early(store: BlobStore) -> None:
    blob_id = await put(store, os.urandom(3 * 1024 * 1024))
    stream = store.read(blob_id)
    first = await anext(stream)
    assert first
    await stream.aclose()  # type: ignore[attr-defined]
    assert await store.exists(blob_id)
