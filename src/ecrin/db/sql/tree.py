"""The tree of nodes in SQL: find, walk, list, insert, change, move and bump nodes."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

from sqlalchemy import literal, select, update
from sqlalchemy.exc import IntegrityError

from ecrin.core.errors import Conflict, StorageError
from ecrin.core.model import Mount, Node, NodeKind
from ecrin.db import statements
from ecrin.db.protocol import ChangedChain, PathWalk
from ecrin.db.schema import nodes, users
from ecrin.db.sql.base import SqlTransactionBase
from ecrin.db.sql.rows import _MOUNT_WIDTH, _NODE_WIDTH, _node, _summary_node

# Names a `walk` statement follows: each joins two tables, and SQLite joins at most 64.
_WALK_SPAN = 20
_NAME_KEYS = tuple(f"name_{d}" for d in range(1, _WALK_SPAN + 1))  # `statements.walk`'s


class SqlTree(SqlTransactionBase):
    """Nodes one at a time, or along a path: the tree's everyday reads and writes."""

    # --- nodes ---------------------------------------------------------------------------

    async def node(self, node_id: int) -> Node | None:
        row = await self._prepared.first(statements.NODE, node_id=node_id)
        return _node(row) if row else None

    async def child(self, parent_id: int, name: str) -> Node | None:
        row = await self._prepared.first(statements.CHILD, parent_id=parent_id, name=name)
        return _node(row) if row else None

    async def walk(
        self,
        user_id: int,
        names: Sequence[str],
        *,
        start_id: int | None = None,
        content: bool = False,
    ) -> PathWalk:
        """From `start_id` (None: the user's home) down `names`, in one query per 20 names:
        the nodes found, and where a name has no node, `user_id`'s mount point of that name.

        On PostgreSQL, a writer's walk from a home locks the home's root row (package
        docstring), as `root_node` does."""
        span = names[:_WALK_SPAN]
        walked = len(span)
        start, found, mount, kept = await self._walk_span(
            user_id, span, start_id, content and walked == len(names)
        )
        while start is not None and len(found) == walked < len(names):  # all found so far
            span = names[walked : walked + _WALK_SPAN]
            walked += len(span)
            _, more, mount, kept = await self._walk_span(
                user_id, span, found[-1].id, content and walked == len(names)
            )
            found += more
        return PathWalk(start, tuple(found), mount, kept)

    async def _walk_span(
        self, user_id: int, names: Sequence[str], start_id: int | None, content: bool
    ) -> tuple[Node | None, list[Node], Mount | None, bytes | None]:
        """One statement (`statements.walk`)."""
        from_home = start_id is None
        statement = statements.walk(len(names), from_home, self._lock_homes and from_home, content)
        parameters: dict[str, Any] = dict(zip(_NAME_KEYS, names, strict=False))
        parameters["user_id"] = user_id
        if not from_home:
            parameters["start_id"] = start_id
        row = await self._prepared.first(statement, **parameters)
        if row is None:
            if start_id is None:
                raise StorageError(f"user {user_id} has no home folder")
            return None, [], None, None
        values = tuple(row)
        found: list[Node] = []
        mount_offset = _NODE_WIDTH * (len(names) + 1)
        for depth in range(1, len(names) + 1):
            hop = values[_NODE_WIDTH * depth : _NODE_WIDTH * (depth + 1)]
            if hop[0] is None:
                at = mount_offset + _MOUNT_WIDTH * (depth - 1)
                share_id, mount_user_id, mount_parent_id, name = values[at : at + _MOUNT_WIDTH]
                mount = None
                if share_id is not None:
                    mount = Mount(share_id, mount_user_id, mount_parent_id, name)
                return _node(values[:_NODE_WIDTH]), found, mount, None
            found.append(_node(hop))
        kept = values[-1] if content else None
        return _node(values[:_NODE_WIDTH]), found, None, None if kept is None else bytes(kept)

    async def children(self, parent_id: int, *, details: bool = True) -> list[Node]:
        statement = statements.children(self._postgresql, details)
        make = _node if details else _summary_node
        return [make(r) for r in await self._prepared.all(statement, parent_id=parent_id)]

    async def listing(
        self, parent_id: int, user_id: int, *, details: bool = True
    ) -> tuple[list[Node], list[Mount]]:
        """A folder's children and `user_id`'s mount points in it, in no particular order
        (one query: `statements.listing`)."""
        make = _node if details else _summary_node
        found: list[Node] = []
        mounted: list[Mount] = []
        for values in await self._prepared.all(
            statements.listing(details), parent_id=parent_id, user_id=user_id
        ):
            if values[0] is not None:
                found.append(make(values))
            else:  # a mount point: see `statements.listing` for where its columns are
                mounted.append(Mount(values[5], values[2], values[1], values[3]))
        return found, mounted

    async def insert_node(
        self,
        *,
        parent_id: int | None,
        owner_id: int,
        name: str,
        kind: NodeKind,
        size: int,
        mtime: float,
        now: float,
        blob_id: str | None = None,
        sha256: str | None = None,
        content_type: str | None = None,
        checksums: str | None = None,
    ) -> Node:
        values = dict(
            parent_id=parent_id,
            owner_id=owner_id,
            name=name,
            kind=kind.value,
            size=size,
            mtime=mtime,
            revision=1,
            blob_id=blob_id,
            sha256=sha256,
            content_type=content_type,
            created_at=now,
            checksums=checksums,
        )
        try:
            node_id = await self._prepared.insert(statements.INSERT_NODE, **values)
        except IntegrityError as exc:
            raise Conflict(f"{name!r} already exists") from exc
        return Node(id=node_id, **{**values, "kind": kind})  # type: ignore[arg-type]

    async def update_file(
        self,
        node_id: int,
        *,
        size: int,
        mtime: float,
        blob_id: str,
        sha256: str,
        content_type: str | None,
        checksums: str | None,
    ) -> Node:
        """Replace a file's contents (its revision bumps); returns the node as changed."""
        row = await self._prepared.first(
            statements.UPDATE_FILE,
            node_id=node_id,
            size=size,
            mtime=mtime,
            blob_id=blob_id,
            sha256=sha256,
            content_type=content_type,
            checksums=checksums,
        )
        if row is None:
            raise StorageError(f"node {node_id} vanished during its update")
        return _node(row)

    async def set_mtime(self, node_id: int, mtime: float) -> None:
        await self._conn.execute(update(nodes).where(nodes.c.id == node_id).values(mtime=mtime))

    async def move_node(self, node_id: int, new_parent_id: int, new_name: str) -> None:
        try:
            await self._conn.execute(
                update(nodes)
                .where(nodes.c.id == node_id)
                .values(parent_id=new_parent_id, name=new_name)
            )
        except IntegrityError as exc:
            raise Conflict(f"{new_name!r} already exists") from exc

    async def bump_revisions(self, node_ids: Iterable[int], size_delta: int = 0) -> None:
        """Mark folders changed (new etag) and add `size_delta` to their recursive size."""
        ids = list(node_ids)
        if ids:
            await self._conn.execute(
                update(nodes)
                .where(nodes.c.id.in_(ids))
                .values(revision=nodes.c.revision + 1, size=nodes.c.size + size_delta)
            )

    async def bump_ancestors(
        self, node_id: int, size_delta: int = 0, *, skip: Collection[int] = ()
    ) -> ChangedChain:
        """`bump_revisions` on the node and its ancestors up to its storage root, except
        those in `skip`, in one statement; says which of them carry a share."""
        statement = statements.bump_ancestors(self._postgresql, bool(skip))
        parameters: dict[str, Any] = {"node_id": node_id, "size_delta": size_delta}
        if skip:
            parameters["skip"] = self._id_list(list(skip))
        rows = await self._prepared.all(statement, **parameters)
        return ChangedChain(
            ids=[int(r.id) for r in rows], shared_ids=[int(r.id) for r in rows if r.shared]
        )

    def _chain(self, node_id: int) -> Any:
        """A recursive CTE (id, parent_id, depth) of the node and its ancestors, depth 0 first."""
        up = (
            select(nodes.c.id, nodes.c.parent_id, literal(0).label("depth"))
            .where(nodes.c.id == node_id)
            .cte("up", recursive=True)
        )
        return up.union_all(
            select(nodes.c.id, nodes.c.parent_id, (up.c.depth + 1).label("depth")).join(
                up, nodes.c.id == up.c.parent_id
            )
        )

    # --- checksums -----------------------------------------------------------------------

    async def set_checksums(self, node_id: int, checksums: str | None) -> None:
        await self._conn.execute(
            update(nodes).where(nodes.c.id == node_id).values(checksums=checksums)
        )

    # --- tree walks across owners (sharing) ---------------------------------------------

    async def ancestor_ids(self, node_id: int) -> list[int]:
        """The node and its ancestors up to its storage root, nearest first (one query)."""
        up = self._chain(node_id)
        rows = await self._all(select(up.c.id).order_by(up.c.depth))
        return [int(r.id) for r in rows]

    async def ancestors(self, node_id: int) -> list[Node]:
        """Like `ancestor_ids`, with the whole nodes (one query)."""
        up = self._chain(node_id)
        rows = await self._all(select(nodes).join(up, nodes.c.id == up.c.id).order_by(up.c.depth))
        return [_node(r) for r in rows]

    async def set_subtree_owner(self, node_ids: Sequence[int], owner_id: int) -> None:
        await self._conn.execute(
            update(nodes).where(self._among(nodes.c.id, node_ids)).values(owner_id=owner_id)
        )

    async def trash_root(self, user_id: int, now: float) -> Node:
        """The folder that holds a user's deleted items (created on first use)."""
        row = await self._one(
            select(nodes)
            .join(users, users.c.trash_node_id == nodes.c.id)
            .where(users.c.id == user_id)
        )
        if row is not None:
            return _node(row)
        return await self._new_root(user_id, users.c.trash_node_id, now)

    async def _new_root(self, user_id: int, column: Any, now: float) -> Node:
        """A parentless folder of the user's (their home, or their trash), noted in `column`."""
        root = await self.insert_node(
            parent_id=None,
            owner_id=user_id,
            name="",
            kind=NodeKind.FOLDER,
            size=0,
            mtime=now,
            now=now,
        )
        await self._conn.execute(
            update(users).where(users.c.id == user_id).values({column: root.id})
        )
        return root
