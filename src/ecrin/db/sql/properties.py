"""Dead properties in SQL (the ones PROPPATCH sets)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, delete, insert, select

from ecrin.core.model import DeadProperty
from ecrin.db import statements
from ecrin.db.schema import properties
from ecrin.db.sql.base import SqlTransactionBase


class SqlProperties(SqlTransactionBase):
    """Dead properties of nodes."""

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
