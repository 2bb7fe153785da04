"""File and folder operations in a user's tree (their home and the shares mounted in it).

`FileService` is their one entry point: it reads (here), and offers as its own the writes of
two collaborators that share its stores, clock and notifier: `FileWrites` (`file_writes.py`:
a file's contents and modification time) and `TreeOperations` (`tree_operations.py`: folders,
delete, move, copy). Quotas are checked and charged by `quota.py`.

The crash-safety argument, for every write:
1. new contents stream into a blob writer; `commit()` fsyncs and renames them into place
   (a small file's bytes skip this: they go into the blob's row in 2, see `contents.py`);
2. one metadata transaction then checks the preconditions (If-Match, quota, permissions,
   parent still there), references the blob, bumps the ancestors' revisions and adjusts
   usage; the previous contents become a version in that same transaction;
3. only after that commit are blobs that lost their last reference removed.
A crash before 2 leaves an orphan blob (collected by `ecrin check`); a crash after 2 leaves
at most an unreferenced blob file; the previous version stays readable until 2 commits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from operator import itemgetter
from typing import NamedTuple

from ecrin.core.clock import Clock
from ecrin.core.errors import Conflict, MethodNotAllowed, NotFound
from ecrin.core.model import DeadProperty, Lock, Mount, Node, NodeKind, Share, User
from ecrin.core.paths import DavPath
from ecrin.core.permissions import FILE_MASK, Permission
from ecrin.db.protocol import MetadataStore, MetadataTransaction
from ecrin.services.contents import read_blob, send_blob
from ecrin.services.file_writes import FileWrites, RetentionPolicy
from ecrin.services.locks import locks_in_view, locks_on_mount_points
from ecrin.services.notifications import ChangeNotifier
from ecrin.services.tree import Resolved, resolve, resolve_existing, share_permissions
from ecrin.services.tree_operations import TreeOperations
from ecrin.settings import INLINE_MAX_LIMIT
from ecrin.storage.protocol import BlobStore, Piece


class Entry(NamedTuple):
    """A node as one user sees it: under which name, with which rights, through which share.

    A named tuple: a listing builds one per child, and a frozen dataclass takes twice as long
    to build."""

    name: str
    node: Node
    permissions: Permission
    share: Share | None = None
    is_mount_point: bool = False


class Opened(NamedTuple):
    """A file as `FileService.open` found it: its node, and its bytes if its blob's row keeps
    them (`contents.py`), read in the same transaction."""

    node: Node
    content: bytes | None


@dataclass(frozen=True, slots=True)
class Listing:
    """What a PROPFIND shows of a path, read in one transaction (`FileService.listing`).

    What was not asked for is empty."""

    entry: Entry
    children: list[Entry]  # sorted by name
    properties: dict[int, list[DeadProperty]]  # dead properties, by node id
    locks: list[Lock]  # the active locks bearing on the path (`locks_in_view`)
    share_types: dict[int, tuple[int, ...]]  # kinds of share the user made, by node id
    user: User  # as stored now (quota, usage); a link visitor as given


class FileService:
    def __init__(
        self,
        metadata: MetadataStore,
        blobs: BlobStore,
        clock: Clock,
        retention: RetentionPolicy | None = None,
        notifier: ChangeNotifier | None = None,
        inline_max: int = 0,
    ) -> None:
        self.metadata = metadata
        self.blobs = blobs
        self.clock = clock
        self.retention = retention or RetentionPolicy()
        self.notifier = notifier or ChangeNotifier()
        # The writes are the collaborators' own methods, bound here rather than wrapped: a
        # call costs what it did when they were defined on this class.
        writes = FileWrites(metadata, blobs, clock, self.retention, self.notifier, inline_max)
        self.check_upload_allowed = writes.check_upload_allowed
        self.upload_target = writes.upload_target
        self.upload = writes.upload
        self.commit_blob = writes.commit_blob
        self.set_mtime = writes.set_mtime
        self.discard = writes.discard
        tree = TreeOperations(metadata, clock, self.notifier)
        self.make_folder = tree.make_folder
        self.delete = tree.delete
        self.move_to_trash = tree.move_to_trash
        self.move = tree.move
        self.copy = tree.copy

    # --- reading -------------------------------------------------------------------------

    async def stat(self, user: User, path: DavPath) -> Node:
        return (await self.entry(user, path)).node

    async def entry(self, user: User, path: DavPath) -> Entry:
        async with self.metadata.read() as tx:
            found = await resolve_existing(tx, user, path, self.clock.now())
            return _entry(found)

    async def open(self, user: User, path: DavPath, *, contents: bool = True) -> Opened:
        """The node at `path` and, if `contents` and it keeps them in the database, its
        bytes, read in the same transaction (`read_opened` fetches the others)."""
        async with self.metadata.read() as tx:
            found = await resolve_existing(tx, user, path, self.clock.now(), content=contents)
            node, content = found.existing(), found.content
            if (
                content is None  # not in the walk's row, or no walk reached the node
                and contents
                and node.blob_id is not None
                and node.size <= INLINE_MAX_LIMIT
            ):
                content = await tx.blob_content(node.blob_id)
            return Opened(node, content)

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
        details: bool = True,
    ) -> Listing:
        """The entry at `path`, with its children if asked (a file has none), and what else
        is asked about them, in one read transaction: one snapshot, and the cost of one
        transaction rather than one per kind of information.

        Without `details`, the children's nodes carry what places and describes them, not
        their blob, hashes, content type and creation time (`MetadataTransaction.children`):
        a third less to read from a large folder."""
        now = self.clock.now()
        async with self.metadata.read() as tx:
            found = await resolve_existing(tx, user, path, now)
            entry = _entry(found)
            listed = await self._children(tx, user, found, now, details) if children else []
            ids = [entry.node.id, *(child.node.id for child in listed)]
            dead = await tx.properties_of(ids) if properties else {}
            active = []
            if locks:
                active = await locks_in_view(tx, user, found, now)
                mounted = [(path.child(e.name), e.node) for e in listed if e.is_mount_point]
                active += await locks_on_mount_points(tx, user, mounted, now)
            types = await _share_types(tx, user, ids) if share_types else {}
            fresh = user
            if not user.is_link_visitor:
                stored = await tx.user_by_id(user.id)
                if stored is None:
                    raise NotFound(f"no user {user.name!r}")
                fresh = stored
        return Listing(entry, listed, dead, active, types, fresh)

    async def _children(
        self, tx: MetadataTransaction, user: User, found: Resolved, now: float, details: bool = True
    ) -> list[Entry]:
        """The entries of the folder `found` (none for a file), sorted by name."""
        folder = found.existing()
        if not folder.is_folder:
            return []
        if folder.owner_id == user.id:  # only there may the user have mount points
            nodes, mounted = await tx.listing(folder.id, user.id, details=details)
        else:
            nodes, mounted = await tx.children(folder.id, details=details), []
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
        return read_blob(self.metadata, self.blobs, node.blob_id, start, end)

    def read_opened(
        self, opened: Opened, start: int = 0, end: int | None = None
    ) -> AsyncIterator[Piece]:
        """What `read` gives, without looking again for bytes `open` looked for, in pieces
        only to be sent on (`BlobStore.read_to_send`)."""
        node = opened.node
        if opened.content is not None:
            return _one(opened.content[start:end])
        if node.blob_id is None:
            return self.read(node, start, end)  # a folder, or an empty file
        # In the store: `open` looked in the row, or the file is too large to be kept there.
        return self.blobs.read_to_send(node.blob_id, start, end)

    def send_blob(self, blob_id: str) -> AsyncIterator[Piece]:
        """A blob's bytes (a version's, a trashed file's), wherever they are kept, in pieces
        only to be sent on (`BlobStore.read_to_send`)."""
        return send_blob(self.metadata, self.blobs, blob_id)


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


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""


async def _one(piece: bytes) -> AsyncIterator[bytes]:
    if piece:
        yield piece
