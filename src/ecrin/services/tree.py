"""Resolving paths to nodes inside one transaction, across share mount points.

A user's path starts in their home. Where a segment names a mount point (a share received
from someone else), resolution continues in the sharer's storage with the share's
effective permissions. One place decides access: everything downstream uses the
`permissions` this module computes.
"""

from __future__ import annotations

from dataclasses import dataclass

from ecrin.core.errors import Conflict, Forbidden, NotFound
from ecrin.core.model import Mount, Node, Share, ShareType, User
from ecrin.core.paths import DavPath
from ecrin.core.permissions import FILE_MASK, Permission
from ecrin.db.protocol import MetadataTransaction


@dataclass(frozen=True, slots=True)
class Resolved:
    """Where a path lands: its existing ancestors (home first) and the node, if any."""

    path: DavPath
    ancestors: tuple[Node, ...]
    node: Node | None
    permissions: Permission  # on the node; if there is none, on the parent
    parent_permissions: Permission
    share: Share | None = None  # the (innermost) share crossed to get here
    mount: Mount | None = None  # set when the node itself is a mount point
    content: bytes | None = None  # asked of `resolve`: the node's bytes, if its blob row has them

    @property
    def parent(self) -> Node:
        return self.ancestors[-1]

    def existing(self) -> Node:
        if self.node is None:
            raise NotFound(f"{self.path} does not exist")
        return self.node

    @property
    def ancestor_ids(self) -> list[int]:
        return [a.id for a in self.ancestors]

    @property
    def storage_owner_id(self) -> int:
        """Whose storage (and quota) the node, or a new node at this path, belongs to."""
        return self.node.owner_id if self.node is not None else self.parent.owner_id

    def require(self, wanted: Permission, *, on_parent: bool = False) -> None:
        held = self.parent_permissions if on_parent else self.permissions
        if wanted not in held:
            if Permission.READ not in held:  # what cannot be read is not shown to exist
                raise NotFound(f"{self.path} does not exist")
            raise Forbidden(f"you may not do this on {self.path}")


async def share_permissions(
    tx: MetadataTransaction, share: Share, user: User | None, now: float
) -> Permission:
    """What a share grants `user` (None: a link visitor) right now: capped by every parent
    share, nothing if any share in the chain expired, was revoked, or no longer contains the
    node (moved away, or deleted into the trash)."""
    granted = Permission.parse(share.permissions)
    if (share.share_type is ShareType.LINK) != (user is None):
        return Permission.NONE  # links serve their visitors only; users hold user shares
    if share.share_type is ShareType.USER and (user is None or share.share_with_user != user.id):
        return Permission.NONE
    if share.share_type is ShareType.GROUP and (
        user is None or share.share_with_group not in {g.id for g in await tx.user_groups(user.id)}
    ):
        return Permission.NONE
    current: Share | None = share
    while current is not None:
        if current.expired(now):
            return Permission.NONE
        chain = await tx.ancestor_ids(current.node_id)
        home = await tx.root_node(current.node_owner_id)
        if chain[-1] != home.id:  # the node sits in the trash
            return Permission.NONE
        if current.parent_share_id is None:
            return granted
        parent = await tx.share(current.parent_share_id)
        if parent is None or parent.node_id not in chain:
            return Permission.NONE
        if Permission.SHARE not in Permission.parse(parent.permissions):
            return Permission.NONE  # the resharer lost the right to share
        granted &= Permission.parse(parent.permissions)
        current = parent
    return granted


async def link_root(
    tx: MetadataTransaction, share_id: int, now: float
) -> tuple[Node, Permission, Share]:
    """Where a public link's visitor starts, with what the link grants (NotFound if dead)."""
    share = await tx.share(share_id)
    if share is None or share.share_type is not ShareType.LINK:
        raise NotFound("this link does not exist")
    permissions = await share_permissions(tx, share, None, now)
    node = await tx.node(share.node_id)
    if node is None or permissions == Permission.NONE:
        raise NotFound("this link does not exist or has expired")
    if not node.is_folder:
        permissions &= FILE_MASK
    return node, permissions, share


async def resolve(
    tx: MetadataTransaction, user: User, path: DavPath, now: float, *, content: bool = False
) -> Resolved:
    """Walk the path from the user's home. A missing parent folder is a Conflict (409).

    The nodes along the path come from one query (`MetadataTransaction.walk`), and one more
    after each mount point crossed; the decisions are taken here, segment by segment. With
    `content`, the last query also brings the node's bytes when its blob row keeps them
    (not for the root of a home or link, which no walk reaches)."""
    share: Share | None = None
    if user.link_share_id is None:
        walk = await tx.walk(user.id, path.segments, content=content)
        assert walk.start is not None  # a home always exists (or `walk` raises)
        node, permissions = walk.start, Permission.ALL
    else:
        node, permissions, share = await link_root(tx, user.link_share_id, now)
        if not path.is_root:
            walk = await tx.walk(user.id, path.segments, start_id=node.id, content=content)
    if path.is_root:
        return Resolved(path, (), node, permissions, permissions, share)
    ancestors: list[Node] = []
    parent_permissions = permissions
    mount: Mount | None = None
    walked_from = 0  # the index in path.segments of walk.nodes[0]
    for index in range(len(path.segments)):
        if not node.is_folder or (Permission.READ not in permissions and index > 0):
            raise Conflict(f"{DavPath(path.segments[:index])} is not a folder")
        ancestors.append(node)
        parent_permissions = permissions
        mount = None
        position = index - walked_from
        child = walk.nodes[position] if position < len(walk.nodes) else None
        if child is None and node.owner_id == user.id:
            mount = walk.mount  # the user's mount point of this name in this folder, if any
            if mount is not None:
                share, permissions = await _enter(tx, mount, user, now)
                if share is not None:
                    walked_from = index + 1
                    rest = path.segments[walked_from:]
                    walk = await tx.walk(user.id, rest, start_id=share.node_id, content=content)
                    child = walk.start
                if child is None:
                    mount = None
        if child is None:
            if index < len(path.segments) - 1:
                raise Conflict(f"folder {DavPath(path.segments[: index + 1])} does not exist")
            return Resolved(
                path, tuple(ancestors), None, parent_permissions, parent_permissions, share
            )
        if not child.is_folder:
            permissions &= FILE_MASK
        node = child
    return Resolved(
        path, tuple(ancestors), node, permissions, parent_permissions, share, mount, walk.content
    )


async def _enter(
    tx: MetadataTransaction, mount: Mount, user: User, now: float
) -> tuple[Share | None, Permission]:
    """The share behind a mount point and what it grants; (None, NONE) if it cannot be read."""
    share = await tx.share(mount.share_id)
    if share is None:
        return None, Permission.NONE
    permissions = await share_permissions(tx, share, user, now)
    if Permission.READ not in permissions:
        return None, Permission.NONE
    return share, permissions


async def path_in_home(tx: MetadataTransaction, node_id: int) -> DavPath:
    """Where a node lies in its owner's home (one query)."""
    above = await tx.ancestors(node_id)  # the node first, its owner's home last
    return DavPath(tuple(reversed([node.name for node in above[:-1]])))


async def resolve_existing(
    tx: MetadataTransaction, user: User, path: DavPath, now: float, *, content: bool = False
) -> Resolved:
    """Like `resolve`, but a missing (or unreadable) node or parent is NotFound (404)."""
    try:
        found = await resolve(tx, user, path, now, content=content)
    except Conflict as exc:
        raise NotFound(f"{path} does not exist") from exc
    found.existing()
    if Permission.READ not in found.permissions:
        raise NotFound(f"{path} does not exist")
    return found
