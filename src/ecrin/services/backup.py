"""`ecrin backup DEST`: a copy of the instance in a folder, which Ecrin runs as it is.

DEST is laid out as a data folder: `ecrin.sqlite3` (the metadata) and `blobs/` (the files'
contents, and the key records with encryption at rest). Restoring is starting Ecrin on it
(`--data-dir DEST`), or copying it back.

A backup goes in this order, so that DEST holds a whole backup at every moment, the previous
one until the new one is complete:
1. the metadata is copied at one instant (`MetadataStore.snapshot_to`) to
   `ecrin.sqlite3.partial`;
2. every blob that copy refers to and DEST lacks is copied, verified by SHA-256
   (`StorageMigration`). A blob never changes under its id, so the blobs already there are
   kept: the next backup copies only what is new;
3. with encryption at rest, every key record is copied (they are small);
4. the copy replaces `ecrin.sqlite3` (a rename, fsynced);
5. the blobs in DEST that the new copy no longer refers to are deleted.

A blob the copy refers to may be gone from the instance by step 2 (emptied from the trash
meanwhile): the copy is then older than that deletion, and the backup starts again from 1,
at most `ATTEMPTS` times. Two backups into the same folder are refused (a lock file).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ecrin.core.durable_files import fsync_dir, fsync_file
from ecrin.core.errors import Conflict, StorageError
from ecrin.db.protocol import MetadataStore
from ecrin.services.storage_migration import MigrationProgress, StorageMigration
from ecrin.storage.protocol import BlobStore

DATABASE = "ecrin.sqlite3"
PARTIAL = DATABASE + ".partial"
LOCK = ".ecrin-backup.lock"
ATTEMPTS = 3


@dataclass(slots=True)
class BackupResult:
    blobs: MigrationProgress  # of the last attempt
    removed: int  # blobs DEST held that the new copy does not need
    key_records: int
    attempts: int


async def blobs_needed(metadata: MetadataStore) -> set[str]:
    """The blobs whose bytes are in the store, not in the database, that the metadata refers
    to: files, versions, the trash and unfinished uploads (their refcounted records too)."""
    async with metadata.read() as tx:
        records = await tx.blob_records()
        references = await tx.blob_reference_counts()
        chunks = await tx.upload_chunk_blob_ids()
        inline = await tx.inline_blob_ids()
    return (set(records) | set(references) | chunks) - inline


class Backup:
    def __init__(
        self,
        metadata: MetadataStore,
        blobs: BlobStore,
        destination: Path,
        copy_blobs_to: BlobStore,
        *,
        open_copy: Callable[[Path], MetadataStore],
        copy_key_records: Callable[[], Awaitable[int]] | None = None,
    ) -> None:
        """`blobs`: the instance's store as such (with encryption at rest, the encrypted
        bytes); `copy_blobs_to`: the store at DEST/blobs; `open_copy`: a metadata store on a
        copied database file."""
        self.metadata = metadata
        self.blobs = blobs
        self.destination = destination
        self.copied_blobs = copy_blobs_to
        self.open_copy = open_copy
        self.copy_key_records = copy_key_records

    async def run(
        self,
        *,
        jobs: int = 4,
        verify_existing: bool = False,
        say: Callable[[str], None] = lambda _: None,
        on_progress: Callable[[MigrationProgress], None] | None = None,
    ) -> BackupResult:
        with _only_backup_in(self.destination):
            partial = self.destination / PARTIAL
            for attempt in range(1, ATTEMPTS + 1):
                _remove_database(partial)
                say("copying the metadata")
                await self.metadata.snapshot_to(partial)
                needed = await self._needed(partial)
                say(f"copying the blobs it refers to: {len(needed)}")
                progress = await StorageMigration(self.blobs, self.copied_blobs).run(
                    jobs=jobs, verify_existing=verify_existing, on_progress=on_progress, only=needed
                )
                vanished = [b for b in progress.failed if not await self.blobs.exists(b)]
                if vanished and attempt < ATTEMPTS:
                    say(f"{len(vanished)} blobs were deleted meanwhile: starting again")
                    continue
                if progress.failed:
                    _remove_database(partial)
                    if vanished:  # in no attempt's copy: lost by the instance itself
                        raise StorageError(
                            f"{len(vanished)} blobs that files refer to are missing from the "
                            f"instance's store ({vanished[0]}…; `ecrin check` lists them); "
                            "the previous backup is untouched"
                        )
                    first, problem = sorted(progress.failed.items())[0]
                    raise StorageError(
                        f"{len(progress.failed)} blobs could not be copied ({first}: {problem})"
                        "; the previous backup is untouched"
                    )
                break
            records = await self.copy_key_records() if self.copy_key_records else 0
            fsync_file(partial)  # again: opening it to read may have checkpointed its log
            os.replace(partial, self.destination / DATABASE)
            fsync_dir(self.destination)
            removed = 0
            async for blob_id in self.copied_blobs.list_blobs():
                if blob_id not in needed:
                    await self.copied_blobs.delete(blob_id)
                    removed += 1
            return BackupResult(progress, removed, records, attempt)

    async def _needed(self, database: Path) -> set[str]:
        copy = self.open_copy(database)  # not `open()`: the schema is the instance's, as is
        try:
            return await blobs_needed(copy)
        finally:
            await copy.close()


def _remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


@contextmanager
def _only_backup_in(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise Conflict(f"another backup is writing to {folder}") from exc
        yield
    finally:
        os.close(fd)
