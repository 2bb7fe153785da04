"""The trash: deleted items keep their subtree, file ids and shares until restored or purged.

Retention: items older than `max_age` are purged, and while the trash holds more than
`max_quota_share` of its owner's quota the oldest items go first.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ecrin.core.clock import Clock
from ecrin.core.errors import NotFound
from ecrin.core.model import Node, TrashItem, User
from ecrin.core.paths import DavPath
from ecrin.db.protocol import MetadataStore, MetadataTransaction
from ecrin.services.files import FileService
from ecrin.services.locks import check_not_locked_by_others
from ecrin.services.quota import charge_usage
from ecrin.services.tree import path_in_home


@dataclass(frozen=True, slots=True)
class TrashPolicy:
    max_age: float = 30 * 86400.0  # seconds; 0: keep until purged
    max_quota_share: float = 0.5  # of the owner's quota; 0: no cap


class TrashService:
    def __init__(
        self, metadata: MetadataStore, files: FileService, clock: Clock, policy: TrashPolicy
    ) -> None:
        self.metadata = metadata
        self.files = files
        self.clock = clock
        self.policy = policy

    async def items(self, user: User) -> list[TrashItem]:
        async with self.metadata.read() as tx:
            return await tx.trash_items(user.id)

    async def item(self, user: User, item_id: int) -> tuple[TrashItem, Node]:
        async with self.metadata.read() as tx:
            return await self._owned(tx, user, item_id)

    async def _owned(
        self, tx: MetadataTransaction, user: User, item_id: int
    ) -> tuple[TrashItem, Node]:
        item = await tx.trash_item(item_id)
        if item is None or item.owner_id != user.id:
            raise NotFound("no such item in the trash")
        node = await tx.node(item.node_id)
        if node is None:
            raise NotFound("no such item in the trash")
        return item, node

    async def restore(self, user: User, item_id: int) -> DavPath:
        """Put an item back where it was (or in the home, if that folder is gone), beside
        anything that took its name meanwhile. Returns where it landed."""
        async with self.metadata.write() as tx:
            item, node = await self._owned(tx, user, item_id)
            parent = await self._restore_parent(tx, user, item)
            await check_not_locked_by_others(tx, user, parent, self.clock.now())
            name = await _free_name(tx, user, parent, item.original_name)
            await charge_usage(tx, user.id, node.size)
            await tx.move_node(node.id, parent.id, name)
            await tx.delete_trash_record(item.id)
            await tx.propagate_change(parent.id, node.size)
            restored = (await path_in_home(tx, parent.id)).child(name)
            node = dataclasses.replace(node, parent_id=parent.id, name=name)
        await self.files.notifier.changed(user, restored, node.etag)
        return restored

    async def _restore_parent(self, tx: MetadataTransaction, user: User, item: TrashItem) -> Node:
        home = await tx.root_node(user.id)
        if item.original_parent_id is not None:
            chain = await tx.ancestor_ids(item.original_parent_id)
            if chain and chain[-1] == home.id:
                parent = await tx.node(item.original_parent_id)
                if parent is not None:
                    return parent
        return home

    async def purge(self, user: User, item_id: int) -> None:
        async with self.metadata.write() as tx:
            item, node = await self._owned(tx, user, item_id)
            released = await tx.delete_subtree(node.id)
            await tx.delete_trash_record(item.id)
        await self.files.discard(released)

    async def empty(self, user: User) -> int:
        items = await self.items(user)
        for item in items:
            await self.purge(user, item.id)
        return len(items)

    async def expire_all(self) -> int:
        """Apply the retention policy to every trash that holds something."""
        async with self.metadata.read() as tx:
            owners = [u for u in [await tx.user_by_id(i) for i in await tx.trash_owners()] if u]
        return sum([await self.expire(owner) for owner in owners])

    async def expire(self, user: User) -> int:
        """Apply the retention policy to one user's trash; returns how many items went."""
        now = self.clock.now()
        items = sorted(await self.items(user), key=lambda i: i.deleted_at)
        doomed = [
            i for i in items if self.policy.max_age and i.deleted_at < now - self.policy.max_age
        ]
        if self.policy.max_quota_share and user.quota_bytes:
            budget = user.quota_bytes * self.policy.max_quota_share
            kept = [i for i in items if i not in doomed]
            total = sum(i.size for i in kept)
            for item in kept:
                if total <= budget:
                    break
                doomed.append(item)
                total -= item.size
        for item in doomed:
            await self.purge(user, item.id)
        return len(doomed)


async def _free_name(tx: MetadataTransaction, user: User, parent: Node, name: str) -> str:
    candidate, counter = name, 0
    while (
        await tx.child(parent.id, candidate) is not None
        or await tx.mount_at(user.id, parent.id, candidate) is not None
    ):
        counter += 1
        stem, dot, ext = name.rpartition(".")
        label = "restored" if counter == 1 else f"restored {counter}"
        candidate = f"{stem} ({label}).{ext}" if dot and stem else f"{name} ({label})"
    return candidate
