"""Operations on the shape of a user's tree, for `FileService` (`files.py`): making a folder,
deleting (to the trash, or unsharing a mount point), moving and copying."""

from __future__ import annotations

import dataclasses

from ecrin.core.clock import Clock
from ecrin.core.errors import Conflict, Forbidden, MethodNotAllowed, PreconditionFailed
from ecrin.core.model import Mount, Node, NodeKind, Share, User
from ecrin.core.paths import DavPath
from ecrin.core.permissions import Permission
from ecrin.db.protocol import MetadataStore, MetadataTransaction
from ecrin.services.notifications import ChangeNotifier
from ecrin.services.quota import charge_usage
from ecrin.services.tree import Resolved, resolve, resolve_existing


class TreeOperations:
    """The writes of `FileService` that make, remove, move or copy nodes (it exposes these
    methods as its own)."""

    def __init__(self, metadata: MetadataStore, clock: Clock, notifier: ChangeNotifier) -> None:
        self.metadata = metadata
        self.clock = clock
        self.notifier = notifier

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
            await tx.propagate_change(found.parent.id)
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
                await tx.propagate_change(found.parent.id)
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
        await tx.propagate_change(node.parent_id, -node.size)
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
        await tx.propagate_change(node.parent_id, -node.size)
        await tx.propagate_change(dst.parent.id, node.size)
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
        await tx.propagate_change(src.parent.id)
        await tx.propagate_change(dst.parent.id)

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
            await tx.propagate_change(dst.parent.id)
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
            await tx.propagate_change(dst.parent.id, size)
        await self.notifier.changed(user, destination, copied.etag)
        return created


def _check_transfer(source: DavPath, destination: DavPath) -> None:
    if source.is_root or destination.is_root:
        raise Forbidden("the home folder cannot be moved, copied or replaced")
    if source == destination:
        raise Forbidden("source and destination are the same")
    if source.is_ancestor_of(destination):
        raise Conflict("cannot move or copy a folder into itself")
    if destination.is_ancestor_of(source):
        raise Conflict("cannot replace a folder with something inside it")
