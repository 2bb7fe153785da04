"""Groups: named sets of users that shares can target."""

from __future__ import annotations

from ecrin.core.clock import Clock
from ecrin.core.errors import NotFound
from ecrin.core.model import Group, User
from ecrin.core.paths import validate_name
from ecrin.db.protocol import MetadataStore, MetadataTransaction
from ecrin.services.sharing import SharingService


class GroupService:
    def __init__(self, metadata: MetadataStore, sharing: SharingService, clock: Clock) -> None:
        self.metadata = metadata
        self.sharing = sharing
        self.clock = clock

    async def create(self, name: str, display_name: str | None = None) -> Group:
        name = validate_name(name)
        async with self.metadata.write() as tx:
            return await tx.insert_group(name, display_name or name, self.clock.now())

    async def list_groups(self) -> list[Group]:
        async with self.metadata.read() as tx:
            return await tx.list_groups()

    async def members(self, name: str) -> list[User]:
        async with self.metadata.read() as tx:
            return await tx.group_members((await _group(tx, name)).id)

    async def of_user(self, user: User) -> list[Group]:
        async with self.metadata.read() as tx:
            return await tx.user_groups(user.id)

    async def delete(self, name: str) -> None:
        async with self.metadata.write() as tx:
            group = await _group(tx, name)
            for share in await tx.shares_with_group(group.id):
                await tx.delete_share(share.id)
            await tx.delete_group(group.id)

    async def add_member(self, name: str, user_name: str) -> None:
        async with self.metadata.write() as tx:
            group = await _group(tx, name)
            user = await _user(tx, user_name)
            if await tx.add_member(group.id, user.id):
                await self.sharing.member_added(tx, group.id, user.id)

    async def remove_member(self, name: str, user_name: str) -> None:
        async with self.metadata.write() as tx:
            group = await _group(tx, name)
            user = await _user(tx, user_name)
            if not await tx.remove_member(group.id, user.id):
                raise NotFound(f"{user_name!r} is not in {name!r}")
            await self.sharing.member_removed(tx, group.id, user.id)


async def _group(tx: MetadataTransaction, name: str) -> Group:
    group = await tx.group_by_name(name)
    if group is None:
        raise NotFound(f"no group {name!r}")
    return group


async def _user(tx: MetadataTransaction, name: str) -> User:
    user = await tx.user_by_name(name)
    if user is None:
        raise NotFound(f"no user {name!r}")
    return user
