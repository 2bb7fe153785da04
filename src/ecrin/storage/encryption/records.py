"""Key records: the small replaceable half of an encrypted blob, named after its id.

Why a separate record rather than a header inside the body: rotation must change the
wrapped key without touching the (possibly huge, immutable) body, and must be crash-safe
and resumable. Replacing a whole small object is atomic everywhere (a rename on a local
disk, a PUT on an object store), whereas rewriting the start of a large object is not
(an object store's server-side copy of a multi-GiB object is neither cheap nor atomic).
So each blob id has one record, and rotating is "write a new record, atomically".

Local layout, beside the blobs:
    tmp/<random>          records being written
    ab/cd/<blob id>       committed records

In an object store, each record is one small object, `<prefix>key-records/<blob id>`,
written by a single PUT (which replaces an object atomically).
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Protocol

from ecrin.core.durable_files import fsync_dir
from ecrin.core.errors import StorageError
from ecrin.storage.local import remove_stale_files
from ecrin.storage.protocol import BlobStore, BlobWriter

_BLOB_ID = re.compile(r"[0-9A-Za-z_-]{4,128}")


class KeyRecordStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def get(self, blob_id: str) -> bytes | None:
        """The record of a blob, or None if it has none."""
        ...

    async def get_many(self, blob_ids: Iterable[str]) -> dict[str, bytes]:
        """The records of several blobs (those without one are left out)."""
        ...

    async def put_many(self, records: Iterable[tuple[str, bytes]]) -> None:
        """Create or replace records; each becomes durable and replaces atomically."""
        ...

    async def delete(self, blob_id: str) -> None:
        """Remove a record; removing a missing one is not an error."""
        ...

    def list_ids(self) -> AsyncIterator[str]:
        """Every blob id that has a record."""
        ...

    async def any(self) -> bool:
        """Whether at least one record exists."""
        ...

    async def clean_temporary(self, older_than: float) -> list[str]: ...


class LocalKeyRecords:
    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = root
        self.fsync = fsync
        self._tmp = root / "tmp"

    async def open(self) -> None:
        self._tmp.mkdir(parents=True, exist_ok=True)

    async def close(self) -> None:
        return None

    def path_of(self, blob_id: str) -> Path:
        if not _BLOB_ID.fullmatch(blob_id):
            raise StorageError(f"invalid blob id {blob_id!r}")
        return self.root / blob_id[:2] / blob_id[2:4] / blob_id

    async def get(self, blob_id: str) -> bytes | None:
        try:
            return await asyncio.to_thread(self.path_of(blob_id).read_bytes)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot read the key record of blob {blob_id}: {exc}") from exc

    async def get_many(self, blob_ids: Iterable[str]) -> dict[str, bytes]:
        paths = {blob_id: self.path_of(blob_id) for blob_id in blob_ids}

        def read_all() -> dict[str, bytes]:
            found = {}
            for blob_id, path in paths.items():
                try:
                    found[blob_id] = path.read_bytes()
                except FileNotFoundError:
                    continue
            return found

        try:
            return await asyncio.to_thread(read_all)
        except OSError as exc:
            raise StorageError(f"cannot read key records: {exc}") from exc

    async def put_many(self, records: Iterable[tuple[str, bytes]]) -> None:
        batch = [(self.path_of(blob_id), data) for blob_id, data in records]
        try:
            await asyncio.to_thread(self._put_many, batch)
        except OSError as exc:
            raise StorageError(f"cannot write key records: {exc.strerror}") from exc

    def _put_many(self, batch: list[tuple[Path, bytes]]) -> None:
        # Write every temporary file, then flush them (one journal commit covers most),
        # then rename them into place, then flush each folder once.
        temps: list[tuple[Path, Path]] = []
        try:
            for final, data in batch:
                temp = self._tmp / secrets.token_hex(16)
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                temps.append((temp, final))
                with os.fdopen(fd, "wb") as file:
                    file.write(data)
                    if self.fsync:
                        file.flush()
                        os.fsync(file.fileno())
            folders: set[Path] = set()
            for temp, final in temps:
                try:
                    os.replace(temp, final)
                except FileNotFoundError:
                    final.parent.mkdir(parents=True, exist_ok=True)
                    if self.fsync:
                        fsync_dir(final.parent.parent)
                        fsync_dir(self.root)
                    os.replace(temp, final)
                folders.add(final.parent)
            if self.fsync:
                for folder in folders:
                    fsync_dir(folder)
        finally:
            for temp, _ in temps:
                temp.unlink(missing_ok=True)

    async def delete(self, blob_id: str) -> None:
        try:
            await asyncio.to_thread(self.path_of(blob_id).unlink, missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot delete the key record of {blob_id}: {exc}") from exc

    async def list_ids(self) -> AsyncIterator[str]:
        for first in sorted(self.root.glob("[0-9A-Za-z_-][0-9A-Za-z_-]")):
            for second in sorted(first.glob("[0-9A-Za-z_-][0-9A-Za-z_-]")):
                names = await asyncio.to_thread(os.listdir, second)
                for name in sorted(names):
                    yield name

    async def any(self) -> bool:
        async for _ in self.list_ids():
            return True
        return False

    async def clean_temporary(self, older_than: float) -> list[str]:
        return remove_stale_files(self._tmp, older_than)


class NamedBlobStore(BlobStore, Protocol):
    """A blob store that can also write under an id of the caller's choosing (S3 can)."""

    async def create_with_id(self, blob_id: str) -> BlobWriter: ...


class ObjectKeyRecords:
    """Key records as small objects of an object store, one PUT each."""

    def __init__(self, objects: NamedBlobStore, *, concurrency: int = 16) -> None:
        self.objects = objects
        self._limit = asyncio.Semaphore(concurrency)

    async def open(self) -> None:
        await self.objects.open()

    async def close(self) -> None:
        await self.objects.close()

    async def get(self, blob_id: str) -> bytes | None:
        async with self._limit:
            try:
                return b"".join([chunk async for chunk in self.objects.read(blob_id)])
            except StorageError:
                if not await self.objects.exists(blob_id):
                    return None
                raise

    async def get_many(self, blob_ids: Iterable[str]) -> dict[str, bytes]:
        ids = list(blob_ids)
        found = await asyncio.gather(*(self.get(blob_id) for blob_id in ids))
        return {blob_id: data for blob_id, data in zip(ids, found, strict=True) if data is not None}

    async def put_many(self, records: Iterable[tuple[str, bytes]]) -> None:
        async def put(blob_id: str, data: bytes) -> None:
            async with self._limit:
                writer = await self.objects.create_with_id(blob_id)
                try:
                    await writer.write(data)
                    await writer.commit()
                except BaseException:
                    await writer.abort()
                    raise

        await asyncio.gather(*(put(blob_id, data) for blob_id, data in records))

    async def delete(self, blob_id: str) -> None:
        await self.objects.delete(blob_id)

    def list_ids(self) -> AsyncIterator[str]:
        return self.objects.list_blobs()

    async def any(self) -> bool:
        async for _ in self.list_ids():
            return True
        return False

    async def clean_temporary(self, older_than: float) -> list[str]:
        return await self.objects.clean_temporary(older_than)
