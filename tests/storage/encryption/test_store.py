"""EncryptedBlobStore: round trips, ranges across segments, and every tampering refused."""

from __future__ import annotations

import logging
import os
import random
import stat
import tracemalloc
from pathlib import Path

import pytest

from ecrin.core.errors import KeyUnavailable, StorageError
from ecrin.storage.encryption.format import PROLOGUE_SIZE, TAG_SIZE, decode_record
from ecrin.storage.encryption.store import EncryptedBlobStore
from tests.storage.encryption.conftest import SEGMENT, body_path, get, make_store, put, record_path

SIZES = [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 2 * SEGMENT, 3 * SEGMENT + 17]


@pytest.mark.parametrize("size", SIZES)
async def test_round_trip_and_sizes(store: EncryptedBlobStore, size: int) -> None:
    data = os.urandom(size)
    blob_id = await put(store, data)
    assert await get(store, blob_id) == data
    segments = max(1, -(-size // SEGMENT))
    assert body_path(store, blob_id).stat().st_size == PROLOGUE_SIZE + size + segments * TAG_SIZE
    record = decode_record(record_path(store, blob_id).read_bytes(), blob_id)
    assert record.plaintext_size == size
    assert record.kek_id == store.kek_id


async def test_ranges_across_segment_boundaries(store: EncryptedBlobStore) -> None:
    data = os.urandom(5 * SEGMENT + 300)
    blob_id = await put(store, data, step=SEGMENT)
    edges = sorted(
        {0, 1, len(data) - 1, len(data)}
        | {k * SEGMENT + d for k in range(1, 6) for d in (-1, 0, 1)}
    )
    for start in edges:
        for end in edges:
            if end > start:
                assert await get(store, blob_id, start, end) == data[start:end], (start, end)
    assert await get(store, blob_id, 10, None) == data[10:]
    assert await get(store, blob_id, 0, len(data) + 100) == data


async def test_a_range_reads_only_the_segments_it_needs(store: EncryptedBlobStore) -> None:
    data = os.urandom(10 * SEGMENT)
    blob_id = await put(store, data)
    path = body_path(store, blob_id)
    raw = bytearray(path.read_bytes())
    raw[PROLOGUE_SIZE + 0] ^= 1  # corrupt segment 0 only
    path.write_bytes(bytes(raw))
    assert (
        await get(store, blob_id, 5 * SEGMENT + 3, 7 * SEGMENT - 2)
        == data[5 * SEGMENT + 3 : 7 * SEGMENT - 2]
    )
    with pytest.raises(StorageError):
        await get(store, blob_id, 0, 10)


async def test_memory_stays_flat_while_streaming(tmp_path: Path) -> None:
    big = make_store(tmp_path, segment_size=64 * 1024)
    await big.open()
    chunk = os.urandom(1024 * 1024)
    tracemalloc.start()
    try:
        writer = await big.create()
        for _ in range(24):
            await writer.write(chunk)
        blob_id = await writer.commit()
        total = 0
        async for piece in big.read(blob_id):
            total += len(piece)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    await big.close()
    assert total == 24 * len(chunk)
    assert peak < 8 * 1024 * 1024, peak  # 24 MiB went through


def _flip(path: Path, offset: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0x40
    path.write_bytes(bytes(raw))


async def _refused(
    store: EncryptedBlobStore,
    blob_id: str,
    caplog: pytest.LogCaptureFixture,
    start: int = 0,
    end: int | None = None,
) -> None:
    caplog.clear()
    with caplog.at_level(logging.ERROR), pytest.raises(StorageError):
        await get(store, blob_id, start, end)
    assert any(blob_id in r.getMessage() for r in caplog.records), "no log line names the blob"


@pytest.mark.parametrize(
    "offset",
    [0, 5, PROLOGUE_SIZE, PROLOGUE_SIZE + SEGMENT + 3, PROLOGUE_SIZE + SEGMENT + TAG_SIZE - 1, -1],
)
async def test_a_flipped_byte_anywhere_in_the_body_is_refused(
    store: EncryptedBlobStore, caplog: pytest.LogCaptureFixture, offset: int
) -> None:
    blob_id = await put(store, os.urandom(3 * SEGMENT + 5))
    path = body_path(store, blob_id)
    _flip(path, offset if offset >= 0 else path.stat().st_size + offset)
    await _refused(store, blob_id, caplog)


@pytest.mark.parametrize("cut", [1, TAG_SIZE, 5 + TAG_SIZE, SEGMENT + 5 + TAG_SIZE])
async def test_truncation_is_refused(
    store: EncryptedBlobStore, caplog: pytest.LogCaptureFixture, cut: int
) -> None:
    # The last `cut` bytes go: part of a tag, the final segment, a segment boundary…
    blob_id = await put(store, os.urandom(3 * SEGMENT + 5))
    path = body_path(store, blob_id)
    raw = path.read_bytes()
    path.write_bytes(raw[:-cut])
    await _refused(store, blob_id, caplog)
    await _refused(store, blob_id, caplog, 3 * SEGMENT, 3 * SEGMENT + 5)


async def test_an_empty_or_headless_body_is_refused(
    store: EncryptedBlobStore, caplog: pytest.LogCaptureFixture
) -> None:
    for data in (b"", b"x" * 10):
        blob_id = await put(store, data)
        body_path(store, blob_id).write_bytes(b"")
        await _refused(store, blob_id, caplog)


async def test_appended_bytes_are_refused(
    store: EncryptedBlobStore, caplog: pytest.LogCaptureFixture
) -> None:
    blob_id = await put(store, os.urandom(2 * SEGMENT + 1))
    with body_path(store, blob_id).open("ab") as file:
        file.write(b"\0")
    await _refused(store, blob_id, caplog)


async def test_reordered_segments_are_refused(
    store: EncryptedBlobStore, caplog: pytest.LogCaptureFixture
) -> None:
    blob_id = await put(store, os.urandom(3 * SEGMENT))
    path = body_path(store, blob_id)
    raw = path.read_bytes()
    size = SEGMENT + TAG_SIZE
    first, second = (
        raw[PROLOGUE_SIZE : PROLOGUE_SIZE + size],
        raw[PROLOGUE_SIZE + size : PROLOGUE_SIZE + 2 * size],
    )
    path.write_bytes(raw[:PROLOGUE_SIZE] + second + first + raw[PROLOGUE_SIZE + 2 * size :])
    await _refused(store, blob_id, caplog)
    await _refused(store, blob_id, caplog, 0, 10)


async def test_segments_swapped_between_blobs_are_refused(
    store: EncryptedBlobStore, caplog: pytest.LogCaptureFixture
) -> None:
    one = await put(store, os.urandom(3 * SEGMENT))
    two = await put(store, os.urandom(3 * SEGMENT))
    a, b = body_path(store, one), body_path(store, two)
    raw_a, raw_b = a.read_bytes(), b.read_bytes()
    start, end = PROLOGUE_SIZE + SEGMENT + TAG_SIZE, PROLOGUE_SIZE + 2 * (SEGMENT + TAG_SIZE)
    a.write_bytes(raw_a[:start] + raw_b[start:end] + raw_a[end:])
    await _refused(store, one, caplog, SEGMENT, SEGMENT + 1)
    # Whole bodies swapped too.
    b.write_bytes(raw_a)
    await _refused(store, two, caplog)


async def test_swapped_key_records_are_refused(
    store: EncryptedBlobStore, caplog: pytest.LogCaptureFixture
) -> None:
    one = await put(store, os.urandom(100))
    two = await put(store, os.urandom(100))
    a, b = record_path(store, one), record_path(store, two)
    raw_a, raw_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(raw_b)
    b.write_bytes(raw_a)
    await _refused(store, one, caplog)
    await _refused(store, two, caplog)


@pytest.mark.parametrize("field", ["size", "prefix", "tag", "wrapped", "garbage", "missing"])
async def test_altered_key_records_are_refused(
    store: EncryptedBlobStore, caplog: pytest.LogCaptureFixture, field: str
) -> None:
    blob_id = await put(store, os.urandom(2 * SEGMENT + 9))
    path = record_path(store, blob_id)
    raw = bytearray(path.read_bytes())
    offsets = {"size": 16, "prefix": 18, "tag": 30, "wrapped": len(raw) - 3}
    if field == "garbage":
        raw = bytearray(b"ECRK" + os.urandom(40))
    elif field == "missing":
        path.unlink()
    else:
        raw[offsets[field]] ^= 1
    if field != "missing":
        path.write_bytes(bytes(raw))
    caplog.clear()
    with pytest.raises(StorageError):
        await get(store, blob_id)


async def test_per_tenant_keks_and_crypto_shredding(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    await store.open()
    await store.keks.create("tenant-a")
    await store.keks.create("tenant-b")
    data_a, data_b = os.urandom(3000), os.urandom(3000)
    blob_a = await put(store, data_a, kek_id="tenant-a")
    blob_b = await put(store, data_b, kek_id="tenant-b")
    assert decode_record(record_path(store, blob_a).read_bytes(), blob_a).kek_id == "tenant-a"
    await store.keks.destroy("tenant-a")
    with pytest.raises(KeyUnavailable, match="tenant-a"):
        await get(store, blob_a)
    assert await get(store, blob_b) == data_b
    await store.close()
    # Even a fresh process holding every remaining key cannot read it.
    again = make_store(tmp_path)
    await again.open()
    with pytest.raises(KeyUnavailable):
        await get(again, blob_a)
    assert await get(again, blob_b) == data_b


async def test_key_file_is_private_and_never_silently_recreated(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    await store.open()
    key_file = tmp_path / "encryption.keys"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert "WITHOUT THIS FILE" in key_file.read_text()
    blob_id = await put(store, b"secret")
    await store.close()
    key_file.rename(tmp_path / "elsewhere.keys")
    with pytest.raises(KeyUnavailable, match="missing but encrypted files exist"):
        await make_store(tmp_path).open()
    assert not key_file.exists()
    (tmp_path / "elsewhere.keys").rename(key_file)
    restored = make_store(tmp_path)
    await restored.open()
    assert await get(restored, blob_id) == b"secret"


async def test_another_key_file_cannot_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = make_store(tmp_path)
    await store.open()
    blob_id = await put(store, b"secret")
    key_file = tmp_path / "encryption.keys"
    kek_id = store.kek_id
    other = make_store(tmp_path / "other")
    await other.open()
    other_line = (tmp_path / "other" / "encryption.keys").read_text().splitlines()[-1]
    key_file.write_text(f"{kek_id} {other_line.split()[1]}\n")  # same id, another key
    reopened = make_store(tmp_path)
    await reopened.open()
    with caplog.at_level(logging.ERROR), pytest.raises(StorageError):
        await get(reopened, blob_id)
    assert any("does not unwrap" in r.getMessage() for r in caplog.records)


async def test_delete_erases_record_then_body_and_abort_leaves_nothing(
    store: EncryptedBlobStore,
) -> None:
    blob_id = await put(store, b"x" * 5000)
    await store.delete(blob_id)
    assert not record_path(store, blob_id).exists()
    assert not body_path(store, blob_id).exists()
    assert not await store.exists(blob_id)
    writer = await store.create()
    await writer.write(b"y" * 5000)
    await writer.abort()
    assert [b async for b in store.list_blobs()] == []
    assert [b async for b in store.records.list_ids()] == []


async def test_random_ranges_match(store: EncryptedBlobStore) -> None:
    rng = random.Random(7)
    data = rng.randbytes(20 * SEGMENT + 123)
    blob_id = await put(store, data, step=4096)
    for _ in range(200):
        start = rng.randrange(len(data))
        end = rng.randrange(start + 1, len(data) + 1)
        assert await get(store, blob_id, start, end) == data[start:end]


async def test_unencrypted_contents_are_not_silently_adopted(tmp_path: Path) -> None:
    plain = make_store(tmp_path).inner
    await plain.open()
    writer = await plain.create()
    await writer.write(b"written before encryption was on")
    await writer.commit()
    with pytest.raises(StorageError, match="unencrypted contents"):
        await make_store(tmp_path).open()


async def test_a_body_and_record_moved_together_under_another_id_are_refused(
    store: EncryptedBlobStore, caplog: pytest.LogCaptureFixture
) -> None:
    one = await put(store, b"the first file")
    two = await put(store, b"the second file")
    for path in (body_path, record_path):
        a, b = path(store, one), path(store, two)
        raw_a, raw_b = a.read_bytes(), b.read_bytes()
        a.write_bytes(raw_b)
        b.write_bytes(raw_a)
    await _refused(store, one, caplog)
    await _refused(store, two, caplog)
