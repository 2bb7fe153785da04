"""SQLite write transactions, one at a time, sharing their COMMIT (and its fsync).

SQLite has one writer at a time, and with `synchronous=FULL` every COMMIT fsyncs the WAL.
Writers queue here; each runs in a SAVEPOINT of one open transaction, and that transaction
commits when no writer is left in the queue (or after `MAX_BATCH` writers): a burst of small
uploads costs one fsync per burst instead of one per file.

What a writer may rely on is unchanged:
- it returns only once the COMMIT holding its changes is durable; if that COMMIT fails, every
  writer of the batch gets the error, and none of their changes is kept;
- a writer whose block raises is rolled back to its savepoint alone; the batch goes on;
- writers see each other's changes in queue order, exactly as if each had committed.

A writer that says so (`deferring`) may leave work to the batch: folder changes to
propagate up the tree and bytes to add to users' usage (each summed), which `settle` does
once, before the COMMIT and before any writer that did not say so runs. A burst of small
uploads into one folder then updates its ancestors and its owner's usage once, not once per
file. Such a writer must not read what it deferred; what a writer rolled back to its
savepoint deferred is dropped with it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ecrin.core.errors import Unavailable
from ecrin.db.prepared import PreparedRunner
from ecrin.db.sqlite_inline import InlineConnection

MAX_BATCH = 32  # bounds the wait of a batch's first writer


@dataclass(slots=True)
class Deferred:
    """Changes writers left to their batch, each summed."""

    # Users this batch found without a quota: their usage has nothing to check, so it may be
    # deferred. Shared by the batch's writers; forgotten before any other kind of writer runs.
    unlimited: set[int] = field(default_factory=set)
    folders: dict[int, int] = field(default_factory=dict)  # folder id -> size delta
    usage: dict[int, int] = field(default_factory=dict)  # user id -> bytes


Settle = Callable[[PreparedRunner, Deferred], Awaitable[None]]  # in the batch's transaction


@dataclass(eq=False)
class _Writer:
    """The writers' connection, kept from batch to batch: taking one from the pool and
    giving it back cost ~150 µs of CPU a batch, and every PUT at concurrency 1 is one.
    Its transactions are begun and ended on the driver: SQLAlchemy's begin and commit cost
    ~100 µs more. A Core statement run in one joins it (`InlineConnection.begin`), and
    SQLAlchemy's transaction then ends with it."""

    conn: AsyncConnection
    driver: InlineConnection
    prepared: PreparedRunner  # on the driver's sqlite3 connection, `raw`

    @property
    def raw(self) -> sqlite3.Connection:
        return self.driver.raw

    async def end(self, *, commit: bool) -> None:
        if self.conn.in_transaction():  # begun by SQLAlchemy too (a Core statement ran)
            await (self.conn.commit() if commit else self.conn.rollback())
        else:
            await (self.driver.commit() if commit else self.driver.rollback())


@dataclass(eq=False)
class _Batch:
    writer: _Writer
    committed: asyncio.Future[None] = field(default_factory=asyncio.Future)
    members: int = 0
    deferred: Deferred = field(default_factory=Deferred)

    @property
    def raw(self) -> sqlite3.Connection:
        return self.writer.raw


class GroupCommit:
    def __init__(self, engine: AsyncEngine, settle: Settle) -> None:
        self._engine = engine
        self._settle = settle
        self._lock = asyncio.Lock()
        self._queued = 0  # writers waiting for the lock
        self._batch: _Batch | None = None
        self._flush: asyncio.Task[None] | None = None
        self._writer: _Writer | None = None  # dropped after a batch that failed

    def transaction(self, *, deferring: bool = False) -> _Turn:
        """The batch's statement runner, inside this writer's savepoint, and where it may
        defer changes (when `deferring`); leaves once the changes are durable."""
        return _Turn(self, deferring)

    async def _enter(self) -> _Batch:
        """Wait for the lock, then join or open a batch (the lock stays held)."""
        self._queued += 1
        try:
            await self._lock.acquire()
        finally:
            self._queued -= 1
        try:
            batch = self._batch or await self._open()
        except BaseException:
            self._lock.release()
            raise
        batch.members += 1
        return batch

    async def _leave(self, batch: _Batch, *, failed: bool) -> None:
        """End a writer's turn, rolled back to its savepoint if `failed`; releases the lock."""
        try:
            if failed:
                self._undo(batch)
        finally:
            try:
                await self._end_turn(batch)
            finally:
                self._lock.release()

    async def _open(self) -> _Batch:
        writer = self._writer or await self._connect()
        try:
            await writer.driver.begin(writing=True)  # BEGIN IMMEDIATE, in the write queue
        except BaseException:
            await self._drop_writer()
            raise
        self._batch = _Batch(writer)
        return self._batch

    async def _connect(self) -> _Writer:
        conn = await self._engine.connect()
        try:
            conn = await conn.execution_options(ecrin_write=True)
            driver = (await conn.get_raw_connection()).driver_connection
            assert isinstance(driver, InlineConnection), "group commit needs sqlite_inline"
            prepared = PreparedRunner(conn, driver.raw)
        except BaseException:
            await conn.close()
            raise
        self._writer = _Writer(conn, driver, prepared)
        return self._writer

    async def _drop_writer(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            await writer.conn.close()

    async def _settle_deferred(self, batch: _Batch) -> None:
        """Outside any writer's savepoint: a failure here fails the whole batch."""
        deferred = batch.deferred
        if deferred.folders or deferred.usage:
            batch.deferred = Deferred(deferred.unlimited)
            await self._settle(batch.writer.prepared, deferred)

    def _undo(self, batch: _Batch) -> None:
        """Roll this writer back; if SQLite already dropped the whole transaction (an I/O
        error, a full disk), the batch is lost and its writers will hear so."""
        if batch.raw.in_transaction:
            with suppress(sqlite3.Error):
                batch.raw.execute("ROLLBACK TO writer")
                batch.raw.execute("RELEASE writer")
                return
        _fail(batch, Unavailable("the database dropped a write transaction; retry"))

    async def _end_turn(self, batch: _Batch) -> None:
        if batch.committed.done():  # failed under this writer
            await self._close(batch, commit=False)
        elif self._queued == 0 or batch.members >= MAX_BATCH:
            await self._close(batch, commit=True)
        elif self._flush is None:
            # Writers are queued: one of them, or this task behind them all, commits.
            self._flush = asyncio.create_task(self._flush_after_queue())

    async def _flush_after_queue(self) -> None:
        try:
            async with self._lock:
                if self._batch is not None:
                    await self._close(self._batch, commit=True)
        finally:
            self._flush = None

    async def _close(self, batch: _Batch, *, commit: bool) -> None:
        self._batch = None
        try:
            if commit:
                await self._settle_deferred(batch)
                await batch.writer.end(commit=True)
            else:
                await batch.writer.end(commit=False)
        except BaseException as exc:
            _fail(batch, exc)
            with suppress(Exception):
                await batch.writer.end(commit=False)
            await self._drop_writer()
            if not isinstance(exc, Exception):
                raise
        else:
            if not batch.committed.done():
                batch.committed.set_result(None)
                return
            await self._drop_writer()  # the batch failed under a writer

    async def close(self) -> None:
        """Commit what is pending (at shutdown)."""
        async with self._lock:
            if self._batch is not None:
                await self._close(self._batch, commit=True)
            await self._drop_writer()


class _Turn:
    """One writer's turn (`GroupCommit.transaction`). A class rather than a generator context
    manager: every small upload takes one, and two nested generators cost ~10 µs more."""

    __slots__ = ("_batch", "_deferred", "_deferring", "_group")

    def __init__(self, group: GroupCommit, deferring: bool) -> None:
        self._group = group
        self._deferring = deferring

    async def __aenter__(self) -> tuple[PreparedRunner, Deferred | None]:
        group = self._group
        self._batch = batch = await group._enter()
        try:
            if not self._deferring:
                try:
                    await group._settle_deferred(batch)
                except BaseException as exc:
                    _fail(batch, exc)
                    raise
                batch.deferred.unlimited.clear()  # this writer may set a quota
            batch.raw.execute("SAVEPOINT writer")
        except BaseException:
            await group._leave(batch, failed=True)
            raise
        self._deferred = Deferred(batch.deferred.unlimited) if self._deferring else None
        return batch.writer.prepared, self._deferred

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        group, batch, deferred = self._group, self._batch, self._deferred
        if exc is not None:
            await group._leave(batch, failed=True)
            return  # the block's exception goes on
        try:
            batch.raw.execute("RELEASE writer")
        except BaseException:
            await group._leave(batch, failed=True)
            raise
        if deferred is not None:
            _add(batch.deferred.folders, deferred.folders)
            _add(batch.deferred.usage, deferred.usage)
        await group._leave(batch, failed=False)
        await asyncio.shield(batch.committed)


def _add(totals: dict[int, int], changes: dict[int, int]) -> None:
    for key, amount in changes.items():
        totals[key] = totals.get(key, 0) + amount


def _fail(batch: _Batch, exc: BaseException) -> None:
    if not batch.committed.done():
        batch.committed.set_exception(exc)
        batch.committed.exception()  # retrieved: the writers still waiting will raise it
