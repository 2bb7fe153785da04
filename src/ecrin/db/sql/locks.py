"""WebDAV locks in SQL."""

from __future__ import annotations

from sqlalchemy import delete, insert, update

from ecrin.core.errors import StorageError
from ecrin.core.model import Lock
from ecrin.db import statements
from ecrin.db.schema import locks
from ecrin.db.sql.base import SqlTransactionBase
from ecrin.db.sql.rows import _lock


class SqlLocks(SqlTransactionBase):
    """WebDAV locks, by owner (a home's locks are checked then taken in one transaction)."""

    # --- locks ---------------------------------------------------------------------------

    async def locks(self, owner_id: int, now: float) -> list[Lock]:
        if not self._lock_homes:
            rows = await self._prepared.all(statements.LOCKS, owner_id=owner_id, now=now)
            return [_lock(r) for r in rows]
        # A LOCK checks for conflicting locks, then inserts its own: the home is locked first.
        rows = await self._prepared.all(statements.LOCKS_LOCKING_HOME, owner_id=owner_id, now=now)
        if not rows:
            raise StorageError(f"user {owner_id} has no home folder")
        return [_lock(r) for r in rows if r.token is not None]

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
