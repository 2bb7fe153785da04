"""Blobs as files on a local disk.

Layout under the root folder:
    tmp/<random>        writes in progress (removed by recovery if a crash leaves them)
    ab/cd/<id>          committed blobs, sharded by the first four hex digits of the id

A commit writes, fsyncs the file, renames it into place and fsyncs the directory, so a
blob id that metadata references always names a complete file.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import mmap
import os
import secrets
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from pathlib import Path
from typing import Any, TypeVar

from ecrin.core.durable_files import fsync_dir
from ecrin.core.errors import NotFound, QuotaExceeded, StorageError
from ecrin.storage.blob_ids import ShardedIds
from ecrin.storage.protocol import Piece

_P = TypeVar("_P", bound=Piece)

READ_CHUNK = 1024 * 1024
# A large blob sent in a response is mapped in windows of this size, as Apache sends files:
# the socket copies from the file's pages, where reading the file first copied every byte
# into Python once more (~0.27 s of server CPU a GiB sent here, against ~0.38 for 1 MiB
# reads). Up to three windows per download are mapped at a time: the one the socket is
# finishing, the next, and the one being read in (8 MiB windows cost no less CPU).
MAP_WINDOW = 4 * 1024 * 1024
_HEX_DIGITS = frozenset("0123456789abcdef")
# A read of at most this many bytes is done in one thread job: open, read, close.
WHOLE_READ = 1024 * 1024
# Up to this size a read runs on the event loop: from the page cache it takes microseconds,
# and a cold one is a single small read (nginx reads files in its event loop the same way).
INLINE_READ = 64 * 1024
# Received bytes are handed to the disk in batches of about this size; one batch is written
# in a thread while the next one fills, so a writer holds at most two batches. Larger batches
# (4 and 8 MiB were measured) save thread hand-offs but no measurable event-loop time.
WRITE_BATCH = 1024 * 1024


WritebackStarter = Callable[[int, int, int], None]


def _writeback_starter() -> WritebackStarter | None:
    """Linux's `sync_file_range(SYNC_FILE_RANGE_WRITE)`: start writing a range of a file to
    disk without waiting for it, so the fsync before a commit has little left to do (1 GiB
    left to the fsync took 0.6 s of it here, 0.01 s this way). None where it does not exist.
    Only a head start: durability still comes from the fsync."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    function.restype = ctypes.c_int
    write_flag = 2  # SYNC_FILE_RANGE_WRITE

    def start(fd: int, offset: int, length: int) -> None:
        function(fd, offset, length, write_flag)  # a failure only loses the head start

    return start


def _map_os_error(exc: OSError) -> Exception:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return QuotaExceeded("the storage is full")
    return StorageError(f"storage I/O error: {exc.strerror}")


class LocalBlobWriter:
    """Streams a blob into a temporary file, one batch on its way to disk at a time.

    The file is created by the first thread job, not on the event loop: creating an inode
    can take a millisecond of CPU (see blob_ids.py), and a small blob then costs one job.
    Every thread job that uses the file descriptor is tracked in `_job`, and the descriptor
    is closed only once that job has ended, even when the request awaiting it was cancelled:
    a descriptor number closed under a running `writev` could be reused by another file.
    """

    def __init__(self, store: LocalBlobStore, temp_path: str, blob_id: str | None = None) -> None:
        self._store = store
        self._blob_id = blob_id
        self._fd: int | None = None  # opened by the first job
        self._temp_path = temp_path
        self._pending: list[bytes] = []  # written together, without copying, by `writev`
        self._pending_bytes = 0
        self._job: asyncio.Future[None] | None = None  # the batch being written, if any
        self._sent = 0  # bytes handed to the disk so far
        self._size = 0
        self._closed = False
        self._aborted = False

    @property
    def size(self) -> int:
        return self._size

    async def write(self, data: bytes) -> None:
        if self._aborted:
            raise StorageError("this upload was aborted")
        self._pending.append(bytes(data))  # no copy of a `bytes`; a mutable buffer is copied
        self._pending_bytes += len(data)
        self._size += len(data)
        if self._pending_bytes >= WRITE_BATCH:
            await self._send_batch()

    async def _send_batch(self) -> None:
        """Wait for the previous batch, then start writing the pending one."""
        await self._wait_for_job()
        if not self._pending:
            return
        pieces, length = self._pending, self._pending_bytes
        self._pending, self._pending_bytes = [], 0
        self._job = self._in_thread(self._write_batch, pieces, self._sent, length)
        self._sent += length

    def _file(self) -> int:
        if self._fd is None:
            self._fd = os.open(self._temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        return self._fd

    def _write_batch(self, pieces: list[bytes], offset: int, length: int) -> None:
        fd = self._file()
        _write_all(fd, pieces)
        if self._store.start_writeback is not None:
            self._store.start_writeback(fd, offset, length)

    def _in_thread(self, function: Callable[..., None], *args: Any) -> asyncio.Future[None]:
        return asyncio.get_running_loop().run_in_executor(None, function, *args)

    async def _wait_for_job(self) -> None:
        job, self._job = self._job, None
        if job is None:
            return
        try:
            # Shielded: a cancelled request must not forget a job that still uses the file.
            await asyncio.shield(job)
        except OSError as exc:
            raise _map_os_error(exc) from exc
        except BaseException:
            self._job = job if not job.done() else None
            raise

    async def commit(self) -> str:
        await self._wait_for_job()
        # The last batch is written by the job that makes the blob durable: a small file
        # costs one thread hand-off, not two.
        pieces, self._pending, self._pending_bytes = self._pending, [], 0
        blob_id = self._blob_id or self._store.ids.new()
        final = self._store.path_of(blob_id)
        self._job = self._in_thread(self._finish, pieces, final)
        try:
            await self._wait_for_job()
        except BaseException:
            await self.abort()
            raise
        return blob_id

    def _finish(self, pieces: list[bytes], final: Path) -> None:
        fd = self._file()
        _write_all(fd, pieces)
        if self._store.fsync:
            os.fsync(fd)
        os.close(fd)
        self._closed = True
        self._store.ensure_shard(final.parent)
        os.rename(self._temp_path, final)
        if self._store.fsync:
            fsync_dir(final.parent)

    async def abort(self) -> None:
        self._aborted = True
        self._pending, self._pending_bytes = [], 0
        job = self._job
        if job is None or job.done():
            self._release()
            return
        # Once the thread is done with the file (it may be creating it); waited for, so that
        # nothing is left when abort returns, unless the caller is cancelled meanwhile.
        job.add_done_callback(self._release_after)
        with suppress(Exception):
            await asyncio.shield(job)

    def _release_after(self, job: asyncio.Future[None]) -> None:
        if not job.cancelled():
            job.exception()  # nobody waits for it any more: an error here is already moot
        self._release()

    def _release(self) -> None:
        """Close the file and remove it, unless it became the blob."""
        if not self._closed:
            self._closed = True
            if self._fd is not None:
                os.close(self._fd)
        with suppress(FileNotFoundError):
            os.unlink(self._temp_path)


def _write_all(fd: int, pieces: list[bytes]) -> None:
    """Write every piece, in order, with as few system calls as the kernel allows."""
    views = [memoryview(p) for p in pieces if p]
    while views:
        written = os.writev(fd, views[:1024])  # IOV_MAX is at least 1024 on Linux
        while written and views:
            if written >= len(views[0]):
                written -= len(views[0])
                views.pop(0)
            else:
                views[0] = views[0][written:]
                written = 0


def _open_sized(path: str) -> tuple[int, int]:
    fd = os.open(path, os.O_RDONLY)
    try:
        return fd, os.fstat(fd).st_size
    except BaseException:
        os.close(fd)
        raise


def _populate_read_option() -> int | None:
    """Linux's `MADV_POPULATE_READ` (5.14 and later), if this kernel has it: it reads a mapped
    range in, failing with an error where a page cannot be read, rather than leaving a later
    access to kill the process with SIGBUS. None elsewhere: blobs are then only read."""
    if not sys.platform.startswith("linux"):
        return None
    option = getattr(mmap, "MADV_POPULATE_READ", 22)
    try:
        with mmap.mmap(-1, mmap.PAGESIZE) as probe:
            probe.madvise(option)
    except (OSError, ValueError):
        return None
    return option


_POPULATE_READ = _populate_read_option()


def _map_window(fd: int, length: int, offset: int) -> Piece:
    """Bytes [offset, offset + length) of a file as a view of its pages, mapped and read in by
    the calling thread: the event loop then sends them without a copy into Python (as Apache
    sends files) and without waiting for the disk. The pages are unmapped with the last view.
    Only for blobs, whose files never change, and within the file's size. A file system that
    cannot map files has them read instead."""
    assert _POPULATE_READ is not None
    base = offset - offset % mmap.ALLOCATIONGRANULARITY
    try:
        mapped = mmap.mmap(fd, offset + length - base, prot=mmap.PROT_READ, offset=base)
    except OSError:
        return os.pread(fd, length, offset)
    try:
        mapped.madvise(_POPULATE_READ)
    except BaseException:
        mapped.close()
        raise
    return memoryview(mapped)[offset - base :]


def _close_after(job: asyncio.Future[Any], fd: int) -> None:
    if not job.cancelled():
        job.exception()  # the reader has stopped: what this read returned no longer matters
    os.close(fd)


def _read_span(path: str, start: int, end: int) -> bytes:
    """Bytes [start, end) of a file, or fewer at its end: one open, one read, one close."""
    fd = os.open(path, os.O_RDONLY)
    try:
        data = os.pread(fd, end - start, start)
        if len(data) < end - start:  # a short read before the end of the file is rare
            more = [data]
            position = start + len(data)
            while position < end and (piece := os.pread(fd, end - position, position)):
                more.append(piece)
                position += len(piece)
            data = b"".join(more)
        return data
    finally:
        os.close(fd)


class LocalBlobStore:
    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = root
        self._root_text = str(root)
        self.fsync = fsync
        self.start_writeback = _writeback_starter() if fsync else None
        self._tmp = root / "tmp"
        self._tmp_text = str(self._tmp)
        self._known_shards: set[Path] = set()
        self.ids = ShardedIds()

    async def open(self) -> None:
        self._tmp.mkdir(parents=True, exist_ok=True)

    async def close(self) -> None:
        return None

    def path_of(self, blob_id: str) -> Path:
        return Path(self._file_of(blob_id))

    def _file_of(self, blob_id: str) -> str:
        """The blob's file name as text: cheaper than a `Path` for a read of a few KiB."""
        if len(blob_id) < 8 or not _HEX_DIGITS.issuperset(blob_id):
            raise NotFound("no such blob")
        return f"{self._root_text}/{blob_id[:2]}/{blob_id[2:4]}/{blob_id}"

    def ensure_shard(self, shard: Path) -> None:
        """Create a shard folder durably (its creation is fsynced in its parent)."""
        if shard in self._known_shards:
            return
        if not shard.is_dir():
            for folder in (shard.parent, shard):
                if not folder.is_dir():
                    folder.mkdir(exist_ok=True)
                    if self.fsync:
                        fsync_dir(folder.parent)
        self._known_shards.add(shard)

    async def create(self) -> LocalBlobWriter:
        return await self._writer(None)

    async def create_with_id(self, blob_id: str) -> LocalBlobWriter:
        self.path_of(blob_id)  # refuses an id that is not one of ours
        return await self._writer(blob_id)

    async def _writer(self, blob_id: str | None) -> LocalBlobWriter:
        return LocalBlobWriter(self, f"{self._tmp_text}/{secrets.token_hex(16)}", blob_id)

    def read(self, blob_id: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        return self._read(blob_id, start, end, os.pread, READ_CHUNK)

    def read_to_send(
        self, blob_id: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[Piece]:
        if _POPULATE_READ is None:
            return self.read(blob_id, start, end)
        return self._read(blob_id, start, end, _map_window, MAP_WINDOW)

    async def _read(
        self,
        blob_id: str,
        start: int,
        end: int | None,
        read_piece: Callable[[int, int, int], _P],
        piece_size: int,
    ) -> AsyncIterator[bytes | _P]:
        """Bytes [start, end): a small span in one read, a large one in pieces of
        `read_piece(fd, length, offset)`, each made in a thread while the caller sends the
        one before."""
        path = self._file_of(blob_id)
        if end is not None and end - start <= WHOLE_READ:
            # A small file (or range), the common case: one thread job, a buffer of its size.
            if end > start:
                try:
                    if end - start <= INLINE_READ:  # as nginx does: cheaper than a thread hop
                        data = _read_span(path, start, end)
                    else:
                        data = await asyncio.to_thread(_read_span, path, start, end)
                except FileNotFoundError as exc:
                    raise StorageError(f"blob {blob_id} is missing from storage") from exc
                except OSError as exc:
                    raise _map_os_error(exc) from exc
                if data:
                    yield data
            elif not await asyncio.to_thread(os.path.isfile, path):
                raise StorageError(f"blob {blob_id} is missing from storage")
            return
        try:
            fd, size = await asyncio.to_thread(_open_sized, path)
        except FileNotFoundError as exc:
            raise StorageError(f"blob {blob_id} is missing from storage") from exc
        except OSError as exc:
            raise _map_os_error(exc) from exc
        loop = asyncio.get_running_loop()
        stop = size if end is None else min(end, size)  # a file cut short ends the stream
        offsets = iter(range(start, stop, piece_size))
        job: asyncio.Future[_P] | None = None

        def read_next() -> asyncio.Future[_P] | None:
            offset = next(offsets, None)
            if offset is None:
                return None
            length = min(piece_size, stop - offset)
            return loop.run_in_executor(None, read_piece, fd, length, offset)

        try:
            job = read_next()
            while job is not None:
                try:
                    piece = await asyncio.shield(job)
                except OSError as exc:
                    raise _map_os_error(exc) from exc
                if not piece:
                    break
                job = read_next()
                yield piece
            job = None
        finally:
            if job is not None and not job.done():
                # The descriptor is closed once the thread is done with it.
                job.add_done_callback(lambda done: _close_after(done, fd))
            else:
                os.close(fd)

    async def delete(self, blob_id: str) -> None:
        try:
            self.path_of(blob_id).unlink(missing_ok=True)
        except NotFound:
            return

    async def exists(self, blob_id: str) -> bool:
        try:
            return self.path_of(blob_id).is_file()
        except NotFound:
            return False

    async def list_blobs(self, older_than: float | None = None) -> AsyncIterator[str]:
        for first in sorted(self.root.glob("[0-9a-f][0-9a-f]")):
            for second in sorted(first.glob("[0-9a-f][0-9a-f]")):
                for blob in second.iterdir():
                    if older_than is not None and blob.stat().st_mtime >= older_than:
                        continue
                    yield blob.name

    async def clean_temporary(self, older_than: float) -> list[str]:
        return remove_stale_files(self._tmp, older_than)


def remove_stale_files(folder: Path, older_than: float) -> list[str]:
    """Remove the files of `folder` last written before `older_than` (a crash's leftovers)."""
    removed = []
    for temp in folder.iterdir():
        try:
            if temp.stat().st_mtime < older_than:
                temp.unlink()
                removed.append(temp.name)
        except FileNotFoundError:
            continue
    return removed
