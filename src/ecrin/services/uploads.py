"""Chunked uploads: a file sent in pieces, assembled atomically when the client says so.

One store serves Nextcloud's chunking "NG"/v1 (desktop 3.x, ownCloud desktop, rclone) and
chunking v2 (newer desktops: numbered chunks, a Destination on every request). A session
and its chunks live in the metadata store; each chunk's bytes are an ordinary durable blob,
so an interrupted upload resumes after a restart. Assembly streams the chunks in order into
one new blob, verifies its size and checksum, then references it through
`FileService.commit_blob`: the file appears whole, in one transaction, or not at all.
Sessions idle longer than the configured lifetime expire with their chunks.

Only one request assembles an upload at a time, whichever process it reaches: assembly
holds a lease named after the session (renewed while it runs, ended by itself if the
process dies), and cancelling or expiring a session being assembled is refused or skipped.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from ecrin.coordination.leases import holding
from ecrin.coordination.local import InProcessCoordination
from ecrin.coordination.protocol import Coordination
from ecrin.core.clock import Clock
from ecrin.core.errors import (
    BadRequest,
    ChecksumMismatch,
    EcrinError,
    Forbidden,
    Locked,
    MethodNotAllowed,
    NotFound,
    QuotaExceeded,
    StorageError,
)
from ecrin.core.model import UploadChunk, UploadSession, User
from ecrin.core.paths import DavPath
from ecrin.db.protocol import MetadataStore, MetadataTransaction
from ecrin.services.checksums import ExpectedChecksum, StreamingDigests
from ecrin.services.chunk_order import assembly_order
from ecrin.services.file_writes import UploadResult, WriteConditions
from ecrin.services.files import FileService
from ecrin.storage.protocol import BlobStore

log = logging.getLogger(__name__)

MAX_SESSIONS_PER_USER = 1_000
MAX_CHUNKS_PER_UPLOAD = 100_000
MAX_V2_CHUNK_NUMBER = 10_000  # chunking v2 numbers its chunks 1..10000
ASSEMBLE_NAME = ".file"  # MOVE <upload>/.file assembles the upload
ASSEMBLY_LEASE_SECONDS = 60.0  # renewed every third of it while the assembly runs

_TRANSFER_ID = re.compile(r"^[A-Za-z0-9._-]{1,200}$")
_CHUNK_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def check_transfer_id(name: str) -> str:
    if not _TRANSFER_ID.match(name) or name in (".", ".."):
        raise BadRequest("upload ids are 1-200 letters, digits, '.', '_' or '-'")
    return name


def check_chunk_name(name: str) -> str:
    if not _CHUNK_NAME.match(name) or name in (".", "..", ASSEMBLE_NAME):
        raise BadRequest("chunk names are 1-64 letters, digits, '.', '_' or '-'")
    return name


@dataclass(frozen=True, slots=True)
class ChunkWrite:
    """What the client said about one chunk besides its bytes."""

    length: int | None = None  # Content-Length
    offset: int | None = None  # OC-Chunk-Offset
    total_length: int | None = None  # OC-Total-Length (chunking v2 sends it on every chunk)
    destination: DavPath | None = None  # chunking v2's Destination


@dataclass(frozen=True, slots=True)
class Assembly:
    """The final MOVE: where the file goes and what must hold when it lands."""

    destination: DavPath
    total_length: int | None = None
    mtime: float | None = None
    content_type: str | None = None
    checksums: tuple[ExpectedChecksum, ...] = ()
    conditions: WriteConditions | None = None


class ChunkedUploadService:
    def __init__(
        self,
        metadata: MetadataStore,
        blobs: BlobStore,
        files: FileService,
        clock: Clock,
        *,
        lifetime_seconds: float,
        coordination: Coordination | None = None,
    ) -> None:
        self.metadata = metadata
        self.blobs = blobs
        self.files = files
        self.clock = clock
        self.lifetime_seconds = lifetime_seconds
        self.coordination: Coordination = coordination or InProcessCoordination()

    # --- sessions ------------------------------------------------------------------------

    async def begin(
        self,
        user: User,
        transfer_id: str,
        *,
        destination: DavPath | None = None,
        total_length: int | None = None,
    ) -> UploadSession:
        """Open an upload (MKCOL). 405 if it exists; 507 at once if the file cannot fit."""
        name = check_transfer_id(transfer_id)
        if total_length is not None:
            await self._check_room_for_file(user, destination, total_length)
        async with self.metadata.write() as tx:
            if len(await tx.upload_sessions(user.id)) >= MAX_SESSIONS_PER_USER:
                raise Forbidden(
                    f"at most {MAX_SESSIONS_PER_USER} unfinished uploads; cancel some first"
                )
            if await tx.upload_session(user.id, name) is not None:
                raise MethodNotAllowed(f"the upload {name} already exists")
            return await tx.insert_upload_session(
                user.id,
                name,
                None if destination is None else destination.segments,
                total_length,
                self.clock.now(),
            )

    async def sessions(self, user: User) -> list[UploadSession]:
        async with self.metadata.read() as tx:
            return await tx.upload_sessions(user.id)

    async def chunks(self, user: User, transfer_id: str) -> tuple[UploadSession, list[UploadChunk]]:
        async with self.metadata.read() as tx:
            session = await tx.upload_session(user.id, transfer_id)
            if session is None:
                raise NotFound(f"no upload {transfer_id}")
            return session, await tx.upload_chunks(session.id)

    async def abort(self, user: User, transfer_id: str) -> None:
        """Cancel an upload (DELETE) and free its chunks."""
        async with self.metadata.write() as tx:
            session = await tx.upload_session(user.id, transfer_id)
            if session is None:
                raise NotFound(f"no upload {transfer_id}")
            if await self.coordination.is_held(_assembly_lease(session.id)):
                raise Locked("this upload is being assembled")
            released = await tx.delete_upload_session(session.id)
        await self.files.discard(released)

    # --- chunks --------------------------------------------------------------------------

    async def put_chunk(
        self,
        user: User,
        transfer_id: str,
        chunk_name: str,
        body: AsyncIterator[bytes],
        write: ChunkWrite,
    ) -> tuple[UploadChunk, bool]:
        """Store one chunk durably (a repeated name replaces it). Returns (chunk, created)."""
        name = check_chunk_name(chunk_name)
        session, chunks = await self.chunks(user, transfer_id)
        if session.destination is not None or write.destination is not None:
            _check_v2_chunk_name(name)
        if write.total_length is not None and write.destination is not None:
            await self._check_room_for_file(user, write.destination, write.total_length)
        if write.length is not None:
            async with self.metadata.read() as tx:
                await _check_room_for_chunk(tx, user, session, chunks, name, write.length)

        writer = await self.blobs.create()
        try:
            async for data in body:
                await writer.write(data)
            if write.length is not None and writer.size != write.length:
                raise BadRequest(
                    f"the chunk has {writer.size} bytes but {write.length} were announced"
                )
            blob_id = await writer.commit()
        except BaseException:
            await writer.abort()
            raise
        chunk = UploadChunk(session.id, name, blob_id, writer.size, write.offset, self.clock.now())
        try:
            async with self.metadata.write() as tx:
                current = await tx.upload_session(user.id, session.name)
                if current is None or current.id != session.id:
                    raise NotFound("the upload was cancelled while this chunk arrived")
                chunks = await tx.upload_chunks(session.id)
                await _check_room_for_chunk(tx, user, session, chunks, name, chunk.size)
                replaced = await tx.put_upload_chunk(chunk)
                await tx.touch_upload_session(session.id, chunk.created_at)
        except BaseException:
            await self.blobs.delete(blob_id)
            raise
        if replaced is not None:
            await self.files.discard([replaced])
        return chunk, replaced is None

    async def delete_chunk(self, user: User, transfer_id: str, chunk_name: str) -> None:
        async with self.metadata.write() as tx:
            session = await tx.upload_session(user.id, transfer_id)
            if session is None:
                raise NotFound(f"no upload {transfer_id}")
            blob_id = await tx.delete_upload_chunk(session.id, chunk_name)
            if blob_id is None:
                raise NotFound(f"no chunk {chunk_name} in upload {transfer_id}")
            await tx.touch_upload_session(session.id, self.clock.now())
        await self.files.discard([blob_id])

    # --- assembly ------------------------------------------------------------------------

    async def assemble(self, user: User, transfer_id: str, assembly: Assembly) -> UploadResult:
        """Join the chunks into the destination file (MOVE .file), atomically.

        A missing chunk or a size different from the announced total is refused (400) and
        the session is kept, so the client can still send what is missing. A checksum
        mismatch means corrupt chunks: the session is dropped so the client starts over.
        """
        session, _ = await self.chunks(user, transfer_id)
        lease = _assembly_lease(session.id)
        async with holding(self.coordination, lease, ASSEMBLY_LEASE_SECONDS) as held:
            if not held:
                raise Locked("this upload is already being assembled")
            # The chunks as they are now that no one else can assemble (or cancel) them.
            session, chunks = await self.chunks(user, transfer_id)
            if _assembly_lease(session.id) != lease:
                raise NotFound(f"the upload {transfer_id} was replaced meanwhile")
            try:
                result = await self._assemble(user, session, chunks, assembly)
            except ChecksumMismatch:
                await self._drop(session)
                raise
            try:  # still under the lease: a second MOVE finds no upload, not its chunks
                await self._drop(session)
            except EcrinError:
                log.warning("upload %s assembled but not removed; it will expire", session.id)
        return result

    async def _assemble(
        self, user: User, session: UploadSession, chunks: list[UploadChunk], assembly: Assembly
    ) -> UploadResult:
        ordered = assembly_order(chunks)
        size = sum(chunk.size for chunk in ordered)
        expected = assembly.total_length
        if expected is None:
            expected = session.total_length
        if expected is not None and size != expected:
            raise BadRequest(f"the chunks on the server sum up to {size} bytes, not {expected}")
        if not ordered and expected is None:
            raise BadRequest("the upload has no chunks")
        await self.files.check_upload_allowed(user, assembly.destination, size)

        digests = StreamingDigests(list(assembly.checksums))
        writer = await self.blobs.create()
        try:
            for chunk in ordered:
                async for data in self.blobs.read(chunk.blob_id):
                    await digests.feed(data)  # hashed in a thread while the next piece is read
                    await writer.write(data)
            await digests.finish()
            if writer.size != size:
                raise StorageError(f"the chunks hold {writer.size} bytes on storage, not {size}")
            digests.verify()
            blob_id = await writer.commit()
        except BaseException:
            await writer.abort()
            raise
        try:
            return await self.files.commit_blob(
                user,
                assembly.destination,
                blob_id,
                size,
                digests.sha256,
                mtime=assembly.mtime,
                content_type=assembly.content_type,
                conditions=assembly.conditions,
                checksums=digests.client_checksums(),
            )
        except BaseException:
            await self.blobs.delete(blob_id)
            raise

    # --- expiry --------------------------------------------------------------------------

    async def expired(self) -> list[str]:
        """Sessions idle for longer than the lifetime, as 'user id/upload id' (read only)."""
        async with self.metadata.read() as tx:
            idle = await tx.idle_upload_sessions(self.clock.now() - self.lifetime_seconds)
        return [f"{session.user_id}/{session.name}" for session in idle]

    async def expire(self) -> list[str]:
        """Remove sessions idle for longer than the lifetime; returns 'user id/upload id'."""
        cutoff = self.clock.now() - self.lifetime_seconds
        async with self.metadata.read() as tx:
            idle = await tx.idle_upload_sessions(cutoff)
        removed: list[str] = []
        for session in idle:
            if await self.coordination.is_held(_assembly_lease(session.id)):
                continue
            async with self.metadata.write() as tx:
                current = await tx.upload_session(session.user_id, session.name)
                if current is None or current.id != session.id or current.touched_at >= cutoff:
                    continue
                released = await tx.delete_upload_session(session.id)
            await self.files.discard(released)
            removed.append(f"{session.user_id}/{session.name}")
        if removed:
            log.info("removed %d expired chunked uploads", len(removed))
        return removed

    # --- helpers -------------------------------------------------------------------------

    async def _check_room_for_file(
        self, user: User, destination: DavPath | None, total_length: int
    ) -> None:
        if destination is not None:
            await self.files.check_upload_allowed(user, destination, total_length)
            return
        # Without a destination the size of a file it may replace is unknown: refuse only
        # what could never fit.
        async with self.metadata.read() as tx:
            fresh = await tx.user_by_id(user.id) or user
        if fresh.quota_bytes is not None and total_length > fresh.quota_bytes:
            raise QuotaExceeded(
                f"a file of {total_length} bytes exceeds the quota of {fresh.quota_bytes} bytes"
            )

    async def _drop(self, session: UploadSession) -> None:
        async with self.metadata.write() as tx:
            released = await tx.delete_upload_session(session.id)
        await self.files.discard(released)


async def _check_room_for_chunk(
    tx: MetadataTransaction,
    user: User,
    session: UploadSession,
    chunks: list[UploadChunk],
    name: str,
    size: int,
) -> None:
    """Bound what unfinished uploads hold: chunk count, and the user's quota if any."""
    previous = next((chunk for chunk in chunks if chunk.name == name), None)
    if previous is None and len(chunks) >= MAX_CHUNKS_PER_UPLOAD:
        raise BadRequest(f"an upload has at most {MAX_CHUNKS_PER_UPLOAD} chunks")
    if session.total_length is not None and size > session.total_length:
        raise BadRequest(
            f"a chunk of {size} bytes is larger than the whole file ({session.total_length})"
        )
    fresh = await tx.user_by_id(user.id) or user
    if fresh.quota_bytes is None:
        return
    pending = await tx.pending_upload_bytes(user.id) - (previous.size if previous else 0)
    if pending + size > fresh.quota_bytes:
        raise QuotaExceeded(
            f"unfinished uploads would hold {pending + size} bytes, more than the quota "
            f"of {fresh.quota_bytes} bytes"
        )


def _assembly_lease(session_id: int) -> str:
    return f"upload-assembly:{session_id}"


def _check_v2_chunk_name(name: str) -> None:
    if not name.isdigit() or not 1 <= int(name) <= MAX_V2_CHUNK_NUMBER:
        raise BadRequest(f"chunking v2 numbers chunks from 1 to {MAX_V2_CHUNK_NUMBER}")
