"""The SQL metadata store (SQLAlchemy Core): SQLite and PostgreSQL (asyncpg).

Write transactions on SQLite begin with BEGIN IMMEDIATE, so two writers never deadlock on a
lock upgrade, and are queued in-process, sharing their COMMITs (`group_commit`). SQLite runs
in WAL mode with synchronous=FULL: a commit returns only once it is on stable storage.

The statements of the everyday requests (GET, PUT, PROPFIND, MKCOL) are built once, at import
or once per shape (`statements`, run by `prepared`): building a Core statement costs far
more than SQLite takes to run it.

On PostgreSQL, writers run concurrently at READ COMMITTED. Where a transaction reads and then
writes on what it read (resolve a path, check quota and locks, then change the tree), the
first read of a home locks that home's root folder row (`SELECT … FOR UPDATE`), so writers of
one home queue as they do on SQLite while different homes proceed in parallel; every write
bumps the root's revision anyway, so this only takes that lock earlier. Two inserts of one
name still meet the unique constraint and give Conflict. Reads see one snapshot
(REPEATABLE READ, READ ONLY). Names sort bytewise on both (COLLATE "C" on PostgreSQL).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    and_,
    any_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ecrin.core.errors import Conflict, StorageError
from ecrin.core.model import (
    AppPassword,
    DeadProperty,
    Group,
    Lock,
    LockScope,
    LoginFlow,
    Mount,
    Node,
    NodeKind,
    Share,
    ShareType,
    TrashItem,
    UploadChunk,
    UploadSession,
    User,
    Version,
)
from ecrin.db import migrations, statements
from ecrin.db.engine import (
    EngineOptions,
    create_engine,
    database_errors,
    normalise_url,
    use_write_ahead_log,
)
from ecrin.db.group_commit import GroupCommit
from ecrin.db.prepared import PreparedRunner
from ecrin.db.protocol import ChangedChain, PathWalk
from ecrin.db.schema import (
    app_passwords,
    blobs,
    group_members,
    groups,
    locks,
    login_flows,
    mounts,
    nodes,
    properties,
    shares,
    trash,
    upload_chunks,
    upload_sessions,
    users,
    versions,
)

_T = TypeVar("_T")


def _record(cls: type[_T], row: Row[Any], **converted: Any) -> _T:
    """A model record from a row whose columns carry the record's field names."""
    columns = row._mapping
    values = {
        f.name: columns[f.name]
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]  # records are dataclasses
        if f.name in columns and f.name not in converted
    }
    return cls(**values, **converted)


def _user(row: Row[Any]) -> User:
    return _record(User, row)


_KINDS = {kind.value: kind for kind in NodeKind}


def _node(columns: Sequence[Any]) -> Node:
    """A node from the columns of `nodes` in table order: a `select(nodes)` row, or a slice of
    a wider row. Positional, with no per-field lookup: a PROPFIND converts thousands."""
    (
        node_id,
        parent_id,
        owner_id,
        name,
        kind,
        size,
        mtime,
        revision,
        blob_id,
        sha256,
        content_type,
        checksums,
        created_at,
    ) = columns
    return Node(
        node_id,
        parent_id,
        owner_id,
        name,
        _KINDS[kind],
        size,
        mtime,
        revision,
        blob_id,
        sha256,
        content_type,
        created_at,
        checksums,
    )


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


_NODE_WIDTH = len(nodes.columns)
_MOUNT_WIDTH = len(mounts.columns)
# Names a `walk` statement follows: each joins two tables, and SQLite joins at most 64.
_WALK_SPAN = 20


def _lock(row: Row[Any]) -> Lock:
    return Lock(
        token=row.token,
        owner_id=row.owner_id,
        path=tuple(row.path.split("/")) if row.path else (),
        scope=LockScope(row.scope),
        depth_infinity=row.depth_infinity,
        owner_xml=row.owner_xml,
        principal_id=row.principal_id,
        timeout_seconds=row.timeout_seconds,
        expires_at=row.expires_at,
    )


def _share(row: Row[Any]) -> Share:
    return _record(Share, row, share_type=ShareType(row.share_type))


def _version(row: Row[Any]) -> Version:
    return _record(Version, row)


def _trash_item(row: Row[Any]) -> TrashItem:
    return _record(TrashItem, row)


def _app_password(row: Row[Any]) -> AppPassword:
    return _record(AppPassword, row)


def _upload_session(row: Row[Any]) -> UploadSession:
    return UploadSession(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        destination=(
            None if row.destination is None else tuple(filter(None, row.destination.split("/")))
        ),
        total_length=row.total_length,
        created_at=row.created_at,
        touched_at=row.touched_at,
    )


def _upload_chunk(row: Row[Any]) -> UploadChunk:
    return _record(UploadChunk, row, offset=row.byte_offset)


def _login_flow(row: Row[Any]) -> LoginFlow:
    return _record(LoginFlow, row)


log = logging.getLogger(__name__)


class SqlTransaction:
    """One database transaction; the primitives the services compose atomically."""

    def __init__(
        self,
        conn: AsyncConnection,
        *,
        lock_homes: bool = False,
        prepared: PreparedRunner | None = None,
    ) -> None:
        self._conn = conn
        self._prepared = prepared or PreparedRunner(conn, None)
        # PostgreSQL writers: the first read of a home locks its root row (module docstring).
        self._lock_homes = lock_homes
        self._postgresql = conn.dialect.name == "postgresql"

    def _by_name(self, column: Any) -> ColumnElement[Any]:
        """`column` for ORDER BY, compared bytewise whatever the database's collation."""
        return column.collate("C") if self._postgresql else column  # type: ignore[no-any-return]

    def _among(self, column: ColumnElement[Any], ids: Sequence[int]) -> ColumnElement[bool]:
        """`column IN ids` as one parameter, however many ids: an array on PostgreSQL, a JSON
        list on SQLite. (SQLAlchemy renders an IN list a parameter per item at every
        execution: 0.6 s of a PROPFIND of 10,000 entries.)"""
        if self._postgresql:
            return column == any_(bindparam(None, list(ids), type_=ARRAY(BigInteger)))
        listed = func.json_each(json.dumps(list(ids))).table_valued("value")
        return column.in_(select(listed.c.value))

    def _id_list(self, ids: Sequence[int]) -> Any:
        """The value of a `statements.ids_in` parameter."""
        return list(ids) if self._postgresql else json.dumps(list(ids))

    async def _one(self, stmt: Any) -> Row[Any] | None:
        return (await self._conn.execute(stmt)).first()

    async def _all(self, stmt: Any) -> Sequence[Row[Any]]:
        return (await self._conn.execute(stmt)).all()

    # --- users ---------------------------------------------------------------------------

    async def insert_user(
        self,
        name: str,
        display_name: str,
        password_hash: str,
        quota_bytes: int | None,
        is_admin: bool,
        now: float,
    ) -> User:
        try:
            result = await self._conn.execute(
                insert(users).values(
                    name=name,
                    display_name=display_name,
                    password_hash=password_hash,
                    quota_bytes=quota_bytes,
                    used_bytes=0,
                    is_admin=is_admin,
                    tenant="default",
                    created_at=now,
                )
            )
        except IntegrityError as exc:
            raise Conflict(f"user {name!r} already exists") from exc
        user_id = result.inserted_primary_key[0]  # type: ignore[index]
        await self._new_root(user_id, users.c.root_node_id, now)
        user = await self.user_by_id(user_id)
        assert user is not None
        return user

    async def user_by_name(self, name: str) -> User | None:
        row = await self._one(select(users).where(users.c.name == name))
        return _user(row) if row else None

    async def user_by_id(self, user_id: int) -> User | None:
        row = await self._prepared.first(statements.USER_BY_ID, user_id=user_id)
        return _user(row) if row else None

    async def list_users(self) -> list[User]:
        query = select(users).order_by(self._by_name(users.c.name))
        return [_user(r) for r in await self._all(query)]

    async def user_count(self) -> int:
        row = await self._one(select(func.count()).select_from(users))
        return int(row[0]) if row else 0

    async def password_hash(self, user_id: int) -> str | None:
        row = await self._one(select(users.c.password_hash).where(users.c.id == user_id))
        return str(row[0]) if row else None

    async def set_password_hash(self, user_id: int, password_hash: str) -> None:
        await self._conn.execute(
            update(users).where(users.c.id == user_id).values(password_hash=password_hash)
        )

    async def set_quota(self, user_id: int, quota_bytes: int | None) -> None:
        await self._conn.execute(
            update(users).where(users.c.id == user_id).values(quota_bytes=quota_bytes)
        )

    async def add_usage(self, user_id: int, delta: int) -> User | None:
        if not delta:
            return None
        row = await self._prepared.first(statements.ADD_USAGE, user_id=user_id, delta=delta)
        return _user(row) if row else None

    async def set_usage(self, user_id: int, used_bytes: int) -> None:
        await self._conn.execute(
            update(users).where(users.c.id == user_id).values(used_bytes=used_bytes)
        )

    async def root_node(self, user_id: int) -> Node:
        row = await self._prepared.first(statements.root(self._lock_homes), user_id=user_id)
        if row is None:
            raise StorageError(f"user {user_id} has no home folder")
        return _node(row)

    async def delete_user(self, user_id: int) -> list[str]:
        """Delete a user and everything they own; returns blob ids no longer referenced."""
        root = await self.root_node(user_id)
        released = await self.delete_subtree(root.id)
        row = await self._one(select(users.c.trash_node_id).where(users.c.id == user_id))
        if row is not None and row[0] is not None:
            released += await self.delete_subtree(row[0])
        released += await self._delete_upload_sessions_of(user_id)
        await self._conn.execute(delete(locks).where(locks.c.owner_id == user_id))
        await self._conn.execute(delete(app_passwords).where(app_passwords.c.user_id == user_id))
        await self._conn.execute(delete(users).where(users.c.id == user_id))
        return released

    # --- app passwords -------------------------------------------------------------------

    async def insert_app_password(
        self, user_id: int, name: str, token_hash: str, now: float
    ) -> AppPassword:
        result = await self._conn.execute(
            insert(app_passwords).values(
                user_id=user_id, name=name, token_hash=token_hash, created_at=now
            )
        )
        return AppPassword(
            id=result.inserted_primary_key[0],  # type: ignore[index]
            user_id=user_id,
            name=name,
            created_at=now,
            last_used_at=None,
        )

    async def list_app_passwords(self, user_id: int) -> list[AppPassword]:
        rows = await self._all(
            select(app_passwords)
            .where(app_passwords.c.user_id == user_id)
            .order_by(app_passwords.c.id)
        )
        return [_app_password(r) for r in rows]

    async def delete_app_password(self, user_id: int, password_id: int) -> bool:
        result = await self._conn.execute(
            delete(app_passwords).where(
                and_(app_passwords.c.user_id == user_id, app_passwords.c.id == password_id)
            )
        )
        return bool(result.rowcount)

    async def app_password_user(self, user_id: int, token_hash: str) -> AppPassword | None:
        row = await self._one(
            select(app_passwords).where(
                and_(app_passwords.c.user_id == user_id, app_passwords.c.token_hash == token_hash)
            )
        )
        return _app_password(row) if row else None

    async def touch_app_password(self, password_id: int, now: float) -> None:
        await self._conn.execute(
            update(app_passwords).where(app_passwords.c.id == password_id).values(last_used_at=now)
        )

    # --- nodes ---------------------------------------------------------------------------

    async def node(self, node_id: int) -> Node | None:
        row = await self._prepared.first(statements.NODE, node_id=node_id)
        return _node(row) if row else None

    async def child(self, parent_id: int, name: str) -> Node | None:
        row = await self._prepared.first(statements.CHILD, parent_id=parent_id, name=name)
        return _node(row) if row else None

    async def walk(
        self, user_id: int, names: Sequence[str], *, start_id: int | None = None
    ) -> PathWalk:
        """From `start_id` (None: the user's home) down `names`, in one query per 20 names:
        the nodes found, and where a name has no node, `user_id`'s mount point of that name.

        On PostgreSQL, a writer's walk from a home locks the home's root row (module
        docstring), as `root_node` does."""
        start, found, mount = await self._walk_span(user_id, names[:_WALK_SPAN], start_id)
        walked = min(len(names), _WALK_SPAN)
        while start is not None and len(found) == walked < len(names):  # all found so far
            span = names[walked : walked + _WALK_SPAN]
            _, more, mount = await self._walk_span(user_id, span, found[-1].id)
            found += more
            walked += len(span)
        return PathWalk(start, tuple(found), mount)

    async def _walk_span(
        self, user_id: int, names: Sequence[str], start_id: int | None
    ) -> tuple[Node | None, list[Node], Mount | None]:
        """One statement (`statements.walk`)."""
        from_home = start_id is None
        statement = statements.walk(len(names), from_home, self._lock_homes and from_home)
        parameters: dict[str, Any] = {f"name_{d}": name for d, name in enumerate(names, 1)}
        parameters["user_id"] = user_id
        if not from_home:
            parameters["start_id"] = start_id
        row = await self._prepared.first(statement, **parameters)
        if row is None:
            if start_id is None:
                raise StorageError(f"user {user_id} has no home folder")
            return None, [], None
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
                return _node(values[:_NODE_WIDTH]), found, mount
            found.append(_node(hop))
        return _node(values[:_NODE_WIDTH]), found, None

    async def children(self, parent_id: int) -> list[Node]:
        statement = statements.children(self._postgresql)
        return [_node(r) for r in await self._prepared.all(statement, parent_id=parent_id)]

    async def listing(self, parent_id: int, user_id: int) -> tuple[list[Node], list[Mount]]:
        """A folder's children and `user_id`'s mount points in it, in no particular order
        (one query: the two row shapes side by side, the other's columns NULL)."""
        found: list[Node] = []
        mounted: list[Mount] = []
        for values in await self._prepared.all(
            statements.LISTING, parent_id=parent_id, user_id=user_id
        ):
            if values[0] is not None:
                found.append(_node(values[:_NODE_WIDTH]))
            else:
                share_id, mount_user_id, mount_parent_id, name = values[_NODE_WIDTH:]
                mounted.append(Mount(share_id, mount_user_id, mount_parent_id, name))
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
            row = await self._prepared.first(statements.INSERT_NODE, **values)
        except IntegrityError as exc:
            raise Conflict(f"{name!r} already exists") from exc
        assert row is not None
        return Node(id=row[0], **{**values, "kind": kind})  # type: ignore[arg-type]

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

    # --- blobs ---------------------------------------------------------------------------

    async def insert_blob(self, blob_id: str, size: int, sha256: str, now: float) -> None:
        await self._prepared.run(
            statements.INSERT_BLOB, blob_id=blob_id, size=size, sha256=sha256, now=now
        )

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

    # --- dead properties -----------------------------------------------------------------

    async def properties(self, node_id: int) -> list[DeadProperty]:
        rows = await self._all(
            select(properties)
            .where(properties.c.node_id == node_id)
            .order_by(properties.c.namespace, properties.c.name)
        )
        return [DeadProperty(r.namespace, r.name, r.xml) for r in rows]

    async def properties_of(self, node_ids: Sequence[int]) -> dict[int, list[DeadProperty]]:
        found: dict[int, list[DeadProperty]] = {}
        statement = statements.properties_of(self._postgresql)
        for r in await self._prepared.all(statement, ids=self._id_list(node_ids)):
            found.setdefault(r.node_id, []).append(DeadProperty(r.namespace, r.name, r.xml))
        return found

    async def set_property(self, node_id: int, prop: DeadProperty) -> None:
        await self.remove_property(node_id, prop.namespace, prop.name)
        await self._conn.execute(
            insert(properties).values(
                node_id=node_id, namespace=prop.namespace, name=prop.name, xml=prop.xml
            )
        )

    async def remove_property(self, node_id: int, namespace: str, name: str) -> None:
        await self._conn.execute(
            delete(properties).where(
                and_(
                    properties.c.node_id == node_id,
                    properties.c.namespace == namespace,
                    properties.c.name == name,
                )
            )
        )

    # --- locks ---------------------------------------------------------------------------

    async def locks(self, owner_id: int, now: float) -> list[Lock]:
        if self._lock_homes:  # a LOCK checks for conflicting locks, then inserts its own
            await self.root_node(owner_id)
        rows = await self._prepared.all(statements.LOCKS, owner_id=owner_id, now=now)
        return [_lock(r) for r in rows]

    async def insert_lock(self, lock: Lock) -> None:
        await self._conn.execute(
            insert(locks).values(
                token=lock.token,
                owner_id=lock.owner_id,
                path="/".join(lock.path),
                scope=lock.scope.value,
                depth_infinity=lock.depth_infinity,
                owner_xml=lock.owner_xml,
                principal_id=lock.principal_id,
                timeout_seconds=lock.timeout_seconds,
                expires_at=lock.expires_at,
            )
        )

    async def refresh_lock(self, token: str, timeout_seconds: int, expires_at: float) -> None:
        await self._conn.execute(
            update(locks)
            .where(locks.c.token == token)
            .values(timeout_seconds=timeout_seconds, expires_at=expires_at)
        )

    async def delete_lock(self, token: str) -> bool:
        result = await self._conn.execute(delete(locks).where(locks.c.token == token))
        return bool(result.rowcount)

    async def delete_expired_locks(self, now: float) -> None:
        await self._conn.execute(delete(locks).where(locks.c.expires_at <= now))

    # --- chunked uploads -----------------------------------------------------------------

    async def insert_upload_session(
        self,
        user_id: int,
        name: str,
        destination: tuple[str, ...] | None,
        total_length: int | None,
        now: float,
    ) -> UploadSession:
        try:
            result = await self._conn.execute(
                insert(upload_sessions).values(
                    user_id=user_id,
                    name=name,
                    destination=None if destination is None else "/".join(destination),
                    total_length=total_length,
                    created_at=now,
                    touched_at=now,
                )
            )
        except IntegrityError as exc:
            raise Conflict(f"the upload {name!r} already exists") from exc
        return UploadSession(
            id=result.inserted_primary_key[0],  # type: ignore[index]
            user_id=user_id,
            name=name,
            destination=destination,
            total_length=total_length,
            created_at=now,
            touched_at=now,
        )

    async def upload_session(self, user_id: int, name: str) -> UploadSession | None:
        row = await self._one(
            select(upload_sessions).where(
                and_(upload_sessions.c.user_id == user_id, upload_sessions.c.name == name)
            )
        )
        return _upload_session(row) if row else None

    async def upload_sessions(self, user_id: int) -> list[UploadSession]:
        rows = await self._all(
            select(upload_sessions)
            .where(upload_sessions.c.user_id == user_id)
            .order_by(upload_sessions.c.name)
        )
        return [_upload_session(r) for r in rows]

    async def touch_upload_session(self, session_id: int, now: float) -> None:
        await self._conn.execute(
            update(upload_sessions).where(upload_sessions.c.id == session_id).values(touched_at=now)
        )

    async def upload_chunks(self, session_id: int) -> list[UploadChunk]:
        rows = await self._all(
            select(upload_chunks)
            .where(upload_chunks.c.session_id == session_id)
            .order_by(upload_chunks.c.name)
        )
        return [_upload_chunk(r) for r in rows]

    async def put_upload_chunk(self, chunk: UploadChunk) -> str | None:
        replaced = await self.delete_upload_chunk(chunk.session_id, chunk.name)
        await self._conn.execute(
            insert(upload_chunks).values(
                session_id=chunk.session_id,
                name=chunk.name,
                blob_id=chunk.blob_id,
                size=chunk.size,
                byte_offset=chunk.offset,
                created_at=chunk.created_at,
            )
        )
        return replaced

    async def delete_upload_chunk(self, session_id: int, name: str) -> str | None:
        where = and_(upload_chunks.c.session_id == session_id, upload_chunks.c.name == name)
        row = await self._one(select(upload_chunks.c.blob_id).where(where))
        if row is None:
            return None
        await self._conn.execute(delete(upload_chunks).where(where))
        return str(row[0])

    async def delete_upload_session(self, session_id: int) -> list[str]:
        rows = await self._all(
            select(upload_chunks.c.blob_id).where(upload_chunks.c.session_id == session_id)
        )
        await self._conn.execute(
            delete(upload_chunks).where(upload_chunks.c.session_id == session_id)
        )
        await self._conn.execute(delete(upload_sessions).where(upload_sessions.c.id == session_id))
        return [str(r[0]) for r in rows]

    async def idle_upload_sessions(self, idle_since: float) -> list[UploadSession]:
        rows = await self._all(
            select(upload_sessions)
            .where(upload_sessions.c.touched_at < idle_since)
            .order_by(upload_sessions.c.id)
        )
        return [_upload_session(r) for r in rows]

    async def pending_upload_bytes(self, user_id: int) -> int:
        row = await self._one(
            select(func.coalesce(func.sum(upload_chunks.c.size), literal(0)))
            .select_from(upload_chunks.join(upload_sessions))
            .where(upload_sessions.c.user_id == user_id)
        )
        return int(row[0]) if row else 0

    async def upload_chunk_blob_ids(self) -> set[str]:
        return {str(r[0]) for r in await self._all(select(upload_chunks.c.blob_id))}

    async def _delete_upload_sessions_of(self, user_id: int) -> list[str]:
        released: list[str] = []
        for session in await self.upload_sessions(user_id):
            released += await self.delete_upload_session(session.id)
        return released

    # --- login flow v2 -------------------------------------------------------------------

    async def insert_login_flow(self, flow: LoginFlow) -> None:
        await self._conn.execute(
            insert(login_flows).values(
                poll_token_hash=flow.poll_token_hash,
                login_token_hash=flow.login_token_hash,
                client_name=flow.client_name,
                user_id=flow.user_id,
                created_at=flow.created_at,
                expires_at=flow.expires_at,
            )
        )

    async def login_flow_by_login_token(self, login_token_hash: str) -> LoginFlow | None:
        row = await self._one(
            select(login_flows).where(login_flows.c.login_token_hash == login_token_hash)
        )
        return _login_flow(row) if row else None

    async def grant_login_flow(self, login_token_hash: str, user_id: int) -> None:
        await self._conn.execute(
            update(login_flows)
            .where(login_flows.c.login_token_hash == login_token_hash)
            .values(user_id=user_id)
        )

    async def take_login_flow(self, poll_token_hash: str) -> LoginFlow | None:
        where = and_(
            login_flows.c.poll_token_hash == poll_token_hash, login_flows.c.user_id.is_not(None)
        )
        row = await self._one(select(login_flows).where(where))
        if row is None:
            return None
        await self._conn.execute(delete(login_flows).where(where))
        return _login_flow(row)

    async def delete_expired_login_flows(self, now: float) -> int:
        result = await self._conn.execute(
            delete(login_flows).where(login_flows.c.expires_at <= now)
        )
        return int(result.rowcount)

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

    # --- groups --------------------------------------------------------------------------

    async def insert_group(self, name: str, display_name: str, now: float) -> Group:
        try:
            result = await self._conn.execute(
                insert(groups).values(
                    name=name, display_name=display_name, created_at=now, tenant="default"
                )
            )
        except IntegrityError as exc:
            raise Conflict(f"group {name!r} already exists") from exc
        return Group(result.inserted_primary_key[0], name, display_name)  # type: ignore[index]

    async def group_by_name(self, name: str) -> Group | None:
        row = await self._one(select(groups).where(groups.c.name == name))
        return Group(row.id, row.name, row.display_name) if row else None

    async def group_by_id(self, group_id: int) -> Group | None:
        row = await self._one(select(groups).where(groups.c.id == group_id))
        return Group(row.id, row.name, row.display_name) if row else None

    async def list_groups(self) -> list[Group]:
        rows = await self._all(select(groups).order_by(groups.c.name))
        return [Group(r.id, r.name, r.display_name) for r in rows]

    async def delete_group(self, group_id: int) -> None:
        await self._conn.execute(delete(groups).where(groups.c.id == group_id))

    async def add_member(self, group_id: int, user_id: int) -> bool:
        try:
            # A savepoint: on PostgreSQL a failed statement would abort the whole transaction.
            async with self._conn.begin_nested():
                await self._conn.execute(
                    insert(group_members).values(group_id=group_id, user_id=user_id)
                )
        except IntegrityError:
            return False
        return True

    async def remove_member(self, group_id: int, user_id: int) -> bool:
        result = await self._conn.execute(
            delete(group_members).where(
                and_(group_members.c.group_id == group_id, group_members.c.user_id == user_id)
            )
        )
        return bool(result.rowcount)

    async def group_members(self, group_id: int) -> list[User]:
        rows = await self._all(
            select(users)
            .join(group_members, group_members.c.user_id == users.c.id)
            .where(group_members.c.group_id == group_id)
            .order_by(users.c.name)
        )
        return [_user(r) for r in rows]

    async def user_groups(self, user_id: int) -> list[Group]:
        rows = await self._all(
            select(groups)
            .join(group_members, group_members.c.group_id == groups.c.id)
            .where(group_members.c.user_id == user_id)
            .order_by(groups.c.name)
        )
        return [Group(r.id, r.name, r.display_name) for r in rows]

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


class SqlMetadataStore:
    def __init__(self, url: str, *, durable: bool = True, pool_size: int = 10) -> None:
        self.url = normalise_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self.engine: AsyncEngine = create_engine(
            self.url, EngineOptions(durable=durable, pool_size=pool_size)
        )
        # SQLite has one writer at a time: queue ours here rather than in busy_timeout.
        self._writes = GroupCommit(self.engine) if self.is_sqlite else None

    async def open(self) -> None:
        """Create or upgrade the schema (see `ecrin.db.migrations`)."""
        with database_errors():
            if self.is_sqlite:
                await use_write_ahead_log(self.engine)
            async with self.engine.connect() as conn:
                conn = await conn.execution_options(ecrin_write=True)
                async with conn.begin():
                    before, after = await conn.run_sync(migrations.upgrade)
        if before != after:
            log.info("database schema: %s -> %s", before or "empty", after)

    async def close(self) -> None:
        if self._writes is not None:
            with database_errors():
                await self._writes.close()
        await self.engine.dispose()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[SqlTransaction]:
        with database_errors():
            if self.is_sqlite:
                # Not `async with`: its exit closes in a task of its own, shielded from
                # cancellation, which costs a fifth of a read. SQLite's close runs inline
                # here (sqlite_inline) and never yields, so a cancellation cannot cut it short.
                conn = await self.engine.connect()
                try:
                    async with conn.begin():
                        yield SqlTransaction(conn, prepared=await PreparedRunner.of(conn))
                finally:
                    await conn.close()
                return
            async with self.engine.connect() as conn:
                if not self.is_sqlite:
                    conn = await conn.execution_options(
                        isolation_level="REPEATABLE READ", postgresql_readonly=True
                    )
                async with conn.begin():
                    yield SqlTransaction(conn, prepared=await PreparedRunner.of(conn))

    @asynccontextmanager
    async def write(self) -> AsyncIterator[SqlTransaction]:
        with database_errors():
            if self._writes is not None:
                async with self._writes.transaction() as conn:
                    yield SqlTransaction(conn, prepared=await PreparedRunner.of(conn))
                return
            async with self.engine.connect() as conn:
                conn = await conn.execution_options(ecrin_write=True)
                async with conn.begin():
                    yield SqlTransaction(conn, lock_homes=True, prepared=PreparedRunner(conn, None))

    async def ping(self) -> None:
        with database_errors():
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
