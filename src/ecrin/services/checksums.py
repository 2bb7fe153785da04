"""Checksums computed while a body streams: SHA-256 always, others when the client sent one.

Hashing a large body on the event loop costs it 0.6-0.7 s per GiB. `StreamingDigests.feed`
gathers the pieces of a large body into batches of `THREAD_BATCH` bytes and hashes each in a
worker thread (hashlib releases the GIL on large buffers), one batch at a time, in order;
`finish` waits for the last one. What is left at the end, if no more than `INLINE_BYTES`
(all of a small body), is hashed inline: a thread hop would cost more than the hashing.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import zlib
from dataclasses import dataclass

from ecrin.core.errors import BadRequest, ChecksumMismatch

SUPPORTED = ("SHA256", "SHA1", "MD5", "ADLER32")
THREAD_BATCH = 1024 * 1024  # bytes gathered before they are hashed in a thread
INLINE_BYTES = 64 * 1024  # at most this much left at the end is hashed on the event loop


@dataclass(frozen=True, slots=True)
class ExpectedChecksum:
    algorithm: str  # one of SUPPORTED
    hex_value: str


def parse_oc_checksum(header: str) -> ExpectedChecksum | None:
    """`OC-Checksum: SHA1:abcd…` (Nextcloud/ownCloud clients). Unknown types are ignored."""
    algorithm, sep, value = header.strip().partition(":")
    algorithm = algorithm.upper().replace("-", "")
    if not sep or not value:
        raise BadRequest("malformed OC-Checksum header")
    if algorithm not in SUPPORTED:
        return None
    return ExpectedChecksum(algorithm, value.strip().lower())


def parse_content_md5(header: str) -> ExpectedChecksum:
    try:
        raw = base64.b64decode(header.strip(), validate=True)
    except ValueError as exc:
        raise BadRequest("malformed Content-MD5 header") from exc
    if len(raw) != 16:
        raise BadRequest("malformed Content-MD5 header")
    return ExpectedChecksum("MD5", raw.hex())


class StreamingDigests:
    """The digests of a body: `update` hashes a piece at once; `feed` (then `finish`) may
    hash in a thread. The values (`sha256`, `verify`…) are final once every piece was given
    to `update`, or after `finish`."""

    def __init__(self, expected: list[ExpectedChecksum]) -> None:
        self.expected = expected
        self._sha256 = hashlib.sha256()
        wanted = {e.algorithm for e in expected}
        self._sha1 = hashlib.sha1(usedforsecurity=False) if "SHA1" in wanted else None
        self._md5 = hashlib.md5(usedforsecurity=False) if "MD5" in wanted else None
        self._adler: int | None = 1 if "ADLER32" in wanted else None
        self._pending: list[bytes] = []  # fed, not yet hashed nor handed to a thread
        self._pending_bytes = 0
        self._hashing: asyncio.Future[None] | None = None  # the batch a thread is hashing

    async def feed(self, data: bytes) -> None:
        """Add the body's next piece. Returns at once, unless a batch is complete and the
        previous one is still being hashed: then it waits for that one (one at a time)."""
        self._pending.append(data)
        self._pending_bytes += len(data)
        if self._pending_bytes >= THREAD_BATCH:
            await self._hash_pending_in_thread()

    async def finish(self) -> None:
        """Hash what was fed and not hashed yet; after this the digests are final."""
        if self._pending_bytes > INLINE_BYTES:
            await self._hash_pending_in_thread()
        await self._wait()
        pending, self._pending, self._pending_bytes = self._pending, [], 0
        for piece in pending:
            self.update(piece)

    async def _hash_pending_in_thread(self) -> None:
        await self._wait()
        batch, self._pending, self._pending_bytes = self._pending, [], 0
        loop = asyncio.get_running_loop()
        self._hashing = loop.run_in_executor(None, self._update_all, batch)

    async def _wait(self) -> None:
        if self._hashing is not None:
            hashing, self._hashing = self._hashing, None
            await hashing

    def _update_all(self, pieces: list[bytes]) -> None:
        """In a worker thread: the pieces as one buffer, so each digest releases the GIL
        once for all of it (a digest keeps the GIL for a piece under 2 KiB). Should the
        upload fail meanwhile, the batch is still hashed here, and then dropped."""
        self.update(pieces[0] if len(pieces) == 1 else b"".join(pieces))

    def update(self, data: bytes) -> None:
        self._sha256.update(data)
        if self._sha1 is not None:
            self._sha1.update(data)
        if self._md5 is not None:
            self._md5.update(data)
        if self._adler is not None:
            self._adler = zlib.adler32(data, self._adler)

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    def _value(self, algorithm: str) -> str:
        if algorithm == "SHA256":
            return self.sha256
        if algorithm == "SHA1" and self._sha1 is not None:
            return self._sha1.hexdigest()
        if algorithm == "MD5" and self._md5 is not None:
            return self._md5.hexdigest()
        if algorithm == "ADLER32" and self._adler is not None:
            return f"{self._adler:08x}"
        raise AssertionError(algorithm)

    def client_checksums(self) -> str | None:
        """The verified checksums the client sent, in `oc:checksums` form ('SHA1:… MD5:…')."""
        names = dict.fromkeys(e.algorithm for e in self.expected if e.algorithm != "SHA256")
        return " ".join(f"{a}:{self._value(a)}" for a in names) or None

    def verify(self) -> None:
        for expected in self.expected:
            if self._value(expected.algorithm) != expected.hex_value:
                raise ChecksumMismatch(
                    f"{expected.algorithm} checksum mismatch: the upload was corrupted in "
                    "transit; nothing was stored"
                )
