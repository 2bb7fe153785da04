"""EncryptedBlobStore: AES-256-GCM at rest around any BlobStore, streamed in segments.

Writing: a random 256-bit data key and nonce prefix per blob; the data key is wrapped by
the current KEK before any byte is accepted (a missing HSM fails the upload at once).
Plaintext is sealed segment by segment as it streams in (one segment is held back so the
final one can be flagged); `commit()` seals the final segment, commits the body in the
inner store, then writes the key record durably, and only then returns the blob id. A
crash in between leaves a body without a record: an unreferenced orphan that
`ecrin check --repair` removes, never a referenced blob that cannot be read.

Reading: the key record gives the sizes and the wrapped key; the data key is unwrapped
and checked against the header tag before anything else. A range read fetches only the
segments that hold the range and verifies each before yielding any of its bytes. Every
failure (bad tag, short body, trailing bytes, record that does not fit the body) raises
StorageError and logs one line naming the blob: wrong bytes are never returned.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
from collections.abc import AsyncIterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ecrin.core.errors import KeyUnavailable, StorageError
from ecrin.storage.encryption.format import (
    DATA_KEY_SIZE,
    DEFAULT_SEGMENT_SIZE,
    HEADER_TAG_INDEX,
    MAX_SEGMENTS,
    NONCE_PREFIX_SIZE,
    PROLOGUE,
    PROLOGUE_SIZE,
    TAG_SIZE,
    KeyRecord,
    check_kek_id,
    decode_record,
    nonce,
    segment_aad,
    segment_span,
)
from ecrin.storage.encryption.keks import KeyEncryptionKeys
from ecrin.storage.encryption.records import KeyRecordStore
from ecrin.storage.protocol import BlobImporter, BlobStore, BlobWriter, Piece

log = logging.getLogger(__name__)


def _corrupt(blob_id: str, what: str) -> StorageError:
    log.error("encrypted blob %s is unreadable: %s", blob_id, what)
    return StorageError(
        "the stored contents of this file failed verification; the server log has the details"
    )


def header_tag(data_key: bytes, record: KeyRecord, blob_id: str) -> bytes:
    """Binds the record's fixed fields and the blob's id to its data key."""
    return AESGCM(data_key).encrypt(
        nonce(record.nonce_prefix, HEADER_TAG_INDEX),
        b"",
        record.fixed_fields() + blob_id.encode("ascii"),
    )


class EncryptedBlobWriter:
    def __init__(
        self,
        store: EncryptedBlobStore,
        inner: BlobWriter,
        data_key: bytes,
        kek_id: str,
        wrapped_key: bytes,
        *,
        blob_id: str | None = None,
        record_first: bool = False,
    ) -> None:
        self._store = store
        self._inner = inner
        self._blob_id = blob_id
        self._record_first = record_first
        self.verify_segments = False  # decrypt each sealed segment again before writing it
        self._data_key = data_key
        self._aead = AESGCM(data_key)
        self._prefix = secrets.token_bytes(NONCE_PREFIX_SIZE)
        self._kek_id = kek_id
        self._wrapped_key = wrapped_key
        self._segment_size = store.segment_size
        self._buffer = bytearray()
        self._index = 0
        self._size = 0

    @property
    def size(self) -> int:
        """Plaintext bytes written so far (what metadata records)."""
        return self._size

    def _seal(self, plaintext: bytes | memoryview, final: bool) -> bytes:
        if self._index >= MAX_SEGMENTS:
            raise StorageError("the blob is too large for the encryption format")
        segment_nonce = nonce(self._prefix, self._index)
        aad = segment_aad(self._index, final, self._size)
        sealed = self._aead.encrypt(segment_nonce, plaintext, aad)
        if self.verify_segments and self._aead.decrypt(segment_nonce, sealed, aad) != plaintext:
            raise StorageError("a sealed segment does not decrypt to its plaintext")
        self._index += 1
        return sealed

    async def write(self, data: bytes) -> None:
        self._size += len(data)
        segment = self._segment_size
        if len(self._buffer) + len(data) <= segment:
            self._buffer += data
            return
        if self._buffer:
            self._buffer += data
            source = memoryview(self._buffer)
        else:
            source = memoryview(data)  # no copy of a large write
        # Keep at least one byte back: the last segment must be sealed as final.
        count = (len(source) - 1) // segment
        with source:
            sealed = [
                self._seal(source[i * segment : (i + 1) * segment], final=False)
                for i in range(count)
            ]
            rest = bytes(source[count * segment :])
        self._buffer = bytearray(rest)
        await self._inner.write(b"".join(sealed))

    async def commit(self) -> str:
        await self._inner.write(self._seal(bytes(self._buffer), final=True))
        self._buffer.clear()
        record = KeyRecord(
            segment_size=self._segment_size,
            plaintext_size=self._size,
            nonce_prefix=self._prefix,
            header_tag=b"\0" * TAG_SIZE,
            kek_id=self._kek_id,
            wrapped_key=self._wrapped_key,
        )
        records = self._store.records
        if self._blob_id is None:  # the inner store names the blob at its commit
            blob_id = await self._inner.commit()
            record = dataclasses.replace(
                record, header_tag=header_tag(self._data_key, record, blob_id)
            )
            try:
                await records.put_many([(blob_id, record.encode())])
            except BaseException:
                await self._store.inner.delete(blob_id)
                raise
            return blob_id
        blob_id = self._blob_id
        encoded = dataclasses.replace(
            record, header_tag=header_tag(self._data_key, record, blob_id)
        ).encode()
        if self._record_first:
            # Replacing a body in place (encrypt-existing): the record must be durable
            # before the old body goes, or a crash would leave a body nobody can read.
            await records.put_many([(blob_id, encoded)])
            try:
                await self._inner.commit()
            except BaseException:
                await records.delete(blob_id)
                raise
            return blob_id
        # A new id nobody knows yet: flush the body and the record at the same time.
        outcomes = await asyncio.gather(
            self._inner.commit(), records.put_many([(blob_id, encoded)]), return_exceptions=True
        )
        failure = next((o for o in outcomes if isinstance(o, BaseException)), None)
        if failure is not None:
            await records.delete(blob_id)
            await self._store.inner.delete(blob_id)
            raise failure
        return blob_id

    async def abort(self) -> None:
        self._buffer.clear()
        await self._inner.abort()


class EncryptedBlobStore:
    """A BlobStore whose blobs are encrypted in `inner`, keys wrapped by `keks`."""

    def __init__(
        self,
        inner: BlobStore,
        records: KeyRecordStore,
        keks: KeyEncryptionKeys,
        *,
        kek_id: str = "",
        segment_size: int = DEFAULT_SEGMENT_SIZE,
    ) -> None:
        self.inner = inner
        self.records = records
        self.keks = keks
        self.segment_size = segment_size
        self._configured_kek_id = kek_id
        self.kek_id = kek_id
        # Only `ecrin keys encrypt-existing` opens a store over unencrypted contents.
        self.allow_unencrypted = False

    async def open(self) -> None:
        await self.inner.open()
        await self.records.open()
        first_start = not await self.records.any()
        if first_start and not self.allow_unencrypted:
            await self._refuse_unencrypted_contents()
        await self.keks.open(first_start=first_start)
        self.kek_id = check_kek_id(self._configured_kek_id or await self.keks.default_id())
        # Fail at startup, not on the first upload, if the current KEK cannot be used.
        probe = secrets.token_bytes(DATA_KEY_SIZE)
        if await self.keks.unwrap(self.kek_id, await self.keks.wrap(self.kek_id, probe)) != probe:
            raise StorageError(f"key-encryption key {self.kek_id} does not round-trip")
        log.info("contents are encrypted at rest; new blobs use KEK %s", self.kek_id)

    async def _refuse_unencrypted_contents(self) -> None:
        """Turning encryption on over existing plaintext blobs would make them unreadable."""
        async for blob_id in self.inner.list_blobs():
            head = b""
            async for chunk in self.inner.read(blob_id, 0, PROLOGUE_SIZE):
                head += chunk
            if head != PROLOGUE:
                raise StorageError(
                    "encryption is on but this instance already holds unencrypted contents: "
                    "with the server stopped, run `ecrin keys encrypt-existing` first "
                    "(docs/encryption.md)"
                )

    async def close(self) -> None:
        await self.keks.close()
        await self.records.close()
        await self.inner.close()

    async def create(self, *, kek_id: str | None = None) -> EncryptedBlobWriter:
        """A writer; `kek_id` picks another KEK (e.g. a tenant's) than the current one."""
        if isinstance(self.inner, BlobImporter):
            # Naming the blob now lets its record be flushed while its body is.
            return await self._writer(secrets.token_hex(16), kek_id, record_first=False)
        return await self._writer(None, kek_id, record_first=False)

    async def create_with_id(
        self, blob_id: str, *, kek_id: str | None = None
    ) -> EncryptedBlobWriter:
        """A writer that replaces (or creates) the blob `blob_id`, its key record first."""
        return await self._writer(blob_id, kek_id, record_first=True)

    async def _writer(
        self, blob_id: str | None, kek_id: str | None, *, record_first: bool
    ) -> EncryptedBlobWriter:
        kek = check_kek_id(kek_id) if kek_id else self.kek_id
        data_key = secrets.token_bytes(DATA_KEY_SIZE)
        wrapped = await self.keks.wrap(kek, data_key)
        if blob_id is None:
            inner = await self.inner.create()
        elif isinstance(self.inner, BlobImporter):
            inner = await self.inner.create_with_id(blob_id)
        else:
            raise StorageError("this blob store cannot write under a chosen id")
        try:
            await inner.write(PROLOGUE)
        except BaseException:
            await inner.abort()
            raise
        return EncryptedBlobWriter(
            self, inner, data_key, kek, wrapped, blob_id=blob_id, record_first=record_first
        )

    async def key_record(self, blob_id: str) -> KeyRecord:
        data = await self.records.get(blob_id)
        if data is None:
            if await self.inner.exists(blob_id):
                raise _corrupt(blob_id, "it has no key record")
            raise StorageError(f"blob {blob_id} is missing from storage")
        return decode_record(data, blob_id)

    async def data_key(self, blob_id: str, record: KeyRecord) -> bytes:
        """Unwrap the data key and check it against the header tag."""
        try:
            data_key = await self.keks.unwrap(record.kek_id, record.wrapped_key)
        except KeyUnavailable as error:
            # The reason (paths, token names) goes to the log, not to the client.
            log.error("blob %s cannot be read: %s", blob_id, error.message)
            raise KeyUnavailable(
                f"the encryption key of this file ({record.kek_id}) is not available; "
                "the server log says why"
            ) from error
        except StorageError as error:
            raise _corrupt(blob_id, error.message) from error
        if len(data_key) != DATA_KEY_SIZE or not secrets.compare_digest(
            header_tag(data_key, record, blob_id), record.header_tag
        ):
            raise _corrupt(blob_id, "its key record does not match its data key")
        return data_key

    def read_to_send(
        self, blob_id: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[Piece]:
        return self.read(blob_id, start, end)

    async def read(
        self, blob_id: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        record = await self.key_record(blob_id)
        size = record.plaintext_size
        end = size if end is None else min(end, size)
        start = max(0, start)
        if start >= end and size > 0:
            return
        aead = AESGCM(await self.data_key(blob_id, record))
        segment = record.segment_size
        last_index = record.segment_count - 1
        first = start // segment
        last = max(first, (end - 1) // segment)
        read_from = 0 if first == 0 else segment_span(first, segment)[0]
        read_to = min(segment_span(last, segment)[1], record.body_size)
        if last == last_index:
            read_to += 1  # one byte more: a body longer than the record says is refused
        buffer = bytearray()
        prologue_pending = read_from == 0
        index = first
        skip = start - first * segment
        async for chunk in self.inner.read(blob_id, read_from, read_to):
            buffer += chunk
            if prologue_pending:
                if len(buffer) < PROLOGUE_SIZE:
                    continue
                if bytes(buffer[:PROLOGUE_SIZE]) != PROLOGUE:
                    raise _corrupt(blob_id, "its body does not start with the format prologue")
                del buffer[:PROLOGUE_SIZE]
                prologue_pending = False
            offset = 0
            pieces: list[bytes] = []
            with memoryview(buffer) as view:
                while index <= last:
                    final = index == last_index
                    length = (size - index * segment if final else segment) + TAG_SIZE
                    if len(view) - offset < length:
                        break
                    try:
                        plaintext = aead.decrypt(
                            nonce(record.nonce_prefix, index),
                            view[offset : offset + length],
                            segment_aad(index, final, size),
                        )
                    except InvalidTag:
                        raise _corrupt(blob_id, f"segment {index} does not authenticate") from None
                    limit = end - index * segment
                    if skip or limit < len(plaintext):
                        plaintext = plaintext[skip:limit]
                    if plaintext:
                        pieces.append(plaintext)
                    offset += length
                    index += 1
                    skip = 0
            del buffer[:offset]
            if pieces:
                yield pieces[0] if len(pieces) == 1 else b"".join(pieces)
            if index > last and buffer and last == last_index:
                raise _corrupt(blob_id, "its body is longer than its key record says")
        if index <= last or prologue_pending:
            raise _corrupt(blob_id, f"its body is truncated (segment {index} is incomplete)")

    async def delete(self, blob_id: str) -> None:
        # The record first: without it the body is unreadable at once (crypto-erase), and a
        # crash in between leaves an orphan body that `ecrin check --repair` removes.
        await self.records.delete(blob_id)
        await self.inner.delete(blob_id)

    async def exists(self, blob_id: str) -> bool:
        return await self.records.get(blob_id) is not None and await self.inner.exists(blob_id)

    def list_blobs(self, older_than: float | None = None) -> AsyncIterator[str]:
        # Bodies, with or without a record: a body whose record was never written is an
        # orphan that `ecrin check` must see to remove it.
        return self.inner.list_blobs(older_than)

    async def clean_temporary(self, older_than: float) -> list[str]:
        removed = await self.inner.clean_temporary(older_than)
        return removed + await self.records.clean_temporary(older_than)
