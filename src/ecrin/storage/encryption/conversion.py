"""`ecrin keys encrypt-existing`: encrypt the blobs written before encryption was on.

Each unencrypted blob is re-written encrypted **under its own id**, so metadata does not
change: its key record is written durably first, then the encrypted body replaces the
plaintext one atomically (a rename on disk, a PUT on S3). Every sealed segment is
decrypted and compared with its plaintext before it is written, and the whole blob is read
back and hashed afterwards.

Resumable: a blob is done when it has a record *and* its body starts with the encryption
prologue. A kill between the record and the body leaves a record next to a plaintext body
(unreadable, never misread: the prologue check fails); the next run finds it and converts
it again. Run it with the server stopped: until a blob is converted, an encrypted server
refuses to read it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from ecrin.core.errors import EcrinError, StorageError
from ecrin.storage.encryption.format import PROLOGUE, PROLOGUE_SIZE
from ecrin.storage.encryption.store import EncryptedBlobStore
from ecrin.storage.protocol import BlobImporter, BlobStore

log = logging.getLogger(__name__)

BATCH = 256


@dataclass
class ConversionReport:
    examined: int = 0
    encrypted: int = 0
    already: int = 0
    bytes_encrypted: int = 0
    encrypted_from_database: int = 0  # small files' bytes moved out of their rows
    # Bodies that look encrypted but have no record: orphans of interrupted writes.
    orphans: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


async def _head(store: BlobStore, blob_id: str) -> bytes:
    head = b""
    async for chunk in store.read(blob_id, 0, PROLOGUE_SIZE):
        head += chunk
    return head


async def encrypt_existing(
    store: EncryptedBlobStore,
    *,
    progress: Callable[[ConversionReport], None] | None = None,
) -> ConversionReport:
    if not isinstance(store.inner, BlobImporter):
        raise StorageError("this blob store cannot rewrite a blob under its id")
    report = ConversionReport()
    pending: list[str] = []
    async for blob_id in store.inner.list_blobs():
        pending.append(blob_id)
        if len(pending) >= BATCH:
            await _convert_batch(store, pending, report)
            pending = []
            if progress is not None:
                progress(report)
    await _convert_batch(store, pending, report)
    if progress is not None:
        progress(report)
    return report


async def _convert_batch(
    store: EncryptedBlobStore, blob_ids: list[str], report: ConversionReport
) -> None:
    records = await store.records.get_many(blob_ids)
    for blob_id in blob_ids:
        report.examined += 1
        try:
            encrypted_body = await _head(store.inner, blob_id) == PROLOGUE
            if encrypted_body:
                if blob_id in records:
                    report.already += 1
                else:
                    report.orphans.append(blob_id)
                continue
            report.bytes_encrypted += await _convert(store, blob_id)
            report.encrypted += 1
        except EcrinError as error:
            log.error("encrypt-existing: blob %s: %s", blob_id, error.message)
            report.failed[blob_id] = error.message


async def _convert(store: EncryptedBlobStore, blob_id: str) -> int:
    plaintext = hashlib.sha256()
    size = 0
    writer = await store.create_with_id(blob_id)
    writer.verify_segments = True
    try:
        async for chunk in store.inner.read(blob_id):
            plaintext.update(chunk)
            size += len(chunk)
            await writer.write(chunk)
        await writer.commit()
    except BaseException:
        await writer.abort()
        raise
    readback = hashlib.sha256()
    async for chunk in store.read(blob_id):
        readback.update(chunk)
    if readback.hexdigest() != plaintext.hexdigest():
        raise StorageError(f"blob {blob_id} does not read back as it was before encryption")
    return size
