"""Earlier versions of a file: listed, read and restored by file id."""

from __future__ import annotations

from ecrin.core.clock import Clock
from ecrin.core.errors import NotFound
from ecrin.core.model import Node, User, Version
from ecrin.core.permissions import Permission
from ecrin.db.protocol import MetadataStore, MetadataTransaction
from ecrin.services.files import FileService
from ecrin.services.locks import check_not_locked_by_others
from ecrin.services.quota import charge_usage
from ecrin.services.tree import share_permissions


async def reachable(tx: MetadataTransaction, user: User, node_id: int, now: float) -> Permission:
    """What `user` may do on a node found by id: all of it in their home, what a share grants
    if it lies in one they received, nothing otherwise (and nothing in the trash)."""
    node = await tx.node(node_id)
    if node is None or user.is_link_visitor:
        return Permission.NONE
    chain = await tx.ancestor_ids(node_id)
    if node.owner_id == user.id:
        home = await tx.root_node(user.id)
        return Permission.ALL if chain[-1] == home.id else Permission.NONE
    best = Permission.NONE
    for share in await tx.shares_on(chain):
        best |= await share_permissions(tx, share, user, now)
    return best


class VersionService:
    def __init__(self, metadata: MetadataStore, files: FileService, clock: Clock) -> None:
        self.metadata = metadata
        self.files = files
        self.clock = clock

    async def _file(
        self, tx: MetadataTransaction, user: User, file_id: int, wanted: Permission
    ) -> Node:
        held = await reachable(tx, user, file_id, self.clock.now())
        node = await tx.node(file_id)
        if node is None or node.is_folder or Permission.READ not in held or wanted not in held:
            raise NotFound("no such file")
        return node

    async def list_versions(self, user: User, file_id: int) -> tuple[Node, list[Version]]:
        async with self.metadata.read() as tx:
            node = await self._file(tx, user, file_id, Permission.READ)
            return node, await tx.versions_of(node.id)

    async def get(self, user: User, file_id: int, version_id: int) -> Version:
        async with self.metadata.read() as tx:
            node = await self._file(tx, user, file_id, Permission.READ)
            version = await tx.version(version_id)
            if version is None or version.node_id != node.id:
                raise NotFound("no such version")
            return version

    async def restore(self, user: User, file_id: int, version_id: int) -> Node:
        """Make a version current again; the current contents become a version."""
        now = self.clock.now()
        async with self.metadata.write() as tx:
            node = await self._file(tx, user, file_id, Permission.UPDATE)
            version = await tx.version(version_id)
            if version is None or version.node_id != node.id:
                raise NotFound("no such version")
            await check_not_locked_by_others(tx, user, node, now)
            delta = version.size - node.size
            await charge_usage(tx, node.owner_id, delta)
            if node.blob_id:
                await tx.insert_version(node, now, user.id or None)
            await tx.retain_blob(version.blob_id)
            released = await tx.delete_version(version.id)
            assert not released  # retained just above
            restored = await tx.update_file(
                node.id,
                size=version.size,
                mtime=version.mtime,
                blob_id=version.blob_id,
                sha256=version.sha256 or "",
                content_type=node.content_type,
                checksums=version.checksums,
            )
            assert node.parent_id is not None
            await tx.propagate_change(node.parent_id, delta)  # above the file only
            return restored

    async def forget(self, user: User, file_id: int, version_id: int) -> None:
        async with self.metadata.write() as tx:
            node = await self._file(tx, user, file_id, Permission.UPDATE)
            version = await tx.version(version_id)
            if version is None or version.node_id != node.id:
                raise NotFound("no such version")
            released = await tx.delete_version(version.id)
        await self.files.discard(released)
