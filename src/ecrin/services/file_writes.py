"""Writing a file's contents (uploads, and the blobs they leave behind) and its modification
time, for `FileService` (`files.py`, which states the crash-safety argument these follow);
the values a write is checked against and returns; how many previous versions are kept."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from ecrin.core.clock import Clock
from ecrin.core.errors import BadRequest, Conflict, EcrinError, MethodNotAllowed, PreconditionFailed
from ecrin.core.model import Lock, Node, NodeKind, User
from ecrin.core.paths import DavPath
from ecrin.core.permissions import Permission
from ecrin.core.retention import versions_to_drop
from ecrin.db.protocol import MetadataStore, MetadataTransaction
from ecrin.services.checksums import ExpectedChecksum, StreamingDigests
from ecrin.services.locks import LockCheck, home_locks, locks_in_view
from ecrin.services.notifications import ChangeNotifier
from ecrin.services.quota import charge_usage, check_quota
from ecrin.services.tree import Resolved, resolve, resolve_existing
from ecrin.storage.blob_ids import ShardedIds
from ecrin.storage.protocol import BlobStore

log = logging.getLogger(__name__)

# Small bodies of users without a quota are read before any check: the commit checks
# everything anyway, and a refused small body costs less than the extra transaction.
SMALL_BODY = 256 * 1024


@dataclass(frozen=True, slots=True)
class WriteConditions:
    """Preconditions evaluated inside the commit (RFC 9110), not before a slow transfer."""

    if_match: tuple[str, ...] | None = None  # etags; ("*",) means "must exist"
    if_none_match: tuple[str, ...] | None = None  # ("*",) means "must not exist"

    def check(self, current: Node | None) -> None:
        etag = current.etag if current else None
        if self.if_match is not None and (
            etag is None or ("*" not in self.if_match and etag not in self.if_match)
        ):
            raise PreconditionFailed("If-Match does not match the current version")
        if (
            self.if_none_match is not None
            and etag is not None
            and ("*" in self.if_none_match or etag in self.if_none_match)
        ):
            raise PreconditionFailed("If-None-Match: the resource exists in that version")


@dataclass(frozen=True, slots=True)
class UploadResult:
    node: Node
    created: bool


@dataclass(frozen=True, slots=True)
class UploadTarget:
    """What a PUT checks before it reads the body, read in one transaction
    (`FileService.upload_target`)."""

    existing: Node | None  # the node at the path, if the user may read it
    locks: list[Lock]  # the active locks bearing on the path (`locks_in_view`)
    # Why the upload would be refused, if it would: the caller raises it once it has checked
    # what comes first (the If header, locks), then uploads with `checked=True`.
    refusal: EcrinError | None


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    max_versions: int = 0  # 0: no count limit (thinning still applies)
    max_version_age: float = 0.0  # seconds; 0: no age limit


class FileWrites:
    """The writes of `FileService` that store a file's contents or times (it exposes these
    methods as its own)."""

    def __init__(
        self,
        metadata: MetadataStore,
        blobs: BlobStore,
        clock: Clock,
        retention: RetentionPolicy,
        notifier: ChangeNotifier,
        inline_max: int = 0,
    ) -> None:
        self.metadata = metadata
        self.blobs = blobs
        self.inline_max = inline_max  # bodies up to this size go in the database
        self.inline_ids = ShardedIds()
        self.clock = clock
        self.retention = retention
        self.notifier = notifier

    async def check_upload_allowed(self, user: User, path: DavPath, length: int | None) -> None:
        """Refuse early, before reading a body: no parent, no right, a folder in the way, no
        quota."""
        async with self.metadata.read() as tx:
            await _check_upload(tx, await resolve(tx, user, path, self.clock.now()), length)

    async def upload_target(self, user: User, path: DavPath, length: int | None) -> UploadTarget:
        """`lookup`, the locks bearing on the path and `check_upload_allowed`, in one
        transaction."""
        now = self.clock.now()
        async with self.metadata.read() as tx:
            try:
                found = await resolve(tx, user, path, now)
            except Conflict as exc:
                return UploadTarget(None, await home_locks(tx, user, now), exc)
            active = await locks_in_view(tx, user, found, now)
            existing = found.node if Permission.READ in found.permissions else None
            try:
                await _check_upload(tx, found, length)
            except EcrinError as exc:
                return UploadTarget(existing, active, exc)
            return UploadTarget(existing, active, None)

    async def upload(
        self,
        user: User,
        path: DavPath,
        body: AsyncIterator[bytes],
        *,
        length: int | None = None,
        mtime: float | None = None,
        content_type: str | None = None,
        checksums: list[ExpectedChecksum] | None = None,
        conditions: WriteConditions | None = None,
        checked: bool = False,
        lock_check: LockCheck | None = None,
    ) -> UploadResult:
        """Store `body` at `path`. `checked`: the caller has had `upload_target` check it, or
        leaves every check to the commit, `lock_check` included."""
        small = length is not None and length <= SMALL_BODY and user.quota_bytes is None
        if not (checked or small):
            await self.check_upload_allowed(user, path, length)
        digests = StreamingDigests(checksums or [])
        content = None
        if self.inline_max and length is not None and length <= self.inline_max:
            content = await _read_whole(body, length, digests)
            blob_id, size = self.inline_ids.new(), length
        else:
            blob_id, size = await self._store(body, length, digests)
        try:
            return await self.commit_blob(
                user,
                path,
                blob_id,
                size,
                digests.sha256,
                mtime=mtime,
                content_type=content_type,
                conditions=conditions,
                checksums=digests.client_checksums(),
                lock_check=lock_check,
                content=content,
            )
        except BaseException:
            if content is None:
                await self.blobs.delete(blob_id)
            raise

    async def _store(
        self, body: AsyncIterator[bytes], length: int | None, digests: StreamingDigests
    ) -> tuple[str, int]:
        """Stream `body` into a new durable blob of the store; its id and size."""
        writer = await self.blobs.create()
        try:
            async for chunk in body:
                await digests.feed(chunk)
                await writer.write(chunk)
            _check_length(writer.size, length)
            await digests.finish()
            digests.verify()
            return await writer.commit(), writer.size
        except BaseException:
            await writer.abort()
            raise

    async def commit_blob(
        self,
        user: User,
        path: DavPath,
        blob_id: str,
        size: int,
        sha256: str,
        *,
        mtime: float | None = None,
        content_type: str | None = None,
        conditions: WriteConditions | None = None,
        checksums: str | None = None,
        lock_check: LockCheck | None = None,
        content: bytes | None = None,
    ) -> UploadResult:
        """Reference a durable blob at `path`, atomically with every precondition check
        (`lock_check` too, given the locks bearing on the path, before any other refusal), or, with
        `content`, record a new blob holding these bytes (`contents.py`).

        The previous contents, if any, become a version (the blob reference moves; no bytes
        are copied)."""
        now = self.clock.now()
        released: list[str] = []
        async with self.metadata.write(deferrable_changes=True) as tx:
            try:
                found = await _drop_aside(tx, await resolve(tx, user, path, now))
            except Conflict:
                if lock_check is not None:
                    lock_check(await home_locks(tx, user, now), True)
                raise
            if lock_check is not None:
                lock_check(await locks_in_view(tx, user, found, now), found.node is None)
            _check_file_target(found)
            current = found.node
            (conditions or WriteConditions()).check(current)
            owner_id = found.storage_owner_id
            delta = size - (current.size if current else 0)
            await charge_usage(tx, owner_id, delta, deferrable=True)
            await tx.insert_blob(blob_id, size, sha256, now, content)
            # The file is no ancestor of anything: what is written here is what is stored.
            if current is None:
                stored = await tx.insert_node(
                    parent_id=found.parent.id,
                    owner_id=owner_id,
                    name=found.path.name,
                    kind=NodeKind.FILE,
                    size=size,
                    mtime=mtime or now,
                    now=now,
                    blob_id=blob_id,
                    sha256=sha256,
                    content_type=content_type,
                    checksums=checksums,
                )
            else:
                if current.blob_id:
                    await tx.insert_version(current, now, user.id)
                    released = await self._apply_retention(tx, current.id, now)
                stored = await tx.update_file(
                    current.id,
                    size=size,
                    mtime=mtime or now,
                    blob_id=blob_id,
                    sha256=sha256,
                    content_type=content_type,
                    checksums=checksums,
                )
            # Its folder's ancestors are not read past this point: with the other uploads of
            # its group commit, their change is propagated once, before the commit.
            await tx.propagate_change(found.parent.id, delta, deferrable=True)
        await self.notifier.changed(user, found.path, stored.etag)
        await self.discard(released)
        return UploadResult(stored, created=current is None)

    async def _apply_retention(
        self, tx: MetadataTransaction, node_id: int, now: float
    ) -> list[str]:
        versions = await tx.versions_of(node_id)
        doomed = versions_to_drop(
            [(v.id, v.created_at) for v in versions],
            now,
            max_count=self.retention.max_versions,
            max_age=self.retention.max_version_age,
        )
        released: list[str] = []
        for version_id in doomed:
            released += await tx.delete_version(version_id)
        return released

    async def set_mtime(self, user: User, path: DavPath, mtime: float) -> None:
        async with self.metadata.write() as tx:
            found = await resolve_existing(tx, user, path, self.clock.now())
            found.require(Permission.UPDATE)
            node = found.existing()
            await tx.set_mtime(node.id, mtime)
            await tx.propagate_change(node.id)
            changed = await tx.node(node.id)
        await self.notifier.changed(user, path, changed.etag if changed else None)

    async def discard(self, blob_ids: list[str]) -> None:
        """Remove blobs no metadata references any more (after the commit that dropped them)."""
        for blob_id in blob_ids:
            try:
                await self.blobs.delete(blob_id)
            except EcrinError:
                log.warning("could not remove unreferenced blob %s; `ecrin check` will", blob_id)


async def _read_whole(body: AsyncIterator[bytes], length: int, digests: StreamingDigests) -> bytes:
    """A small body, read whole (never more than `length` bytes held)."""
    pieces: list[bytes] = []
    size = 0
    async for chunk in body:
        size += len(chunk)
        if size > length:
            raise BadRequest(f"the body is longer than the {length} bytes announced")
        await digests.feed(chunk)
        pieces.append(chunk)
    _check_length(size, length)
    await digests.finish()
    digests.verify()
    return b"".join(pieces)


def _check_length(size: int, length: int | None) -> None:
    if length is not None and size != length:
        raise BadRequest(f"the body has {size} bytes but {length} were announced")


async def _drop_aside(tx: MetadataTransaction, found: Resolved) -> Resolved:
    """In a folder its visitor may add to but not read (a file drop), an upload never
    replaces nor reveals an existing file: it lands beside it, under a free name."""
    if found.node is None or Permission.READ in found.parent_permissions:
        return found
    stem, dot, ext = found.path.name.rpartition(".")
    counter = 1
    while True:
        counter += 1
        name = f"{stem} ({counter}).{ext}" if dot and stem else f"{found.path.name} ({counter})"
        if await tx.child(found.parent.id, name) is None:
            return dataclasses.replace(found, path=found.path.parent.child(name), node=None)


async def _check_upload(tx: MetadataTransaction, found: Resolved, length: int | None) -> None:
    found = await _drop_aside(tx, found)
    _check_file_target(found)
    if length is not None:
        current = found.node.size if found.node else 0
        await check_quota(tx, found.storage_owner_id, length - current)


def _check_file_target(found: Resolved) -> None:
    if found.path.is_root or (found.node is not None and found.node.is_folder):
        raise MethodNotAllowed("cannot PUT onto a folder")
    if found.node is None:
        found.require(Permission.CREATE, on_parent=True)
    else:
        found.require(Permission.UPDATE)
