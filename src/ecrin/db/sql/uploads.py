"""Chunked uploads in SQL: upload sessions and their chunks."""

from __future__ import annotations

from sqlalchemy import and_, delete, func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError

from ecrin.core.errors import Conflict
from ecrin.core.model import UploadChunk, UploadSession
from ecrin.db.schema import upload_chunks, upload_sessions
from ecrin.db.sql.base import SqlTransactionBase
from ecrin.db.sql.rows import _upload_chunk, _upload_session


class SqlUploads(SqlTransactionBase):
    """Chunked upload sessions and their chunks."""

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
