"""Blob records in SQL: reference counts, and the bytes each user stores."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, literal, select, update
from sqlalchemy.engine import Row

from ecrin.core.errors import Conflict
from ecrin.core.model import NodeKind
from ecrin.db import statements
from ecrin.db.schema import blobs, nodes, users
from ecrin.db.sql.base import SqlTransactionBase


class SqlBlobs(SqlTransactionBase):
    """Blob records and their reference counts; each user's usage."""

    if TYPE_CHECKING:  # called here, defined in another part of `SqlTransaction`

        async def all_version_blob_counts(self) -> dict[str, int]: ...

    # --- blobs ---------------------------------------------------------------------------

    async def insert_blob(
        self, blob_id: str, size: int, sha256: str, now: float, content: bytes | None = None
    ) -> None:
        await self._prepared.run(
            statements.INSERT_BLOB,
            blob_id=blob_id,
            size=size,
            sha256=sha256,
            now=now,
            content=content,
        )

    async def blob_content(self, blob_id: str) -> bytes | None:
        row = await self._prepared.first(statements.BLOB_CONTENT, blob_id=blob_id)
        return None if row is None or row[0] is None else bytes(row[0])

    async def inline_blob_ids(self, limit: int | None = None) -> set[str]:
        rows = await self._all(select(blobs.c.id).where(blobs.c.content.is_not(None)).limit(limit))
        return {r.id for r in rows}

    async def clear_blob_content(self, blob_id: str) -> None:
        await self._conn.execute(update(blobs).where(blobs.c.id == blob_id).values(content=None))

    async def retain_blob(self, blob_id: str) -> None:
        """Add a reference. Conflict if the blob has no record: a concurrent writer released
        its last reference after we read the node (its bytes are about to be deleted)."""
        result = await self._conn.execute(
            update(blobs).where(blobs.c.id == blob_id).values(refcount=blobs.c.refcount + 1)
        )
        if not result.rowcount:
            raise Conflict("the contents being copied were deleted meanwhile")

    async def release_blob(self, blob_id: str) -> list[str]:
        """Drop one reference; returns [blob_id] if it was the last one (row removed)."""
        row = await self._one(
            update(blobs)
            .where(blobs.c.id == blob_id)
            .values(refcount=blobs.c.refcount - 1)
            .returning(blobs.c.refcount)
        )
        if row is not None and row[0] <= 0:
            await self._conn.execute(delete(blobs).where(blobs.c.id == blob_id))
            return [blob_id]
        return []

    async def blob_records(self) -> dict[str, tuple[int, str, int]]:
        """Every blob row: id -> (size, sha256, refcount)."""
        rows = await self._all(select(blobs.c.id, blobs.c.size, blobs.c.sha256, blobs.c.refcount))
        return {r.id: (r.size, r.sha256, r.refcount) for r in rows}

    async def blob_reference_counts(self) -> dict[str, int]:
        """How many file nodes and versions actually reference each blob."""
        rows: Sequence[Row[Any]] = await self._all(
            select(nodes.c.blob_id, func.count().label("n"))
            .where(nodes.c.blob_id.is_not(None))
            .group_by(nodes.c.blob_id)
        )
        counts = {r.blob_id: int(r.n) for r in rows}
        for blob_id, n in (await self.all_version_blob_counts()).items():
            counts[blob_id] = counts.get(blob_id, 0) + n
        return counts

    async def set_blob_refcount(self, blob_id: str, refcount: int) -> None:
        if refcount <= 0:
            await self._conn.execute(delete(blobs).where(blobs.c.id == blob_id))
        else:
            await self._conn.execute(
                update(blobs).where(blobs.c.id == blob_id).values(refcount=refcount)
            )

    async def usage_by_user(self) -> dict[int, int]:
        """Bytes of the files below each user's home (the trash and versions do not count)."""
        tree = (
            select(nodes.c.id, users.c.id.label("user_id"))
            .join(users, users.c.root_node_id == nodes.c.id)
            .cte("tree", recursive=True)
        )
        tree = tree.union_all(
            select(nodes.c.id, tree.c.user_id).join(tree, nodes.c.parent_id == tree.c.id)
        )
        rows: Sequence[Row[Any]] = await self._all(
            select(tree.c.user_id, func.coalesce(func.sum(nodes.c.size), literal(0)).label("n"))
            .join(nodes, nodes.c.id == tree.c.id)
            .where(nodes.c.kind == NodeKind.FILE.value)
            .group_by(tree.c.user_id)
        )
        return {int(r.user_id): int(r.n) for r in rows}
