"""Shares and mounts in SQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from ecrin.core.errors import Conflict
from ecrin.core.model import Mount, Share
from ecrin.db import statements
from ecrin.db.schema import group_members, mounts, shares
from ecrin.db.sql.base import SqlTransactionBase
from ecrin.db.sql.rows import _share


class SqlSharing(SqlTransactionBase):
    """Shares (and their reshares) and the mount points of shares received."""

    # --- shares and mounts ---------------------------------------------------------------

    async def insert_share(self, **values: Any) -> Share:
        result = await self._conn.execute(insert(shares).values(**values))
        share = await self.share(result.inserted_primary_key[0])  # type: ignore[index]
        assert share is not None
        return share

    async def share(self, share_id: int) -> Share | None:
        row = await self._one(select(shares).where(shares.c.id == share_id))
        return _share(row) if row else None

    async def share_by_token(self, token: str) -> Share | None:
        row = await self._one(select(shares).where(shares.c.token == token))
        return _share(row) if row else None

    async def shares_on(self, node_ids: Sequence[int]) -> list[Share]:
        statement = statements.shares_on(self._postgresql)
        rows = await self._prepared.all(statement, ids=self._id_list(node_ids))
        return [_share(r) for r in rows]

    async def shares_created_by(self, user_id: int) -> list[Share]:
        rows = await self._all(
            select(shares).where(shares.c.created_by == user_id).order_by(shares.c.id)
        )
        return [_share(r) for r in rows]

    async def shares_received(self, user_id: int) -> list[Share]:
        member_of = select(group_members.c.group_id).where(group_members.c.user_id == user_id)
        rows = await self._all(
            select(shares)
            .where((shares.c.share_with_user == user_id) | shares.c.share_with_group.in_(member_of))
            .order_by(shares.c.id)
        )
        return [_share(r) for r in rows]

    async def shares_with_group(self, group_id: int) -> list[Share]:
        rows = await self._all(select(shares).where(shares.c.share_with_group == group_id))
        return [_share(r) for r in rows]

    async def update_share(self, share_id: int, **values: Any) -> None:
        await self._conn.execute(update(shares).where(shares.c.id == share_id).values(**values))

    async def delete_share(self, share_id: int) -> None:
        """Delete a share, its reshares (recursively) and their mounts."""
        children = await self._all(select(shares.c.id).where(shares.c.parent_share_id == share_id))
        for child in children:
            await self.delete_share(child.id)
        await self._conn.execute(delete(mounts).where(mounts.c.share_id == share_id))
        await self._conn.execute(delete(shares).where(shares.c.id == share_id))

    async def insert_mount(self, mount: Mount) -> None:
        try:
            await self._conn.execute(
                insert(mounts).values(
                    share_id=mount.share_id,
                    user_id=mount.user_id,
                    parent_id=mount.parent_id,
                    name=mount.name,
                )
            )
        except IntegrityError as exc:
            raise Conflict(f"{mount.name!r} already exists") from exc

    async def mount_at(self, user_id: int, parent_id: int, name: str) -> Mount | None:
        row = await self._prepared.first(
            statements.MOUNT_AT, user_id=user_id, parent_id=parent_id, name=name
        )
        return Mount(row.share_id, row.user_id, row.parent_id, row.name) if row else None

    async def mounts_of_shares(self, share_ids: Sequence[int]) -> list[Mount]:
        rows = await self._all(select(mounts).where(mounts.c.share_id.in_(list(share_ids))))
        return [Mount(r.share_id, r.user_id, r.parent_id, r.name) for r in rows]

    async def mounts_of_user(self, user_id: int) -> list[Mount]:
        rows = await self._all(select(mounts).where(mounts.c.user_id == user_id))
        return [Mount(r.share_id, r.user_id, r.parent_id, r.name) for r in rows]

    async def move_mount(self, share_id: int, user_id: int, parent_id: int, name: str) -> None:
        try:
            await self._conn.execute(
                update(mounts)
                .where(and_(mounts.c.share_id == share_id, mounts.c.user_id == user_id))
                .values(parent_id=parent_id, name=name)
            )
        except IntegrityError as exc:
            raise Conflict(f"{name!r} already exists") from exc

    async def delete_mount(self, share_id: int, user_id: int) -> None:
        await self._conn.execute(
            delete(mounts).where(and_(mounts.c.share_id == share_id, mounts.c.user_id == user_id))
        )
