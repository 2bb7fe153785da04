"""`ecrin storage migrate`: copy every blob from one store to another, keeping its id.

Each blob is streamed from the source into a writer of the destination, hashed (SHA-256)
on the way, committed, then read back from the destination and hashed again; a copy whose
hash differs is deleted and reported. Nothing is held in memory beyond a chunk per copy.

Resumable by construction: a blob appears in the destination only when its commit succeeds
(and is deleted again if it fails verification), so a run that stops anywhere leaves only
complete, verified copies plus unfinished uploads that `clean_temporary` removes. The next
run lists the destination and copies what is missing (`verify_existing` re-hashes the rest).

With encryption at rest, the key records (small, replaceable) are copied too, all of them
on every run, so a record rotated meanwhile is brought up to date by the next run.

Metadata is not touched: ids do not change, so switching `storage_url` to the destination
is the whole cut-over. Blobs written to the source during a run are picked up by a second
run made after writes stop; blobs deleted meanwhile remain in the destination as orphans
that `ecrin check --repair` removes.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from ecrin.core.errors import EcrinError, StorageError
from ecrin.storage.encryption.records import KeyRecordStore
from ecrin.storage.protocol import BlobImporter, BlobStore

KEY_RECORD_BATCH = 500


@dataclass(slots=True)
class MigrationProgress:
    total: int = 0  # blobs in the source
    copied: int = 0
    already_there: int = 0
    bytes_copied: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # blob id -> what went wrong

    @property
    def done(self) -> int:
        return self.copied + self.already_there + len(self.failed)


async def sha256_of(store: BlobStore, blob_id: str) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    async for chunk in store.read(blob_id):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


class StorageMigration:
    def __init__(self, source: BlobStore, destination: BlobStore) -> None:
        if not isinstance(destination, BlobImporter):
            raise StorageError("this destination cannot take blobs under their existing ids")
        self.source = source
        self.destination = destination
        self._importer: BlobImporter = destination

    async def run(
        self,
        *,
        jobs: int = 4,
        verify_existing: bool = False,
        on_progress: Callable[[MigrationProgress], None] | None = None,
        only: Collection[str] | None = None,
    ) -> MigrationProgress:
        """`only`: these blobs, rather than every blob the source lists."""
        progress = MigrationProgress()
        present = {blob_id async for blob_id in self.destination.list_blobs()}
        queue: asyncio.Queue[str] = asyncio.Queue()
        if only is None:
            async for blob_id in self.source.list_blobs():
                queue.put_nowait(blob_id)
        else:
            for blob_id in only:
                queue.put_nowait(blob_id)
        progress.total = queue.qsize()

        async def worker() -> None:
            while not queue.empty():
                blob_id = queue.get_nowait()
                try:
                    if blob_id in present and (not verify_existing or await self._same(blob_id)):
                        progress.already_there += 1
                    else:
                        size = await self._copy(blob_id)  # not `+= await`: other workers
                        progress.bytes_copied += size  # update the total while this one waits
                        progress.copied += 1
                except EcrinError as error:
                    progress.failed[blob_id] = error.message
                if on_progress is not None:
                    on_progress(progress)

        async with asyncio.TaskGroup() as group:
            for _ in range(max(1, jobs)):
                group.create_task(worker())
        return progress

    async def _same(self, blob_id: str) -> bool:
        return await sha256_of(self.source, blob_id) == await sha256_of(self.destination, blob_id)

    async def _copy(self, blob_id: str) -> int:
        writer = await self._importer.create_with_id(blob_id)
        digest = hashlib.sha256()
        try:
            async for chunk in self.source.read(blob_id):
                digest.update(chunk)
                await writer.write(chunk)
            await writer.commit()
        except BaseException:
            await writer.abort()
            raise
        copied, size = await sha256_of(self.destination, blob_id)
        if copied != digest.hexdigest():
            await self.destination.delete(blob_id)
            raise StorageError(f"the copy of blob {blob_id} does not match the source")
        return size


async def copy_key_records(source: KeyRecordStore, destination: KeyRecordStore) -> int:
    """Copy every key record (replacing any already there), read back and compared."""
    ids = [blob_id async for blob_id in source.list_ids()]
    copied = 0
    for start in range(0, len(ids), KEY_RECORD_BATCH):
        batch = ids[start : start + KEY_RECORD_BATCH]
        records = await source.get_many(batch)
        await destination.put_many(records.items())
        if await destination.get_many(batch) != records:
            raise StorageError("a copied key record does not match the source")
        copied += len(records)
    return copied
