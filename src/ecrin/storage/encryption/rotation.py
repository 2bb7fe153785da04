"""Key rotation without re-encryption, and the census behind `ecrin keys status`.

Rotating rewraps each blob's data key under the target KEK and replaces only its key
record (a few dozen bytes), atomically; bodies are not read. It is:

* **online**: readers see the old record or the new one, both valid while the old KEK
  exists; new blobs written meanwhile under the old KEK are caught by a rerun;
* **resumable**: records already under the target are skipped, so after a crash (even
  SIGKILL) a rerun finishes the job, and a finished run is a no-op;
* **checked**: each data key is verified against its header tag before being rewrapped,
  so a corrupt record is reported, never silently rewrapped.

A blob deleted while its record was being rewritten could get its record back; the
rewrite checks the body still exists afterwards and removes such a record.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from ecrin.core.errors import EcrinError
from ecrin.storage.encryption.format import check_kek_id, decode_record
from ecrin.storage.encryption.store import EncryptedBlobStore

log = logging.getLogger(__name__)

BATCH = 256


@dataclass
class RotationReport:
    target: str
    examined: int = 0
    rewrapped: int = 0
    already: int = 0  # under the target already, or not under the source
    vanished: int = 0
    failed: list[str] = field(default_factory=list)


@dataclass
class KeyCensus:
    by_kek: Counter[str] = field(default_factory=Counter)
    available: list[str] = field(default_factory=list)
    current: str = ""
    without_record: list[str] = field(default_factory=list)


async def rotate(
    store: EncryptedBlobStore,
    target: str | None = None,
    *,
    source: str | None = None,
    batch_size: int = BATCH,
    progress: Callable[[RotationReport], None] | None = None,
) -> RotationReport:
    """Rewrap data keys under `target` (default: the current KEK).

    Those under `source` only if given (per-tenant KEKs: move one tenant), else all others.
    """
    kek = check_kek_id(target or store.kek_id)
    # Fails now (KeyUnavailable) rather than after the first batch if the target is absent.
    await store.keks.wrap(kek, bytes(32))
    report = RotationReport(kek)
    pending: list[str] = []
    async for blob_id in store.records.list_ids():
        pending.append(blob_id)
        if len(pending) >= batch_size:
            await _rotate_batch(store, kek, source, pending, report)
            pending = []
            if progress is not None:
                progress(report)
    if pending:
        await _rotate_batch(store, kek, source, pending, report)
    if progress is not None:
        progress(report)
    return report


async def _rotate_batch(
    store: EncryptedBlobStore,
    kek: str,
    source: str | None,
    blob_ids: list[str],
    report: RotationReport,
) -> None:
    rewritten: list[tuple[str, bytes]] = []
    found = await store.records.get_many(blob_ids)
    for blob_id in blob_ids:
        report.examined += 1
        data = found.get(blob_id)
        if data is None:
            report.vanished += 1  # deleted meanwhile
            continue
        try:
            record = decode_record(data, blob_id)
            if record.kek_id == kek or (source is not None and record.kek_id != source):
                report.already += 1
                continue
            data_key = await store.data_key(blob_id, record)
            wrapped = await store.keks.wrap(kek, data_key)
        except EcrinError as error:
            log.error("rotation: blob %s: %s", blob_id, error.message)
            report.failed.append(blob_id)
            continue
        rewritten.append(
            (blob_id, dataclasses.replace(record, kek_id=kek, wrapped_key=wrapped).encode())
        )
    await store.records.put_many(rewritten)
    for blob_id, _ in rewritten:
        if await store.inner.exists(blob_id):
            report.rewrapped += 1
        else:
            await store.records.delete(blob_id)
            report.vanished += 1


async def census(store: EncryptedBlobStore, *, find_unencrypted: bool = True) -> KeyCensus:
    """How many blobs each KEK protects (read from records only: no key is unwrapped)."""
    result = KeyCensus(current=store.kek_id, available=await store.keks.ids())
    with_record: set[str] = set()
    batch: list[str] = []

    async def count() -> None:
        for blob_id, data in (await store.records.get_many(batch)).items():
            with_record.add(blob_id)
            try:
                result.by_kek[decode_record(data, blob_id).kek_id] += 1
            except EcrinError:
                result.by_kek["(unreadable record)"] += 1
        batch.clear()

    async for blob_id in store.records.list_ids():
        batch.append(blob_id)
        if len(batch) >= BATCH:
            await count()
    await count()
    if find_unencrypted:
        async for blob_id in store.inner.list_blobs():
            if blob_id not in with_record:
                result.without_record.append(blob_id)
    return result
