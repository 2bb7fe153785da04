"""Resolving paths to nodes inside one transaction."""

from __future__ import annotations

from dataclasses import dataclass

from ecrin.core.errors import Conflict, NotFound
from ecrin.core.model import Node, User
from ecrin.core.paths import DavPath
from ecrin.db.protocol import MetadataTransaction


@dataclass(frozen=True, slots=True)
class Resolved:
    """Where a path lands: its existing ancestors (home first) and the node, if any."""

    path: DavPath
    ancestors: tuple[Node, ...]
    node: Node | None

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


async def resolve(tx: MetadataTransaction, user: User, path: DavPath) -> Resolved:
    """Walk the path from the user's home. A missing parent folder is a Conflict (409)."""
    node = await tx.root_node(user.id)
    if path.is_root:
        return Resolved(path, (), node)
    ancestors: list[Node] = []
    for index, name in enumerate(path.segments):
        if not node.is_folder:
            raise Conflict(f"{DavPath(path.segments[:index])} is not a folder")
        ancestors.append(node)
        child = await tx.child(node.id, name)
        if child is None:
            if index < len(path.segments) - 1:
                raise Conflict(f"folder {DavPath(path.segments[: index + 1])} does not exist")
            return Resolved(path, tuple(ancestors), None)
        node = child
    return Resolved(path, tuple(ancestors), node)


async def resolve_existing(tx: MetadataTransaction, user: User, path: DavPath) -> Resolved:
    """Like `resolve`, but a missing node or parent is NotFound (404)."""
    try:
        found = await resolve(tx, user, path)
    except Conflict as exc:
        raise NotFound(f"{path} does not exist") from exc
    found.existing()
    return found
