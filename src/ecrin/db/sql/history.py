"""File versions and trash records in SQL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, select

from ecrin.core.model import Node, TrashItem, Version
from ecrin.db.schema import trash, versions
from ecrin.db.sql.base import SqlTransactionBase
from ecrin.db.sql.rows import _trash_item, _version


class SqlHistory(SqlTransactionBase):
    """Kept versions of files, and the records of deleted items in the trash."""

    if TYPE_CHECKING:  # called here, defined in another part of `SqlTransaction`

        async def release_blob(self, blob_id: str) -> list[str]: ...

    # --- versions ------------------------------------------------------------------------

    async def insert_version(self, node: Node, now: float, author_id: int | None) -> Version:
        """Keep a file's current contents as a version (the blob reference moves over)."""
        assert node.blob_id is not None
        values = dict(
            node_id=node.id,
            blob_id=node.blob_id,
            size=node.size,
            sha256=node.sha256,
            checksums=node.checksums,
            mtime=node.mtime,
            created_at=now,
            author_id=author_id,
        )
        result = await self._conn.execute(insert(versions).values(**values))
        return Version(id=result.inserted_primary_key[0], **values)  # type: ignore[index,arg-type]

    async def versions_of(self, node_id: int) -> list[Version]:
        rows = await self._all(
            select(versions)
            .where(versions.c.node_id == node_id)
            .order_by(versions.c.created_at.desc(), versions.c.id.desc())
        )
        return [_version(r) for r in rows]

    async def version(self, version_id: int) -> Version | None:
        row = await self._one(select(versions).where(versions.c.id == version_id))
        return _version(row) if row else None

    async def delete_version(self, version_id: int) -> list[str]:
        """Drop a version; returns its blob id if that was the blob's last reference."""
        found = await self.version(version_id)
        if found is None:
            return []
        await self._conn.execute(delete(versions).where(versions.c.id == version_id))
        return await self.release_blob(found.blob_id)

    async def all_version_blob_counts(self) -> dict[str, int]:
        rows = await self._all(
            select(versions.c.blob_id, func.count().label("n")).group_by(versions.c.blob_id)
        )
        return {r.blob_id: int(r.n) for r in rows}

    # --- trash ---------------------------------------------------------------------------

    async def insert_trash(self, **values: Any) -> TrashItem:
        row = await self._one(insert(trash).values(**values).returning(*trash.columns))
        assert row is not None
        return _trash_item(row)

    async def trash_item(self, item_id: int) -> TrashItem | None:
        row = await self._one(select(trash).where(trash.c.id == item_id))
        return _trash_item(row) if row else None

    async def trash_items(self, owner_id: int) -> list[TrashItem]:
        rows = await self._all(
            select(trash)
            .where(trash.c.owner_id == owner_id)
            .order_by(trash.c.deleted_at.desc(), trash.c.id.desc())
        )
        return [_trash_item(r) for r in rows]

    async def trash_owners(self) -> list[int]:
        rows = await self._all(select(trash.c.owner_id).distinct())
        return [int(r.owner_id) for r in rows]

    async def delete_trash_record(self, item_id: int) -> None:
        await self._conn.execute(delete(trash).where(trash.c.id == item_id))
