"""Dead properties (PROPPATCH): stored verbatim per node, applied all-or-nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ecrin.core.clock import Clock
from ecrin.core.model import DeadProperty, Node, User
from ecrin.core.paths import DavPath
from ecrin.core.permissions import Permission
from ecrin.db.protocol import MetadataStore
from ecrin.services.tree import resolve_existing


@dataclass(frozen=True, slots=True)
class PropertyChange:
    namespace: str
    name: str
    xml: str | None  # None: remove


class PropertyService:
    def __init__(self, metadata: MetadataStore, clock: Clock) -> None:
        self.metadata = metadata
        self.clock = clock

    async def of(self, nodes: Sequence[Node]) -> dict[int, list[DeadProperty]]:
        async with self.metadata.read() as tx:
            return await tx.properties_of([n.id for n in nodes])

    async def apply(self, user: User, path: DavPath, changes: Sequence[PropertyChange]) -> None:
        async with self.metadata.write() as tx:
            found = await resolve_existing(tx, user, path, self.clock.now())
            found.require(Permission.UPDATE)
            node = found.existing()
            for change in changes:
                if change.xml is None:
                    await tx.remove_property(node.id, change.namespace, change.name)
                else:
                    await tx.set_property(
                        node.id, DeadProperty(change.namespace, change.name, change.xml)
                    )
