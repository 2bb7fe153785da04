"""`StreamingDigests`: large bodies are hashed in a worker thread, a batch at a time and in
order; small ones on the event loop, where a thread hop would cost more than the hashing."""

from __future__ import annotations

import asyncio
import hashlib
import random
import zlib
from collections.abc import Callable
from typing import Any

import pytest

from ecrin.core.errors import ChecksumMismatch
from ecrin.services.checksums import (
    INLINE_BYTES,
    THREAD_BATCH,
    ExpectedChecksum,
    StreamingDigests,
)


class ThreadJobs:
    """Counts the jobs the running loop hands to its executor."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        loop = asyncio.get_running_loop()
        run_in_executor = loop.run_in_executor

        def counted(executor: Any, function: Callable[..., Any], *args: Any) -> Any:
            self.count += 1
            return run_in_executor(executor, function, *args)

        monkeypatch.setattr(loop, "run_in_executor", counted)


def pieces_of(data: bytes, seed: int) -> list[bytes]:
    """`data` cut at random places, from 1 byte to 200 KiB."""
    rng = random.Random(seed)
    pieces, at = [], 0
    while at < len(data):
        size = rng.choice((1, 100, 4096, 65536, 200_000))
        pieces.append(data[at : at + size])
        at += size
    return pieces


def expected(data: bytes) -> list[ExpectedChecksum]:
    return [
        ExpectedChecksum("SHA1", hashlib.sha1(data).hexdigest()),
        ExpectedChecksum("MD5", hashlib.md5(data).hexdigest()),
        ExpectedChecksum("ADLER32", f"{zlib.adler32(data):08x}"),
    ]


async def digest(pieces: list[bytes], checks: list[ExpectedChecksum]) -> StreamingDigests:
    digests = StreamingDigests(checks)
    for piece in pieces:
        await digests.feed(piece)
    await digests.finish()
    return digests


@pytest.mark.parametrize("size", [0, 1, INLINE_BYTES, THREAD_BATCH - 1, 5 * THREAD_BATCH + 7])
async def test_fed_pieces_give_the_digests_of_the_whole(size: int) -> None:
    data = random.Random(size).randbytes(size)
    digests = await digest(pieces_of(data, size), expected(data))
    digests.verify()
    assert digests.sha256 == hashlib.sha256(data).hexdigest()
    sha1, md5, adler = (check.hex_value for check in expected(data))
    assert digests.client_checksums() == f"SHA1:{sha1} MD5:{md5} ADLER32:{adler}"


async def test_small_bodies_are_hashed_on_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    jobs = ThreadJobs(monkeypatch)
    data = b"x" * INLINE_BYTES
    digests = await digest(pieces_of(data, 1), [])
    assert (digests.sha256, jobs.count) == (hashlib.sha256(data).hexdigest(), 0)


async def test_large_bodies_are_hashed_in_threads_a_batch_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    jobs = ThreadJobs(monkeypatch)
    data = random.Random(3).randbytes(3 * THREAD_BATCH + INLINE_BYTES + 1)
    pieces = [data[at : at + 65536] for at in range(0, len(data), 65536)]
    digests = await digest(pieces, [])
    assert digests.sha256 == hashlib.sha256(data).hexdigest()
    assert jobs.count == 4  # three full batches, and a rest too large to hash inline


async def test_a_mismatch_in_a_large_body_is_found() -> None:
    data = random.Random(4).randbytes(2 * THREAD_BATCH + 5)
    corrupted = data[:-1] + bytes([data[-1] ^ 1])
    digests = await digest(pieces_of(corrupted, 4), expected(data)[:1])
    with pytest.raises(ChecksumMismatch):
        digests.verify()
