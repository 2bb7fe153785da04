"""`SqlTransaction`: one database transaction, made of its parts, one per kind of record."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from ecrin.core.model import Usage
from ecrin.db.group_commit import Deferred
from ecrin.db.prepared import PreparedRunner
from ecrin.db.sql.accounts import SqlAccounts
from ecrin.db.sql.blobs import SqlBlobs
from ecrin.db.sql.history import SqlHistory
from ecrin.db.sql.locks import SqlLocks
from ecrin.db.sql.properties import SqlProperties
from ecrin.db.sql.sharing import SqlSharing
from ecrin.db.sql.subtrees import SqlSubtrees
from ecrin.db.sql.tree import SqlTree
from ecrin.db.sql.uploads import SqlUploads


class SqlTransaction(
    SqlAccounts,
    SqlTree,
    SqlSubtrees,
    SqlBlobs,
    SqlProperties,
    SqlLocks,
    SqlUploads,
    SqlSharing,
    SqlHistory,
):
    """One database transaction; the primitives the services compose atomically."""

    def __init__(
        self,
        conn: AsyncConnection,
        *,
        lock_homes: bool = False,
        prepared: PreparedRunner | None = None,
        deferred: Deferred | None = None,
    ) -> None:
        """`deferred`: where deferrable changes are recorded, when this writer's batch makes
        them for it."""
        super().__init__(conn, lock_homes=lock_homes, prepared=prepared)
        self._deferred = deferred

    async def propagate_change(
        self, folder_id: int, size_delta: int = 0, *, deferrable: bool = False
    ) -> None:
        if deferrable and self._deferred is not None:
            folders = self._deferred.folders
            folders[folder_id] = folders.get(folder_id, 0) + size_delta
            return
        # Where nothing on the way up is shared, one statement.
        seen: set[int] = set()
        pending: list[tuple[int, int]] = [(folder_id, size_delta)]
        while pending:
            start, delta = pending.pop()
            changed = await self.bump_ancestors(start, delta, skip=seen)
            seen.update(changed.ids)
            if changed.shared_ids:
                shares = await self.shares_on(changed.shared_ids)
                for mount in await self.mounts_of_shares([s.id for s in shares]):
                    pending.append((mount.parent_id, 0))

    async def add_usage(
        self, user_id: int, delta: int, *, deferrable: bool = False
    ) -> Usage | None:
        deferred = self._deferred
        if deferrable and deferred is not None and user_id in deferred.unlimited:
            deferred.usage[user_id] = deferred.usage.get(user_id, 0) + delta
            return None
        usage = await super().add_usage(user_id, delta)
        if deferrable and deferred is not None and usage and usage.quota_bytes is None:
            deferred.unlimited.add(user_id)
        return usage

    async def make_deferred(self, deferred: Deferred) -> None:
        """What writers deferred, each folder's and each user's deltas summed."""
        for folder_id, size_delta in deferred.folders.items():
            await self.propagate_change(folder_id, size_delta)
        for user_id, delta in deferred.usage.items():
            await super().add_usage(user_id, delta)
