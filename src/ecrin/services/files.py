"""File and folder operations on a user's home: the verbs every protocol adapter uses.

The crash-safety argument, for every write:
1. new contents stream into a blob writer; `commit()` fsyncs and renames them into place;
2. one metadata transaction then checks the preconditions (If-Match, quota, parent still
   there), references the blob, bumps the ancestors' revisions and adjusts usage;
3. only after that commit are blobs that lost their last reference removed.
A crash before 2 leaves an orphan blob (collected by `ecrin check`); a crash after 2 leaves
at most an unreferenced blob file; the previous version stays readable until 2 commits.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from ecrin.core.clock import Clock
from ecrin.core.errors import (
    BadRequest,
    Conflict,
    EcrinError,
    Forbidden,
    MethodNotAllowed,
    PreconditionFailed,
    QuotaExceeded,
)
from ecrin.core.model import Node, NodeKind, User
from ecrin.core.paths import DavPath
from ecrin.db.protocol import MetadataStore, MetadataTransaction
from ecrin.services.checksums import ExpectedChecksum, StreamingDigests
from ecrin.services.tree import Resolved, resolve, resolve_existing
from ecrin.storage.protocol import BlobStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WriteConditions:
    """Preconditions evaluated inside the commit (RFC 7232), not before a slow transfer."""

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


def _check_quota(user: User, extra_bytes: int) -> None:
    quota = user.quota_bytes
    if quota is not None and extra_bytes > 0 and user.used_bytes + extra_bytes > quota:
        raise QuotaExceeded(
            f"storing {extra_bytes} more bytes would exceed the quota of "
            f"{user.quota_bytes} bytes ({user.used_bytes} used)"
        )


class FileService:
    def __init__(self, metadata: MetadataStore, blobs: BlobStore, clock: Clock) -> None:
        self.metadata = metadata
        self.blobs = blobs
        self.clock = clock

    # --- reading -------------------------------------------------------------------------

    async def stat(self, user: User, path: DavPath) -> Node:
        async with self.metadata.read() as tx:
            return (await resolve_existing(tx, user, path)).existing()

    async def lookup(self, user: User, path: DavPath) -> Node | None:
        """The node at `path`, or None if it or a parent does not exist."""
        async with self.metadata.read() as tx:
            try:
                return (await resolve(tx, user, path)).node
            except Conflict:
                return None

    async def list_folder(self, user: User, path: DavPath) -> tuple[Node, list[Node]]:
        async with self.metadata.read() as tx:
            node = (await resolve_existing(tx, user, path)).existing()
            return node, (await tx.children(node.id) if node.is_folder else [])

    def read(self, node: Node, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        if node.blob_id is None:
            raise MethodNotAllowed("folders have no contents")
        return self.blobs.read(node.blob_id, start, end)

    # --- writing -------------------------------------------------------------------------

    async def check_upload_allowed(self, user: User, path: DavPath, length: int | None) -> None:
        """Refuse early, before reading a body: no parent, a folder in the way, no quota."""
        async with self.metadata.read() as tx:
            found = await resolve(tx, user, path)
            if path.is_root or (found.node is not None and found.node.is_folder):
                raise MethodNotAllowed("cannot PUT onto a folder")
            fresh = await tx.user_by_id(user.id) or user
        if length is not None:
            _check_quota(fresh, length - (found.node.size if found.node else 0))

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
    ) -> UploadResult:
        await self.check_upload_allowed(user, path, length)
        digests = StreamingDigests(checksums or [])
        writer = await self.blobs.create()
        try:
            async for chunk in body:
                digests.update(chunk)
                await writer.write(chunk)
            if length is not None and writer.size != length:
                raise BadRequest(f"the body has {writer.size} bytes but {length} were announced")
            digests.verify()
            blob_id = await writer.commit()
        except BaseException:
            await writer.abort()
            raise
        try:
            return await self.commit_blob(
                user,
                path,
                blob_id,
                writer.size,
                digests.sha256,
                mtime=mtime,
                content_type=content_type,
                conditions=conditions,
                checksums=digests.client_checksums(),
            )
        except BaseException:
            await self.blobs.delete(blob_id)
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
    ) -> UploadResult:
        """Reference a durable blob at `path`, atomically with every precondition check."""
        now = self.clock.now()
        released: list[str] = []
        async with self.metadata.write() as tx:
            found = await resolve(tx, user, path)
            current = found.node
            if path.is_root or (current is not None and current.is_folder):
                raise MethodNotAllowed("cannot PUT onto a folder")
            (conditions or WriteConditions()).check(current)
            fresh = await tx.user_by_id(user.id) or user
            _check_quota(fresh, size - (current.size if current else 0))
            await tx.insert_blob(blob_id, size, sha256, now)
            if current is None:
                node = await tx.insert_node(
                    parent_id=found.parent.id,
                    owner_id=user.id,
                    name=path.name,
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
                await tx.update_file(
                    current.id,
                    size=size,
                    mtime=mtime or now,
                    blob_id=blob_id,
                    sha256=sha256,
                    content_type=content_type,
                    checksums=checksums,
                )
                if current.blob_id:
                    released = await tx.release_blob(current.blob_id)
            delta = size - (current.size if current else 0)
            await tx.bump_revisions(found.ancestor_ids, delta)
            await tx.add_usage(user.id, delta)
            stored = await tx.node(current.id if current else node.id)
            assert stored is not None
        await self._discard(released)
        return UploadResult(stored, created=current is None)

    async def make_folder(self, user: User, path: DavPath) -> Node:
        now = self.clock.now()
        async with self.metadata.write() as tx:
            found = await resolve(tx, user, path)
            if found.node is not None:
                raise MethodNotAllowed(f"{path} already exists")
            node = await tx.insert_node(
                parent_id=found.parent.id,
                owner_id=user.id,
                name=path.name,
                kind=NodeKind.FOLDER,
                size=0,
                mtime=now,
                now=now,
            )
            await tx.bump_revisions(found.ancestor_ids)
            return node

    async def set_mtime(self, user: User, path: DavPath, mtime: float) -> None:
        async with self.metadata.write() as tx:
            found = await resolve_existing(tx, user, path)
            await tx.set_mtime(found.existing().id, mtime)
            await tx.bump_revisions([*found.ancestor_ids, found.existing().id])

    async def delete(self, user: User, path: DavPath) -> None:
        if path.is_root:
            raise Forbidden("the home folder cannot be deleted")
        async with self.metadata.write() as tx:
            found = await resolve_existing(tx, user, path)
            released = await self._delete_in(tx, user, found)
        await self._discard(released)

    async def _delete_in(self, tx: MetadataTransaction, user: User, found: Resolved) -> list[str]:
        node = found.existing()
        released = await tx.delete_subtree(node.id)
        await tx.bump_revisions(found.ancestor_ids, -node.size)
        await tx.add_usage(user.id, -node.size)
        return released

    async def move(
        self, user: User, source: DavPath, destination: DavPath, *, overwrite: bool
    ) -> bool:
        """Rename or move; O(depth) whatever lies below. Returns True if created."""
        self._check_transfer(source, destination)
        released: list[str] = []
        async with self.metadata.write() as tx:
            src = await resolve_existing(tx, user, source)
            dst = await resolve(tx, user, destination)
            created = dst.node is None
            if dst.node is not None:
                if not overwrite:
                    raise PreconditionFailed(f"{destination} exists and Overwrite is F")
                released = await self._delete_in(tx, user, dst)
                dst = await resolve(tx, user, destination)
            node = src.existing()
            await tx.move_node(node.id, dst.parent.id, destination.name)
            common = set(src.ancestor_ids) & set(dst.ancestor_ids)
            await tx.bump_revisions(common)
            await tx.bump_revisions(set(src.ancestor_ids) - common, -node.size)
            await tx.bump_revisions(set(dst.ancestor_ids) - common, node.size)
        await self._discard(released)
        return created

    async def copy(
        self,
        user: User,
        source: DavPath,
        destination: DavPath,
        *,
        overwrite: bool,
        recursive: bool = True,
    ) -> bool:
        """Copy a file or a tree; bytes are shared, never duplicated. True if created."""
        self._check_transfer(source, destination)
        released: list[str] = []
        now = self.clock.now()
        async with self.metadata.write() as tx:
            src = await resolve_existing(tx, user, source)
            dst = await resolve(tx, user, destination)
            created = dst.node is None
            entries = await tx.subtree(src.existing().id)
            if not recursive:
                entries = entries[:1]
            fresh = await tx.user_by_id(user.id) or user
            size = sum(n.size for n, _ in entries if n.kind is NodeKind.FILE)
            replaced = 0
            if dst.node is not None:
                if not overwrite:
                    raise PreconditionFailed(f"{destination} exists and Overwrite is F")
                replaced = dst.node.size
                released = await self._delete_in(tx, user, dst)
                dst = await resolve(tx, user, destination)
            _check_quota(fresh, size - replaced)
            new_ids: dict[tuple[str, ...], int] = {}
            for node, relative in entries:
                parent_id = dst.parent.id if not relative else new_ids[relative[:-1]]
                copy = await tx.insert_node(
                    parent_id=parent_id,
                    owner_id=user.id,
                    name=destination.name if not relative else node.name,
                    kind=node.kind,
                    size=node.size if node.kind is NodeKind.FILE or recursive else 0,
                    mtime=node.mtime,
                    now=now,
                    blob_id=node.blob_id,
                    sha256=node.sha256,
                    content_type=node.content_type,
                    checksums=node.checksums,
                )
                if node.blob_id:
                    await tx.retain_blob(node.blob_id)
                for prop in await tx.properties(node.id):
                    await tx.set_property(copy.id, prop)
                new_ids[relative] = copy.id
            await tx.bump_revisions(dst.ancestor_ids, size)
            await tx.add_usage(user.id, size)
        await self._discard(released)
        return created

    @staticmethod
    def _check_transfer(source: DavPath, destination: DavPath) -> None:
        if source.is_root or destination.is_root:
            raise Forbidden("the home folder cannot be moved, copied or replaced")
        if source == destination:
            raise Forbidden("source and destination are the same")
        if source.is_ancestor_of(destination):
            raise Conflict("cannot move or copy a folder into itself")
        if destination.is_ancestor_of(source):
            raise Conflict("cannot replace a folder with something inside it")

    async def _discard(self, blob_ids: list[str]) -> None:
        """Remove blobs no metadata references any more (after the commit that dropped them)."""
        for blob_id in blob_ids:
            try:
                await self.blobs.delete(blob_id)
            except EcrinError:
                log.warning("could not remove unreferenced blob %s; `ecrin check` will", blob_id)
