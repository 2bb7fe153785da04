"""File and folder operations in a user's tree (their home and the shares mounted in it).

The crash-safety argument, for every write:
1. new contents stream into a blob writer; `commit()` fsyncs and renames them into place;
2. one metadata transaction then checks the preconditions (If-Match, quota, permissions,
   parent still there), references the blob, bumps the ancestors' revisions and adjusts
   usage; the previous contents become a version in that same transaction;
3. only after that commit are blobs that lost their last reference removed.
A crash before 2 leaves an orphan blob (collected by `ecrin check`); a crash after 2 leaves
at most an unreferenced blob file; the previous version stays readable until 2 commits.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from operator import itemgetter
from typing import NamedTuple

from ecrin.core.clock import Clock
from ecrin.core.errors import (
    BadRequest,
    Conflict,
    EcrinError,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    PreconditionFailed,
    QuotaExceeded,
)
from ecrin.core.model import DeadProperty, Lock, Mount, Node, NodeKind, Share, User
from ecrin.core.paths import DavPath
from ecrin.core.permissions import FILE_MASK, Permission
from ecrin.core.retention import versions_to_drop
from ecrin.db.protocol import MetadataStore, MetadataTransaction
from ecrin.services.changes import propagate_change
from ecrin.services.checksums import ExpectedChecksum, StreamingDigests
from ecrin.services.notifications import ChangeNotifier
from ecrin.services.tree import Resolved, resolve, resolve_existing, share_permissions
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


class Entry(NamedTuple):
    """A node as one user sees it: under which name, with which rights, through which share.

    A named tuple: a listing builds one per child, and a frozen dataclass takes twice as long
    to build."""

    name: str
    node: Node
    permissions: Permission
    share: Share | None = None
    is_mount_point: bool = False


@dataclass(frozen=True, slots=True)
class Listing:
    """What a PROPFIND shows of a path, read in one transaction (`FileService.listing`).

    What was not asked for is empty."""

    entry: Entry
    children: list[Entry]  # sorted by name
    properties: dict[int, list[DeadProperty]]  # dead properties, by node id
    locks: list[Lock]  # the active locks of the user's home
    share_types: dict[int, tuple[int, ...]]  # kinds of share the user made, by node id
    user: User  # as stored now (quota, usage); a link visitor as given


@dataclass(frozen=True, slots=True)
class UploadTarget:
    """What a PUT checks before it reads the body, read in one transaction
    (`FileService.upload_target`)."""

    existing: Node | None  # the node at the path, if the user may read it
    locks: list[Lock]  # the active locks of the user's home
    # Why the upload would be refused, if it would: the caller raises it once it has checked
    # what comes first (the If header, locks), then uploads with `checked=True`.
    refusal: EcrinError | None


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    max_versions: int = 0  # 0: no count limit (thinning still applies)
    max_version_age: float = 0.0  # seconds; 0: no age limit


async def check_quota(tx: MetadataTransaction, owner_id: int, extra_bytes: int) -> None:
    if extra_bytes <= 0:
        return
    owner = await tx.user_by_id(owner_id)
    if owner is None or owner.quota_bytes is None:
        return
    _refuse_over_quota(owner.used_bytes, owner.quota_bytes, extra_bytes)


async def charge_usage(tx: MetadataTransaction, owner_id: int, delta: int) -> None:
    """Add `delta` bytes to the owner's usage, as `check_quota` then `add_usage` would, in one
    statement: a growth past the quota raises QuotaExceeded, which rolls the change back with
    the rest of the transaction."""
    owner = await tx.add_usage(owner_id, delta)
    if delta > 0 and owner is not None and owner.quota_bytes is not None:
        _refuse_over_quota(owner.used_bytes - delta, owner.quota_bytes, delta)


def _refuse_over_quota(used_bytes: int, quota_bytes: int, extra_bytes: int) -> None:
    if used_bytes + extra_bytes > quota_bytes:
        raise QuotaExceeded(
            f"storing {extra_bytes} more bytes would exceed the quota of "
            f"{quota_bytes} bytes ({used_bytes} used)"
        )


class FileService:
    def __init__(
        self,
        metadata: MetadataStore,
        blobs: BlobStore,
        clock: Clock,
        retention: RetentionPolicy | None = None,
        notifier: ChangeNotifier | None = None,
    ) -> None:
        self.metadata = metadata
        self.blobs = blobs
        self.clock = clock
        self.retention = retention or RetentionPolicy()
        self.notifier = notifier or ChangeNotifier()

    # --- reading -------------------------------------------------------------------------

    async def stat(self, user: User, path: DavPath) -> Node:
        return (await self.entry(user, path)).node

    async def entry(self, user: User, path: DavPath) -> Entry:
        async with self.metadata.read() as tx:
            found = await resolve_existing(tx, user, path, self.clock.now())
            return _entry(found)

    async def lookup(self, user: User, path: DavPath) -> Node | None:
        """The node at `path`, or None if it or a parent does not exist (or is hidden)."""
        async with self.metadata.read() as tx:
            try:
                found = await resolve(tx, user, path, self.clock.now())
            except Conflict:
                return None
            return found.node if Permission.READ in found.permissions else None

    async def list_folder(self, user: User, path: DavPath) -> tuple[Entry, list[Entry]]:
        now = self.clock.now()
        async with self.metadata.read() as tx:
            found = await resolve_existing(tx, user, path, now)
            return _entry(found), await self._children(tx, user, found, now)

    async def listing(
        self,
        user: User,
        path: DavPath,
        *,
        children: bool,
        properties: bool = False,
        locks: bool = False,
        share_types: bool = False,
    ) -> Listing:
        """The entry at `path`, with its children if asked (a file has none), and what else
        is asked about them, in one read transaction: one snapshot, and the cost of one
        transaction rather than one per kind of information."""
        now = self.clock.now()
        async with self.metadata.read() as tx:
            found = await resolve_existing(tx, user, path, now)
            entry = _entry(found)
            listed = await self._children(tx, user, found, now) if children else []
            ids = [entry.node.id, *(child.node.id for child in listed)]
            dead = await tx.properties_of(ids) if properties else {}
            active = await tx.locks(user.id, now) if locks else []
            types = await _share_types(tx, user, ids) if share_types else {}
            fresh = user
            if not user.is_link_visitor:
                stored = await tx.user_by_id(user.id)
                if stored is None:
                    raise NotFound(f"no user {user.name!r}")
                fresh = stored
        return Listing(entry, listed, dead, active, types, fresh)

    async def _children(
        self, tx: MetadataTransaction, user: User, found: Resolved, now: float
    ) -> list[Entry]:
        """The entries of the folder `found` (none for a file), sorted by name."""
        folder = found.existing()
        if not folder.is_folder:
            return []
        if folder.owner_id == user.id:  # only there may the user have mount points
            nodes, mounted = await tx.listing(folder.id, user.id)
        else:
            nodes, mounted = await tx.children(folder.id), []
        # What `_inherit` gives, computed once: flag operations cost ~1 µs each.
        rights, file_rights, share = found.permissions, found.permissions & FILE_MASK, found.share
        children = [
            Entry(node.name, node, rights if node.kind is FOLDER else file_rights, share)
            for node in nodes
        ]
        if mounted:
            children += await self._mounted_in(tx, user, mounted, now)
        children.sort(key=_BY_NAME)
        return children

    async def _mounted_in(
        self, tx: MetadataTransaction, user: User, mounted: list[Mount], now: float
    ) -> list[Entry]:
        entries = []
        for mount in mounted:
            share = await tx.share(mount.share_id)
            if share is None:
                continue
            permissions = await share_permissions(tx, share, user, now)
            node = await tx.node(share.node_id)
            if node is not None and Permission.READ in permissions:
                entries.append(Entry(mount.name, node, _inherit(permissions, node), share, True))
        return entries

    def read(self, node: Node, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        if node.blob_id is None:
            if node.is_folder:
                raise MethodNotAllowed("folders have no contents")
            return _empty()
        return self.blobs.read(node.blob_id, start, end)

    # --- writing files -------------------------------------------------------------------

    async def check_upload_allowed(self, user: User, path: DavPath, length: int | None) -> None:
        """Refuse early, before reading a body: no parent, no right, a folder in the way, no
        quota."""
        async with self.metadata.read() as tx:
            await _check_upload(tx, await resolve(tx, user, path, self.clock.now()), length)

    async def upload_target(self, user: User, path: DavPath, length: int | None) -> UploadTarget:
        """`lookup`, the home's active locks and `check_upload_allowed`, in one transaction."""
        now = self.clock.now()
        async with self.metadata.read() as tx:
            active = await tx.locks(user.id, now)
            try:
                found = await resolve(tx, user, path, now)
            except Conflict as exc:
                return UploadTarget(None, active, exc)
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
    ) -> UploadResult:
        """Store `body` at `path`. `checked`: the caller has had `upload_target` check it."""
        small = length is not None and length <= SMALL_BODY and user.quota_bytes is None
        if not (checked or small):
            await self.check_upload_allowed(user, path, length)
        digests = StreamingDigests(checksums or [])
        writer = await self.blobs.create()
        try:
            async for chunk in body:
                await digests.feed(chunk)
                await writer.write(chunk)
            if length is not None and writer.size != length:
                raise BadRequest(f"the body has {writer.size} bytes but {length} were announced")
            await digests.finish()
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
        """Reference a durable blob at `path`, atomically with every precondition check.

        The previous contents, if any, become a version (the blob reference moves; no bytes
        are copied)."""
        now = self.clock.now()
        released: list[str] = []
        async with self.metadata.write() as tx:
            found = await _drop_aside(tx, await resolve(tx, user, path, now))
            _check_file_target(found)
            current = found.node
            (conditions or WriteConditions()).check(current)
            owner_id = found.storage_owner_id
            delta = size - (current.size if current else 0)
            await charge_usage(tx, owner_id, delta)
            await tx.insert_blob(blob_id, size, sha256, now)
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
            await propagate_change(tx, found.parent.id, delta)
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
            await propagate_change(tx, node.id)
            changed = await tx.node(node.id)
        await self.notifier.changed(user, path, changed.etag if changed else None)

    # --- folders and tree operations -----------------------------------------------------

    async def make_folder(self, user: User, path: DavPath) -> Node:
        now = self.clock.now()
        async with self.metadata.write() as tx:
            found = await resolve(tx, user, path, now)
            if found.node is not None:
                raise MethodNotAllowed(f"{path} already exists")
            found.require(Permission.CREATE, on_parent=True)
            node = await tx.insert_node(
                parent_id=found.parent.id,
                owner_id=found.storage_owner_id,
                name=path.name,
                kind=NodeKind.FOLDER,
                size=0,
                mtime=now,
                now=now,
            )
            await propagate_change(tx, found.parent.id)
        await self.notifier.changed(user, path, node.etag)
        return node

    async def delete(self, user: User, path: DavPath) -> None:
        """Move to the owner's trash; a mount point is unshared from this user instead."""
        if path.is_root:
            raise Forbidden("the home folder cannot be deleted")
        now = self.clock.now()
        async with self.metadata.write() as tx:
            found = await resolve_existing(tx, user, path, now)
            if found.mount is not None:
                await self._unmount(tx, user, found.mount, found.share)
                await propagate_change(tx, found.parent.id)
            else:
                found.require(Permission.DELETE)
                await self.move_to_trash(tx, user, found, now)
        await self.notifier.changed(user, path, None)

    async def _unmount(
        self, tx: MetadataTransaction, user: User, mount: Mount, share: Share | None
    ) -> None:
        if share is not None and share.share_with_user == user.id:
            await tx.delete_share(share.id)
        else:
            await tx.delete_mount(mount.share_id, user.id)

    async def move_to_trash(
        self, tx: MetadataTransaction, user: User, found: Resolved, now: float
    ) -> None:
        node = found.existing()
        owner_id = node.owner_id
        chain = await tx.ancestors(node.id)
        names = [ancestor.name for ancestor in chain[1:-1]]
        original = "/".join([*reversed(names), node.name])
        trash_root = await tx.trash_root(owner_id, now)
        await tx.move_node(node.id, trash_root.id, f"{node.id}")
        await tx.insert_trash(
            node_id=node.id,
            owner_id=owner_id,
            original_parent_id=node.parent_id,
            original_name=node.name,
            original_path=original,
            size=node.size,
            deleted_at=now,
            deleted_by=user.id,
        )
        assert node.parent_id is not None
        await propagate_change(tx, node.parent_id, -node.size)
        await tx.add_usage(owner_id, -node.size)

    async def move(
        self, user: User, source: DavPath, destination: DavPath, *, overwrite: bool
    ) -> bool:
        """Rename or move; O(depth) whatever lies below. Returns True if created."""
        _check_transfer(source, destination)
        now = self.clock.now()
        async with self.metadata.write() as tx:
            src = await resolve_existing(tx, user, source, now)
            dst, created = await self._clear_destination(tx, user, destination, overwrite, now)
            if src.mount is not None:
                await self._move_mount(tx, user, src, dst, destination)
                moved: Node | None = src.existing()
            else:
                moved = await self._move_node(tx, src, dst, destination)
        await self.notifier.changed(user, source, None)
        await self.notifier.changed(user, destination, moved.etag if moved else None)
        return created

    async def _move_node(
        self, tx: MetadataTransaction, src: Resolved, dst: Resolved, destination: DavPath
    ) -> Node | None:
        same_parent = src.parent.id == dst.parent.id
        if same_parent:
            src.require(Permission.UPDATE)
        else:
            src.require(Permission.DELETE)
            dst.require(Permission.CREATE, on_parent=True)
        node = src.existing()
        if dst.share is not None and node.id in await tx.ancestor_ids(dst.parent.id):
            # Reached through a share of a folder inside the node, the destination's path
            # does not show that it lies inside it: the tree would become a cycle.
            raise Conflict("cannot move a folder into itself")
        new_owner = dst.storage_owner_id
        if new_owner != node.owner_id:
            await charge_usage(tx, new_owner, node.size)
            entries = await tx.subtree(node.id)
            await tx.set_subtree_owner([n.id for n, _ in entries], new_owner)
            await tx.add_usage(node.owner_id, -node.size)
        assert node.parent_id is not None
        await tx.move_node(node.id, dst.parent.id, destination.name)
        await propagate_change(tx, node.parent_id, -node.size)
        await propagate_change(tx, dst.parent.id, node.size)
        # Only folders above it changed: the node's own revision did not.
        return dataclasses.replace(
            node, parent_id=dst.parent.id, name=destination.name, owner_id=new_owner
        )

    async def _move_mount(
        self,
        tx: MetadataTransaction,
        user: User,
        src: Resolved,
        dst: Resolved,
        destination: DavPath,
    ) -> None:
        """A recipient renames or moves where a share appears for them (their own tree only)."""
        if dst.parent.owner_id != user.id:
            raise Forbidden("a shared item can only be moved within your own files")
        assert src.mount is not None
        await tx.move_mount(src.mount.share_id, user.id, dst.parent.id, destination.name)
        await propagate_change(tx, src.parent.id)
        await propagate_change(tx, dst.parent.id)

    async def _clear_destination(
        self,
        tx: MetadataTransaction,
        user: User,
        destination: DavPath,
        overwrite: bool,
        now: float,
    ) -> tuple[Resolved, bool]:
        """Where a MOVE or COPY lands, and whether it creates it. An item in the way is
        replaced only with `Overwrite: T`: it goes to the trash (a mount point is left)."""
        dst = await resolve(tx, user, destination, now)
        if dst.node is None:
            return dst, True
        if not overwrite:
            raise PreconditionFailed(f"{destination} exists and Overwrite is F")
        dst.require(Permission.DELETE)
        if dst.mount is not None:
            await self._unmount(tx, user, dst.mount, dst.share)
            await propagate_change(tx, dst.parent.id)
        else:
            await self.move_to_trash(tx, user, dst, now)
        return await resolve(tx, user, destination, now), False

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
        _check_transfer(source, destination)
        now = self.clock.now()
        async with self.metadata.write() as tx:
            src = await resolve_existing(tx, user, source, now)
            dst, created = await self._clear_destination(tx, user, destination, overwrite, now)
            dst.require(Permission.CREATE, on_parent=True)
            node = src.existing()
            if not node.is_folder:
                size = node.size
            else:
                size = await tx.file_bytes(node.id) if recursive else 0
            owner_id = dst.storage_owner_id
            await charge_usage(tx, owner_id, size)
            copied = await tx.copy_subtree(
                node.id,
                parent_id=dst.parent.id,
                name=destination.name,
                owner_id=owner_id,
                now=now,
                recursive=recursive,
            )
            await propagate_change(tx, dst.parent.id, size)
        await self.notifier.changed(user, destination, copied.etag)
        return created

    async def discard(self, blob_ids: list[str]) -> None:
        """Remove blobs no metadata references any more (after the commit that dropped them)."""
        for blob_id in blob_ids:
            try:
                await self.blobs.delete(blob_id)
            except EcrinError:
                log.warning("could not remove unreferenced blob %s; `ecrin check` will", blob_id)


FOLDER = NodeKind.FOLDER
_BY_NAME = itemgetter(0)  # an Entry's name


async def _share_types(
    tx: MetadataTransaction, user: User, node_ids: list[int]
) -> dict[int, tuple[int, ...]]:
    """For `oc:share-types`: the kinds of share `user` created on each node."""
    found: dict[int, set[int]] = {}
    for share in await tx.shares_on(node_ids):
        if share.created_by == user.id:
            found.setdefault(share.node_id, set()).add(int(share.share_type))
    return {node_id: tuple(sorted(types)) for node_id, types in found.items()}


def _entry(found: Resolved) -> Entry:
    name = found.mount.name if found.mount else found.existing().name
    return Entry(name, found.existing(), found.permissions, found.share, found.mount is not None)


def _inherit(permissions: Permission, node: Node) -> Permission:
    return permissions if node.is_folder else permissions & FILE_MASK


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


def _check_transfer(source: DavPath, destination: DavPath) -> None:
    if source.is_root or destination.is_root:
        raise Forbidden("the home folder cannot be moved, copied or replaced")
    if source == destination:
        raise Forbidden("source and destination are the same")
    if source.is_ancestor_of(destination):
        raise Conflict("cannot move or copy a folder into itself")
    if destination.is_ancestor_of(source):
        raise Conflict("cannot replace a folder with something inside it")


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""
