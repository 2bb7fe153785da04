"""How the local store reads large blobs: pieces read ahead in a thread, and for responses,
windows of the file mapped in memory (`read_to_send`)."""

from __future__ import annotations

import asyncio
import errno
import mmap
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ecrin.storage import local
from ecrin.storage.local import LocalBlobStore
from ecrin.storage.protocol import Piece

pytestmark = pytest.mark.skipif(
    local._POPULATE_READ is None, reason="mapped reads need Linux's MADV_POPULATE_READ"
)

WINDOW = 3 * 4096 + 5  # not a multiple of the page: windows start off page boundaries
DATA = os.urandom(10 * WINDOW + 123)


@pytest.fixture
async def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalBlobStore:
    monkeypatch.setattr(local, "MAP_WINDOW", WINDOW)
    monkeypatch.setattr(local, "WHOLE_READ", WINDOW - 1)  # spans longer than this are mapped
    blobs = LocalBlobStore(tmp_path / "blobs", fsync=False)
    await blobs.open()
    return blobs


async def stored(store: LocalBlobStore, data: bytes = DATA) -> str:
    writer = await store.create()
    await writer.write(data)
    return await writer.commit()


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_windows_are_views_of_the_file_in_order(store: LocalBlobStore) -> None:
    blob_id = await stored(store)
    for start, end in [(0, None), (1, len(DATA)), (WINDOW - 1, 3 * WINDOW + 2), (4097, None)]:
        pieces = [piece async for piece in store.read_to_send(blob_id, start, end)]
        assert all(isinstance(piece, memoryview) for piece in pieces)
        assert max(len(piece) for piece in pieces) == WINDOW or len(pieces) == 1
        assert b"".join(pieces) == DATA[start:end], (start, end)


async def test_a_window_stays_readable_after_its_blob_is_deleted(store: LocalBlobStore) -> None:
    blob_id = await stored(store)
    stream = store.read_to_send(blob_id)
    first = await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]
    await store.delete(blob_id)
    assert not await store.exists(blob_id)
    assert bytes(first) == DATA[:WINDOW]


async def test_a_file_shorter_than_asked_ends_the_stream_early(
    store: LocalBlobStore,
) -> None:
    # Never mapped past its end (a SIGBUS on access): the response is cut short instead,
    # as a read that meets the end of the file is.
    blob_id = await stored(store)
    os.truncate(store.path_of(blob_id), 2 * WINDOW + 10)
    sent = b"".join([piece async for piece in store.read_to_send(blob_id, 0, len(DATA))])
    assert sent == DATA[: 2 * WINDOW + 10]


async def test_a_file_system_that_cannot_map_files_has_them_read(
    store: LocalBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cannot_map(*_args: object, **_kwargs: object) -> mmap.mmap:
        raise OSError(errno.ENODEV, "no mmap here")

    blob_id = await stored(store)
    monkeypatch.setattr(mmap, "mmap", cannot_map)
    pieces = [piece async for piece in store.read_to_send(blob_id, 5, None)]
    assert all(isinstance(piece, bytes) for piece in pieces)
    assert b"".join(pieces) == DATA[5:]


async def consume(stream: AsyncIterator[Piece], stop_after: int | None) -> None:
    taken = 0
    async for _ in stream:
        taken += 1
        if taken == stop_after:
            break
    await stream.aclose()  # type: ignore[attr-defined]


@pytest.mark.parametrize("stop_after", [1, 2, None])
async def test_every_descriptor_is_closed(store: LocalBlobStore, stop_after: int | None) -> None:
    # A mapped window holds a descriptor of its own (mmap duplicates it) until it is unmapped,
    # with its last view.
    blob_id = await stored(store)
    before = open_descriptors()
    await consume(store.read(blob_id), stop_after)
    await consume(store.read_to_send(blob_id), stop_after)
    # A window being read in when the reader stopped is let go once its thread is done.
    for _ in range(200):
        if open_descriptors() == before:
            break
        await asyncio.sleep(0.01)
    assert open_descriptors() == before
