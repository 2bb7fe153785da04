"""The statements of the everyday requests, built once (see `ecrin.db.prepared`).

Constants are statements of one shape; the functions build a statement per shape (the depth
of a path, the dialect, whether a home row is locked) and keep it (`functools.cache`).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    Text,
    and_,
    any_,
    bindparam,
    exists,
    func,
    insert,
    literal_column,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.sql import FromClause
from sqlalchemy.sql.elements import BindParameter

from ecrin.db.prepared import Prepared
from ecrin.db.schema import blobs, locks, mounts, nodes, properties, shares, users

USER_BY_ID = Prepared(select(users).where(users.c.id == bindparam("user_id")))
ADD_USAGE = Prepared(
    update(users)
    .where(users.c.id == bindparam("user_id"))
    .values(used_bytes=users.c.used_bytes + bindparam("delta"))
    .returning(users.c.used_bytes, users.c.quota_bytes)
)
NODE = Prepared(select(nodes).where(nodes.c.id == bindparam("node_id")))
CHILD = Prepared(
    select(nodes).where(
        and_(nodes.c.parent_id == bindparam("parent_id"), nodes.c.name == bindparam("name"))
    )
)
INSERT_NODE = Prepared(
    insert(nodes).values(
        {
            column: bindparam(column)
            for column in (
                "parent_id",
                "owner_id",
                "name",
                "kind",
                "size",
                "mtime",
                "blob_id",
                "sha256",
                "content_type",
                "created_at",
                "checksums",
            )
        }
        | {"revision": 1}
    ),
    new_id=nodes.c.id,
)
UPDATE_FILE = Prepared(
    update(nodes)
    .where(nodes.c.id == bindparam("node_id"))
    .values(
        {
            column: bindparam(column)
            for column in ("size", "mtime", "blob_id", "sha256", "content_type", "checksums")
        }
        | {"revision": nodes.c.revision + 1}
    )
    .returning(*nodes.columns)
)
INSERT_BLOB = Prepared(
    insert(blobs).values(
        id=bindparam("blob_id"),
        size=bindparam("size"),
        sha256=bindparam("sha256"),
        refcount=1,
        created_at=bindparam("now"),
        content=bindparam("content"),
    )
)
BLOB_CONTENT = Prepared(select(blobs.c.content).where(blobs.c.id == bindparam("blob_id")))
LOCKS = Prepared(
    select(locks).where(
        and_(locks.c.owner_id == bindparam("owner_id"), locks.c.expires_at > bindparam("now"))
    )
)
# PostgreSQL writers: a home's locks, read with its root row locked (`root(lock=True)` and
# `LOCKS` in one round trip); one row of NULLs when it has none.
LOCKS_LOCKING_HOME = Prepared(
    select(locks)
    .select_from(
        nodes.join(users, users.c.root_node_id == nodes.c.id).outerjoin(
            locks,
            and_(locks.c.owner_id == users.c.id, locks.c.expires_at > bindparam("now")),
        )
    )
    .where(users.c.id == bindparam("owner_id"))
    .with_for_update(of=nodes)
)
MOUNT_AT = Prepared(
    select(mounts).where(
        and_(
            mounts.c.user_id == bindparam("user_id"),
            mounts.c.parent_id == bindparam("parent_id"),
            mounts.c.name == bindparam("name"),
        )
    )
)
# The columns of a node that place and describe it, in `Node`'s order: what a listing reads
# when what is asked of the children needs no more (`SqlTree.listing`, `rows._summary_node`).
SUMMARY = (
    nodes.c.id,
    nodes.c.parent_id,
    nodes.c.owner_id,
    nodes.c.name,
    nodes.c.kind,
    nodes.c.size,
    nodes.c.mtime,
    nodes.c.revision,
)


@cache
def listing(details: bool) -> Prepared:
    """A folder's children (every column, or the `SUMMARY`) and `user_id`'s mount points in
    it. A mount point's row has the node's width (no NULL columns beside every child's: each
    costs a listing of 10,000 children ~0.6 ms to read): its id and kind NULL, its user under
    the owner and its share under the size (`SqlTree.listing`)."""
    columns = nodes.columns if details else SUMMARY
    mount_columns = {
        "parent_id": mounts.c.parent_id,
        "owner_id": mounts.c.user_id,
        "name": mounts.c.name,
        "size": mounts.c.share_id,
    }
    return Prepared(
        union_all(
            select(*columns).where(nodes.c.parent_id == bindparam("parent_id")),
            select(*[mount_columns.get(c.key, null()) for c in columns]).where(
                and_(
                    mounts.c.user_id == bindparam("user_id"),
                    mounts.c.parent_id == bindparam("parent_id"),
                )
            ),
        ),
        positional=True,
    )


def ids_in(column: Any, name: str, postgresql: bool) -> ColumnElement[bool]:
    """`column IN (the ids in parameter name)`, the list as one parameter: an array on
    PostgreSQL, a JSON list on SQLite (`SqlTransaction._id_list` makes the value)."""
    if postgresql:
        return column == any_(bindparam(name, type_=ARRAY(BigInteger)))  # type: ignore[no-any-return]
    listed = func.json_each(bindparam(name, type_=Text)).table_valued("value")
    return column.in_(select(listed.c.value))  # type: ignore[no-any-return]


@cache
def root(lock: bool) -> Prepared:
    query = select(nodes).join(users, users.c.root_node_id == nodes.c.id)
    if lock:
        query = query.with_for_update(of=nodes)
    return Prepared(query.where(users.c.id == bindparam("user_id")))


@cache
def children(postgresql: bool, details: bool) -> Prepared:
    name = nodes.c.name.collate("C") if postgresql else nodes.c.name
    query = select(*(nodes.columns if details else SUMMARY))
    return Prepared(query.where(nodes.c.parent_id == bindparam("parent_id")).order_by(name))


@cache
def properties_of(postgresql: bool) -> Prepared:
    return Prepared(select(properties).where(ids_in(properties.c.node_id, "ids", postgresql)))


@cache
def shares_on(postgresql: bool) -> Prepared:
    return Prepared(select(shares).where(ids_in(shares.c.node_id, "ids", postgresql)))


@cache
def bump_ancestors(postgresql: bool, skipping: bool) -> Prepared:
    """Bump `node_id` and its ancestors (parameter `size_delta`; `skip`: ids to leave)."""
    up = (
        select(nodes.c.id, nodes.c.parent_id)
        .where(nodes.c.id == bindparam("node_id"))
        .cte("up", recursive=True)
    )
    up = up.union_all(select(nodes.c.id, nodes.c.parent_id).join(up, nodes.c.id == up.c.parent_id))
    # Whether a row carries a share, looked up by index for that row (a second pass over
    # the chain cost SQLite more than the update itself).
    # (`nodes.id` spelt out: SQLite's RETURNING names columns bare, and a bare `id` inside
    # the subquery would be the share's.)
    shared = exists().where(shares.c.node_id == literal_column("nodes.id"))
    statement = (
        update(nodes)
        .where(nodes.c.id.in_(select(up.c.id)))
        .values(revision=nodes.c.revision + 1, size=nodes.c.size + bindparam("size_delta"))
        .returning(nodes.c.id, shared.label("shared"))
    )
    if skipping:
        statement = statement.where(~ids_in(nodes.c.id, "skip", postgresql))
    return Prepared(statement)


@cache
def walk(depth: int, from_home: bool, lock: bool, content: bool = False) -> Prepared:
    """The start node (`start_id`, or `user_id`'s home) joined with a child per name
    (`name_1`…) and `user_id`'s mount point of that name; outer joins, so a missing name
    ends the path with NULLs. With `content`, the last column is the bytes the last node's
    blob row keeps, if any (`contents.py`)."""
    hops = [nodes.alias(f"n{d}") for d in range(depth + 1)]
    points = [mounts.alias(f"m{d}") for d in range(1, depth + 1)]
    joined: FromClause
    if from_home:
        joined = users.join(hops[0], hops[0].c.id == users.c.root_node_id)
        where = users.c.id == bindparam("user_id")
    else:
        joined, where = hops[0], hops[0].c.id == bindparam("start_id")
    for d, (above, here, point) in enumerate(zip(hops[:-1], hops[1:], points, strict=True), 1):
        name: BindParameter[str] = bindparam(f"name_{d}")
        joined = joined.outerjoin(
            here, and_(here.c.parent_id == above.c.id, here.c.name == name)
        ).outerjoin(
            point,
            and_(
                point.c.user_id == bindparam("user_id"),
                point.c.parent_id == above.c.id,
                point.c.name == name,
            ),
        )
    columns = [c for hop in hops for c in hop.columns]
    columns += [c for point in points for c in point.columns]
    if content:
        joined = joined.outerjoin(blobs, blobs.c.id == hops[-1].c.blob_id)
        columns.append(blobs.c.content)
    query = select(*columns).select_from(joined).where(where)
    if lock:
        query = query.with_for_update(of=hops[0])
    return Prepared(query, positional=True)  # read by position: a wide row per depth
