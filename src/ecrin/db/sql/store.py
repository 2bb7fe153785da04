"""The SQL metadata store: the engine, the schema's upgrades, and transactions to read or write."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from types import TracebackType

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ecrin.core.durable_files import fsync_file
from ecrin.core.errors import BadRequest
from ecrin.db import migrations
from ecrin.db.engine import (
    DATABASE_ERRORS,
    PING_AFTER_IDLE,
    EngineOptions,
    create_engine,
    database_errors,
    map_database_error,
    normalise_url,
    use_write_ahead_log,
)
from ecrin.db.group_commit import Deferred, GroupCommit
from ecrin.db.prepared import PreparedRunner
from ecrin.db.sql.transaction import SqlTransaction

log = logging.getLogger(__name__)

# SQLite connections kept open for reads, at most (SQLAlchemy's pool holds 5, plus overflow).
IDLE_READERS = 4
_Reader = tuple[AsyncConnection, PreparedRunner]  # an idle connection and its runner


class SqlMetadataStore:
    def __init__(
        self,
        url: str,
        *,
        durable: bool = True,
        pool_size: int = 10,
        ping_after_idle: float = PING_AFTER_IDLE,
    ) -> None:
        self.url = normalise_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        options = EngineOptions(durable, pool_size, ping_after_idle=ping_after_idle)
        self.engine: AsyncEngine = create_engine(self.url, options)
        # SQLite has one writer at a time: queue ours here rather than in busy_timeout.
        self._writes = GroupCommit(self.engine, _make_deferred) if self.is_sqlite else None
        self._idle_readers: list[_Reader] = []  # SQLite: see `_SqliteRead`

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

    async def snapshot_to(self, destination: Path) -> None:
        """The whole database as it is at one instant, written to `destination` (a new
        SQLite file) and fsynced: SQLite's online backup in one step, one read transaction
        that writers go on beside (write-ahead log)."""
        if not self.is_sqlite or not self.url.database:
            raise BadRequest(
                "only a SQLite database is copied by Ecrin; back PostgreSQL up with its own "
                "tools (pg_dump, or continuous archiving)"
            )
        source_path = self.url.database

        def copy() -> None:
            source = sqlite3.connect(source_path)
            try:
                target = sqlite3.connect(destination)
                try:
                    source.backup(target)  # every page in one step: one snapshot
                finally:
                    target.close()
            finally:
                source.close()
            fsync_file(destination)

        with database_errors():
            await asyncio.to_thread(copy)

    async def close(self) -> None:
        while self._idle_readers:
            await self._idle_readers.pop()[0].close()
        if self._writes is not None:
            with database_errors():
                await self._writes.close()
        await self.engine.dispose()

    def read(self) -> AbstractAsyncContextManager[SqlTransaction]:
        if self.is_sqlite:
            return _SqliteRead(self._idle_readers, self.engine)
        return self._postgresql_read()

    @asynccontextmanager
    async def _postgresql_read(self) -> AsyncIterator[SqlTransaction]:
        with database_errors():
            async with self.engine.connect() as conn:
                conn = await conn.execution_options(
                    isolation_level="REPEATABLE READ", postgresql_readonly=True
                )
                async with conn.begin():
                    yield SqlTransaction(conn, prepared=await PreparedRunner.of(conn))

    def write(
        self, *, deferrable_changes: bool = False
    ) -> AbstractAsyncContextManager[SqlTransaction]:
        if self._writes is not None:
            return _SqliteWrite(self._writes.transaction(deferring=deferrable_changes))
        return self._postgresql_write()

    @asynccontextmanager
    async def _postgresql_write(self) -> AsyncIterator[SqlTransaction]:
        with database_errors():
            async with self.engine.connect() as conn:
                conn = await conn.execution_options(ecrin_write=True)
                async with conn.begin():
                    prepared = await PreparedRunner.of(conn)
                    yield SqlTransaction(conn, lock_homes=True, prepared=prepared)

    async def ping(self) -> None:
        with database_errors():
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))


async def _make_deferred(prepared: PreparedRunner, deferred: Deferred) -> None:
    """The changes a group commit's writers deferred, in its transaction."""
    await SqlTransaction(prepared.connection, prepared=prepared).make_deferred(deferred)


class _SqliteWrite:
    """A writer's turn in the group commit, as a transaction; Ecrin's errors for the
    driver's. A class: see `_SqliteRead`."""

    __slots__ = ("_turn",)

    def __init__(self, turn: AbstractAsyncContextManager[tuple[PreparedRunner, Deferred | None]]):
        self._turn = turn

    async def __aenter__(self) -> SqlTransaction:
        try:
            prepared, deferred = await self._turn.__aenter__()
        except DATABASE_ERRORS as exc:
            raise map_database_error(exc) from exc
        return SqlTransaction(prepared.connection, prepared=prepared, deferred=deferred)

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self._turn.__aexit__(kind, exc, tb)
        except DATABASE_ERRORS as error:
            raise map_database_error(error) from error
        if isinstance(exc, DATABASE_ERRORS):  # raised in the block, as `database_errors` does
            raise map_database_error(exc) from exc


class _SqliteRead:
    """A read on a connection kept open between reads, begun and ended on SQLite's own
    connection: through SQLAlchemy, taking a connection from the pool, BEGIN, COMMIT and
    giving it back cost ~90 µs, most of a read. A Core statement run inside joins the
    transaction (`InlineConnection.begin`), and SQLAlchemy's is ended with it.

    A class rather than generator context managers: a read starts every GET and PROPFIND,
    and theirs made an empty read cost ~12.5 µs, this ~5.5. Not `async with
    engine.connect()` either: its exit closes in a task of its own, shielded from
    cancellation; SQLite's close runs inline (sqlite_inline) and never yields, so nothing
    can cut it short."""

    __slots__ = ("_conn", "_engine", "_idle", "_prepared")

    def __init__(self, idle: list[_Reader], engine: AsyncEngine) -> None:
        self._idle = idle
        self._engine = engine

    async def __aenter__(self) -> SqlTransaction:
        try:
            if self._idle:
                self._conn, self._prepared = self._idle.pop()
            else:
                self._conn = await self._engine.connect()
                self._prepared = await PreparedRunner.of(self._conn)
            raw = self._prepared.sqlite
            assert raw is not None, "SQLite reads need sqlite_inline"
            raw.execute("BEGIN DEFERRED")
        except DATABASE_ERRORS as exc:
            raise map_database_error(exc) from exc
        return SqlTransaction(self._conn, prepared=self._prepared)

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        conn, raw = self._conn, self._prepared.sqlite
        assert raw is not None
        reusable = False
        try:
            if conn.in_transaction():
                await conn.rollback()
            if raw.in_transaction:
                raw.execute("ROLLBACK")
            reusable = not conn.invalidated
        except DATABASE_ERRORS as error:
            if exc is None:
                raise map_database_error(error) from error
        finally:
            if reusable and len(self._idle) < IDLE_READERS:
                self._idle.append((conn, self._prepared))
            else:
                await conn.close()
        if isinstance(exc, DATABASE_ERRORS):  # raised in the block, as `database_errors` does
            raise map_database_error(exc) from exc
