"""Whole subtrees in SQL: list, delete, measure and copy a node with what lies below it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, and_, case, delete, func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError

from ecrin.core.errors import Conflict, StorageError
from ecrin.core.model import Node, NodeKind
from ecrin.db.schema import blobs, nodes, properties, versions
from ecrin.db.sql.base import SqlTransactionBase
from ecrin.db.sql.rows import _node

# What `copy_subtree` inserts, in the order `_copy_columns` selects it.
_COPIED = [
    "parent_id",
    "name",
    "kind",
    "size",
    "mtime",
    "revision",
    "blob_id",
    "sha256",
    "content_type",
    "checksums",
    "owner_id",
    "created_at",
]


def _copy_columns(
    source: Any, parent_id: Any, name: Any, size: Any, owner_id: int, now: float
) -> list[Any]:
    """The `_COPIED` columns of a copy of `source`, with a revision history of its own."""
    return [
        parent_id,
        name,
        source.c.kind,
        size,
        source.c.mtime,
        literal(1),
        source.c.blob_id,
        source.c.sha256,
        source.c.content_type,
        source.c.checksums,
        literal(owner_id),
        literal(now),
    ]


def _file_size(source: Any) -> Any:
    """A node's own bytes: a file's size, 0 for a folder (whose size counts what is below)."""
    return case((source.c.kind == NodeKind.FILE.value, source.c.size), else_=literal(0))


class SqlSubtrees(SqlTransactionBase):
    """A node with everything below it, taken, deleted, measured or copied at once."""

    if TYPE_CHECKING:  # called here, defined in another part of `SqlTransaction`

        async def node(self, node_id: int) -> Node | None: ...
        async def release_blob(self, blob_id: str) -> list[str]: ...

    async def subtree(self, node_id: int) -> list[tuple[Node, tuple[str, ...]]]:
        """The node and all its descendants, parents before children, with relative paths."""
        root = await self.node(node_id)
        if root is None:
            return []
        result: list[tuple[Node, tuple[str, ...]]] = [(root, ())]
        frontier: list[tuple[Node, tuple[str, ...]]] = [(root, ())] if root.is_folder else []
        while frontier:
            by_id = {n.id: rel for n, rel in frontier}
            rows = await self._all(
                select(nodes)
                .where(self._among(nodes.c.parent_id, list(by_id)))
                .order_by(self._by_name(nodes.c.name))
            )
            frontier = []
            for row in rows:
                child = _node(row)
                assert child.parent_id is not None
                entry = (child, (*by_id[child.parent_id], child.name))
                result.append(entry)
                if child.is_folder:
                    frontier.append(entry)
        return result

    async def delete_subtree(self, node_id: int) -> list[str]:
        """Delete a node and its descendants; returns blob ids whose refcount fell to 0."""
        entries = await self.subtree(node_id)
        released: list[str] = []
        for node, _ in reversed(entries):  # children first, for the parent foreign key
            if node.blob_id:
                released.extend(await self.release_blob(node.blob_id))
        ids = [n.id for n, _ in entries]
        for start in range(0, len(ids), 500):
            batch = ids[start : start + 500]
            for row in await self._all(
                select(versions.c.blob_id).where(versions.c.node_id.in_(batch))
            ):
                released.extend(await self.release_blob(row.blob_id))
            await self._conn.execute(delete(versions).where(versions.c.node_id.in_(batch)))
            await self._conn.execute(delete(properties).where(properties.c.node_id.in_(batch)))
        for start in range(len(ids), 0, -500):
            batch = ids[max(0, start - 500) : start]
            await self._conn.execute(delete(nodes).where(nodes.c.id.in_(batch)))
        return released

    async def file_bytes(self, node_id: int) -> int:
        """The total size of the files in the node's subtree (the node included; one query)."""
        tree = select(nodes.c.id).where(nodes.c.id == node_id).cte("tree", recursive=True)
        tree = tree.union_all(select(nodes.c.id).join(tree, nodes.c.parent_id == tree.c.id))
        row = await self._one(
            select(func.coalesce(func.sum(nodes.c.size), literal(0)))
            .select_from(nodes.join(tree, nodes.c.id == tree.c.id))
            .where(nodes.c.kind == NodeKind.FILE.value)
        )
        return int(row[0]) if row else 0

    async def copy_subtree(
        self,
        node_id: int,
        *,
        parent_id: int,
        name: str,
        owner_id: int,
        now: float,
        recursive: bool = True,
    ) -> Node:
        """Copy a node under `parent_id` as `name` (with `recursive`, its descendants too):
        new ids, revision 1, owned by `owner_id`, with their dead properties; each blob gains
        a reference per copy. A few statements per tree level. Returns the copy of the node.
        Conflict if the name is taken, or if a blob lost its last reference meanwhile.

        The copy mirrors the source name by name, so which copy stands for which source node
        is found by walking both trees together (`_copy_pairs`), level by level, in SQL."""
        source = nodes.alias("source")
        size = source.c.size if recursive else _file_size(source)
        parent, copy_name = literal(parent_id, BigInteger), literal(name)
        copy_root = select(*_copy_columns(source, parent, copy_name, size, owner_id, now)).where(
            source.c.id == node_id
        )
        try:
            row = await self._one(
                insert(nodes).from_select(_COPIED, copy_root).returning(*nodes.columns)
            )
        except IntegrityError as exc:
            raise Conflict(f"{name!r} already exists") from exc
        if row is None:
            raise StorageError(f"node {node_id} vanished while being copied")
        root = _node(row)
        blob_ids = {root.blob_id} - {None}
        depth, folders = 0, root.is_folder and recursive
        while folders:
            depth += 1
            pairs = self._copy_pairs(node_id, root.id, below=depth - 1)
            level = (
                select(
                    *_copy_columns(
                        source, pairs.c.copy_id, source.c.name, source.c.size, owner_id, now
                    )
                )
                .select_from(pairs.join(source, source.c.parent_id == pairs.c.source_id))
                .where(pairs.c.depth == depth - 1, source.c.id != root.id)
            )
            rows = await self._all(
                insert(nodes).from_select(_COPIED, level).returning(nodes.c.kind, nodes.c.blob_id)
            )
            blob_ids.update(r.blob_id for r in rows if r.blob_id is not None)
            folders = any(r.kind == NodeKind.FOLDER.value for r in rows)
        pairs = self._copy_pairs(node_id, root.id, below=None if recursive else 0)
        await self._conn.execute(
            insert(properties).from_select(
                ["node_id", "namespace", "name", "xml"],
                select(
                    pairs.c.copy_id, properties.c.namespace, properties.c.name, properties.c.xml
                ).select_from(properties.join(pairs, properties.c.node_id == pairs.c.source_id)),
            )
        )
        if blob_ids and await self._retain_copied_blobs(root.id) != len(blob_ids):
            raise Conflict("the contents being copied were deleted meanwhile")
        return root

    def _copy_pairs(self, source_id: int, copy_id: int, *, below: int | None) -> Any:
        """A recursive CTE (source_id, copy_id, depth) pairing each source node, down to depth
        `below` (None: all), with its copy: same name under the copy of its parent. The copy
        itself is never taken for a source node (it may sit inside the source, through a share
        mounted twice), so the source is the tree as it was before the copy."""
        pairs = select(
            literal(source_id, BigInteger).label("source_id"),
            literal(copy_id, BigInteger).label("copy_id"),
            literal(0).label("depth"),
        ).cte("pairs", recursive=True)
        original, duplicate = nodes.alias("original"), nodes.alias("duplicate")
        step = (
            select(original.c.id, duplicate.c.id, pairs.c.depth + 1)
            .select_from(
                pairs.join(original, original.c.parent_id == pairs.c.source_id).join(
                    duplicate,
                    and_(
                        duplicate.c.parent_id == pairs.c.copy_id,
                        duplicate.c.name == original.c.name,
                    ),
                )
            )
            .where(original.c.id != copy_id)
        )
        if below is not None:
            step = step.where(pairs.c.depth < below)
        return pairs.union_all(step)

    async def _retain_copied_blobs(self, copy_id: int) -> int:
        """One more reference per file below (and at) a fresh copy, grouped per blob; returns
        how many blob rows it found."""
        copied = select(nodes.c.id).where(nodes.c.id == copy_id).cte("copied", recursive=True)
        copied = copied.union_all(select(nodes.c.id).join(copied, nodes.c.parent_id == copied.c.id))
        counts = (
            select(nodes.c.blob_id, func.count().label("n"))
            .select_from(nodes.join(copied, nodes.c.id == copied.c.id))
            .where(nodes.c.blob_id.is_not(None))
            .group_by(nodes.c.blob_id)
            .subquery("counts")
        )
        # RETURNING rather than rowcount: Python's sqlite3 has no rowcount for a WITH statement.
        rows = await self._all(
            update(blobs)
            .where(blobs.c.id == counts.c.blob_id)
            .values(refcount=blobs.c.refcount + counts.c.n)
            .returning(blobs.c.id)
        )
        return len(rows)
